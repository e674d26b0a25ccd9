{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 0,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   40.0,
   60.0,
   1120.0,
   860.0
  ],
  "bglocked": 0,
  "openinpresentation": 1,
  "default_fontsize": 12.0,
  "default_fontface": 0,
  "default_fontname": "Arial",
  "gridonopen": 1,
  "gridsize": [
   15.0,
   15.0
  ],
  "gridsnaponopen": 1,
  "toolbarvisible": 1,
  "description": "folkrnn-live control surface (see patches/README.md)",
  "boxes": [
   {
    "box": {
     "id": "obj-1",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      10.0,
      1000.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      10.0,
      1000.0,
      20.0
     ],
     "text": "folkrnn-live control surface: click connect, then play. Every control also listens to [r folkrnn-<name>]; any patch can [s folkrnn-cmd] messages such as 'temperature 0.8'. Unlock / leave presentation mode to see the wiring."
    }
   },
   {
    "box": {
     "id": "obj-2",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      40.0,
      472.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      40.0,
      472.0,
      20.0
     ],
     "text": "1. connect  (edit host, server port, feedback port in the message)"
    }
   },
   {
    "box": {
     "id": "obj-3",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      95.0,
      200.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      95.0,
      200.0,
      22.0
     ],
     "text": "connect 127.0.0.1 7400 9001"
    }
   },
   {
    "box": {
     "id": "obj-4",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      65.0,
      131.0,
      22.0
     ],
     "text": "r folkrnn-connect"
    }
   },
   {
    "box": {
     "id": "obj-5",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      125.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-6",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      250.0,
      95.0,
      84.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      250.0,
      95.0,
      84.0,
      22.0
     ],
     "text": "disconnect"
    }
   },
   {
    "box": {
     "id": "obj-7",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      250.0,
      65.0,
      152.0,
      22.0
     ],
     "text": "r folkrnn-disconnect"
    }
   },
   {
    "box": {
     "id": "obj-8",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      250.0,
      125.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-9",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      420.0,
      95.0,
      105.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      420.0,
      95.0,
      105.0,
      22.0
     ],
     "text": "global ping 1"
    }
   },
   {
    "box": {
     "id": "obj-10",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      420.0,
      65.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-ping"
    }
   },
   {
    "box": {
     "id": "obj-11",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      420.0,
      125.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-12",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600.0,
      70.0,
      45.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      600.0,
      70.0,
      45.0,
      20.0
     ],
     "text": "voice"
    }
   },
   {
    "box": {
     "id": "obj-13",
     "items": [
      "1",
      ",",
      "2",
      ",",
      "3",
      ",",
      "4",
      ",",
      "all"
     ],
     "maxclass": "umenu",
     "numinlets": 1,
     "numoutlets": 3,
     "outlettype": [
      "int",
      "",
      ""
     ],
     "parameter_enable": 0,
     "patching_rect": [
      600.0,
      95.0,
      70.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      600.0,
      95.0,
      70.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-14",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      700.0,
      125.0,
      70.0,
      22.0
     ],
     "text": "voice $1"
    }
   },
   {
    "box": {
     "id": "obj-15",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      700.0,
      95.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-voice"
    }
   },
   {
    "box": {
     "id": "obj-16",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      700.0,
      155.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-17",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      170.0,
      94.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      170.0,
      94.0,
      20.0
     ],
     "text": "2. transport"
    }
   },
   {
    "box": {
     "id": "obj-18",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      225.0,
      49.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      225.0,
      49.0,
      22.0
     ],
     "text": "start"
    }
   },
   {
    "box": {
     "id": "obj-19",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      195.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-start"
    }
   },
   {
    "box": {
     "id": "obj-20",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-21",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      150.0,
      225.0,
      42.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      150.0,
      225.0,
      42.0,
      22.0
     ],
     "text": "stop"
    }
   },
   {
    "box": {
     "id": "obj-22",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      150.0,
      195.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-stop"
    }
   },
   {
    "box": {
     "id": "obj-23",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      150.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-24",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      280.0,
      225.0,
      49.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      280.0,
      225.0,
      49.0,
      22.0
     ],
     "text": "pause"
    }
   },
   {
    "box": {
     "id": "obj-25",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      280.0,
      195.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-pause"
    }
   },
   {
    "box": {
     "id": "obj-26",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      280.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-27",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      410.0,
      225.0,
      56.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      410.0,
      225.0,
      56.0,
      22.0
     ],
     "text": "resume"
    }
   },
   {
    "box": {
     "id": "obj-28",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      410.0,
      195.0,
      124.0,
      22.0
     ],
     "text": "r folkrnn-resume"
    }
   },
   {
    "box": {
     "id": "obj-29",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      410.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-30",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      540.0,
      225.0,
      42.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      540.0,
      225.0,
      42.0,
      22.0
     ],
     "text": "next"
    }
   },
   {
    "box": {
     "id": "obj-31",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      540.0,
      195.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-next"
    }
   },
   {
    "box": {
     "id": "obj-32",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      540.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-33",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      670.0,
      225.0,
      49.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      670.0,
      225.0,
      49.0,
      22.0
     ],
     "text": "reset"
    }
   },
   {
    "box": {
     "id": "obj-34",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      670.0,
      195.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-reset"
    }
   },
   {
    "box": {
     "id": "obj-35",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      670.0,
      255.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-36",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      300.0,
      332.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      300.0,
      332.0,
      20.0
     ],
     "text": "3. the network (applied before the next token)"
    }
   },
   {
    "box": {
     "id": "obj-37",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      325.0,
      87.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      325.0,
      87.0,
      20.0
     ],
     "text": "temperature"
    }
   },
   {
    "box": {
     "floatoutput": 1,
     "id": "obj-38",
     "maxclass": "slider",
     "min": 0.05,
     "numinlets": 1,
     "numoutlets": 1,
     "orientation": 1,
     "outlettype": [
      ""
     ],
     "parameter_enable": 0,
     "patching_rect": [
      20.0,
      380.0,
      140.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      380.0,
      140.0,
      22.0
     ],
     "size": 2.95
    }
   },
   {
    "box": {
     "format": 6,
     "id": "obj-39",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      170.0,
      380.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      170.0,
      380.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-40",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      170.0,
      410.0,
      112.0,
      22.0
     ],
     "text": "temperature $1"
    }
   },
   {
    "box": {
     "id": "obj-41",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      170.0,
      350.0,
      159.0,
      22.0
     ],
     "text": "r folkrnn-temperature"
    }
   },
   {
    "box": {
     "id": "obj-42",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      170.0,
      440.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-43",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      260.0,
      325.0,
      45.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      260.0,
      325.0,
      45.0,
      20.0
     ],
     "text": "tempo"
    }
   },
   {
    "box": {
     "floatoutput": 1,
     "id": "obj-44",
     "maxclass": "slider",
     "min": 40,
     "numinlets": 1,
     "numoutlets": 1,
     "orientation": 1,
     "outlettype": [
      ""
     ],
     "parameter_enable": 0,
     "patching_rect": [
      260.0,
      380.0,
      140.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      260.0,
      380.0,
      140.0,
      22.0
     ],
     "size": 360
    }
   },
   {
    "box": {
     "format": 6,
     "id": "obj-45",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      410.0,
      380.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      410.0,
      380.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-46",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      410.0,
      410.0,
      70.0,
      22.0
     ],
     "text": "tempo $1"
    }
   },
   {
    "box": {
     "id": "obj-47",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      410.0,
      350.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-tempo"
    }
   },
   {
    "box": {
     "id": "obj-48",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      410.0,
      440.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-49",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      520.0,
      325.0,
      185.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      520.0,
      325.0,
      185.0,
      20.0
     ],
     "text": "bias pitch class / amount"
    }
   },
   {
    "box": {
     "id": "obj-50",
     "items": [
      "C",
      ",",
      "C#",
      ",",
      "D",
      ",",
      "D#",
      ",",
      "E",
      ",",
      "F",
      ",",
      "F#",
      ",",
      "G",
      ",",
      "G#",
      ",",
      "A",
      ",",
      "A#",
      ",",
      "B"
     ],
     "maxclass": "umenu",
     "numinlets": 1,
     "numoutlets": 3,
     "outlettype": [
      "int",
      "",
      ""
     ],
     "parameter_enable": 0,
     "patching_rect": [
      520.0,
      380.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      520.0,
      380.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-51",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      520.0,
      350.0,
      131.0,
      22.0
     ],
     "text": "r folkrnn-bias-pc"
    }
   },
   {
    "box": {
     "format": 6,
     "id": "obj-52",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      680.0,
      380.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      680.0,
      380.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-53",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      680.0,
      350.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-bias"
    }
   },
   {
    "box": {
     "id": "obj-54",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "int",
      "bang"
     ],
     "patching_rect": [
      520.0,
      410.0,
      47.0,
      22.0
     ],
     "text": "t i b"
    }
   },
   {
    "box": {
     "id": "obj-55",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      700.0,
      410.0,
      84.0,
      22.0
     ],
     "text": "bias_clear"
    }
   },
   {
    "box": {
     "id": "obj-56",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      700.0,
      440.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-57",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      520.0,
      470.0,
      159.0,
      22.0
     ],
     "text": "sprintf symout pc:%ld"
    }
   },
   {
    "box": {
     "id": "obj-58",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      520.0,
      500.0,
      68.0,
      22.0
     ],
     "text": "pak s 0."
    }
   },
   {
    "box": {
     "id": "obj-59",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      520.0,
      530.0,
      84.0,
      22.0
     ],
     "text": "bias $1 $2"
    }
   },
   {
    "box": {
     "id": "obj-60",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      520.0,
      560.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-61",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      820.0,
      380.0,
      84.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      820.0,
      380.0,
      84.0,
      22.0
     ],
     "text": "bias_clear"
    }
   },
   {
    "box": {
     "id": "obj-62",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      820.0,
      350.0,
      152.0,
      22.0
     ],
     "text": "r folkrnn-bias-clear"
    }
   },
   {
    "box": {
     "id": "obj-63",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      820.0,
      410.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-64",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      600.0,
      360.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      600.0,
      360.0,
      20.0
     ],
     "text": "suppress bar lines for N steps (0 = until cleared)"
    }
   },
   {
    "box": {
     "id": "obj-65",
     "maxclass": "toggle",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      20.0,
      655.0,
      22.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      655.0,
      22.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-66",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      625.0,
      173.0,
      22.0
     ],
     "text": "r folkrnn-suppress-bars"
    }
   },
   {
    "box": {
     "id": "obj-67",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      200.0,
      655.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      200.0,
      655.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-68",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      200.0,
      625.0,
      180.0,
      22.0
     ],
     "text": "r folkrnn-suppress-steps"
    }
   },
   {
    "box": {
     "id": "obj-69",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      270.0,
      690.0,
      89.0,
      22.0
     ],
     "text": "loadmess 32"
    }
   },
   {
    "box": {
     "id": "obj-70",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "bang",
      ""
     ],
     "patching_rect": [
      20.0,
      690.0,
      47.0,
      22.0
     ],
     "text": "sel 0"
    }
   },
   {
    "box": {
     "id": "obj-71",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "bang"
     ],
     "patching_rect": [
      70.0,
      720.0,
      33.0,
      22.0
     ],
     "text": "t b"
    }
   },
   {
    "box": {
     "id": "obj-72",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "patching_rect": [
      70.0,
      750.0,
      30.0,
      22.0
     ],
     "text": "i"
    }
   },
   {
    "box": {
     "id": "obj-73",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      70.0,
      780.0,
      126.0,
      22.0
     ],
     "text": "suppress $1 @bar"
    }
   },
   {
    "box": {
     "id": "obj-74",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      840.0,
      112.0,
      22.0
     ],
     "text": "suppress_clear"
    }
   },
   {
    "box": {
     "id": "obj-75",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      70.0,
      810.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-76",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      870.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-77",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      380.0,
      600.0,
      577.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      380.0,
      600.0,
      577.0,
      20.0
     ],
     "text": "snip a random fraction of a layer's units (fraction, seed, then a layer); restore"
    }
   },
   {
    "box": {
     "format": 6,
     "id": "obj-78",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      380.0,
      655.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      380.0,
      655.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-79",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      380.0,
      625.0,
      173.0,
      22.0
     ],
     "text": "r folkrnn-snip-fraction"
    }
   },
   {
    "box": {
     "id": "obj-80",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      450.0,
      690.0,
      96.0,
      22.0
     ],
     "text": "loadmess 0.5"
    }
   },
   {
    "box": {
     "id": "obj-81",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      560.0,
      655.0,
      80.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      560.0,
      655.0,
      80.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-82",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      560.0,
      625.0,
      145.0,
      22.0
     ],
     "text": "r folkrnn-snip-seed"
    }
   },
   {
    "box": {
     "id": "obj-83",
     "maxclass": "newobj",
     "numinlets": 3,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      380.0,
      750.0,
      89.0,
      22.0
     ],
     "text": "pack 0 0. 0"
    }
   },
   {
    "box": {
     "id": "obj-84",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      380.0,
      780.0,
      154.0,
      22.0
     ],
     "text": "snip_random $1 $2 $3"
    }
   },
   {
    "box": {
     "id": "obj-85",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      380.0,
      810.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-86",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      730.0,
      655.0,
      56.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      730.0,
      655.0,
      56.0,
      22.0
     ],
     "text": "snip 0"
    }
   },
   {
    "box": {
     "id": "obj-87",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      730.0,
      625.0,
      124.0,
      22.0
     ],
     "text": "r folkrnn-snip-0"
    }
   },
   {
    "box": {
     "id": "obj-88",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      730.0,
      690.0,
      30.0,
      22.0
     ],
     "text": "0"
    }
   },
   {
    "box": {
     "id": "obj-89",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      730.0,
      750.0,
      77.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      730.0,
      750.0,
      77.0,
      22.0
     ],
     "text": "restore 0"
    }
   },
   {
    "box": {
     "id": "obj-90",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      730.0,
      720.0,
      145.0,
      22.0
     ],
     "text": "r folkrnn-restore-0"
    }
   },
   {
    "box": {
     "id": "obj-91",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      730.0,
      780.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-92",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      655.0,
      56.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      880.0,
      655.0,
      56.0,
      22.0
     ],
     "text": "snip 1"
    }
   },
   {
    "box": {
     "id": "obj-93",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      625.0,
      124.0,
      22.0
     ],
     "text": "r folkrnn-snip-1"
    }
   },
   {
    "box": {
     "id": "obj-94",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      690.0,
      30.0,
      22.0
     ],
     "text": "1"
    }
   },
   {
    "box": {
     "id": "obj-95",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      750.0,
      77.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      880.0,
      750.0,
      77.0,
      22.0
     ],
     "text": "restore 1"
    }
   },
   {
    "box": {
     "id": "obj-96",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      720.0,
      145.0,
      22.0
     ],
     "text": "r folkrnn-restore-1"
    }
   },
   {
    "box": {
     "id": "obj-97",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      880.0,
      780.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-98",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1030.0,
      655.0,
      56.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      1030.0,
      655.0,
      56.0,
      22.0
     ],
     "text": "snip 2"
    }
   },
   {
    "box": {
     "id": "obj-99",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1030.0,
      625.0,
      124.0,
      22.0
     ],
     "text": "r folkrnn-snip-2"
    }
   },
   {
    "box": {
     "id": "obj-100",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1030.0,
      690.0,
      30.0,
      22.0
     ],
     "text": "2"
    }
   },
   {
    "box": {
     "id": "obj-101",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1030.0,
      750.0,
      77.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      1030.0,
      750.0,
      77.0,
      22.0
     ],
     "text": "restore 2"
    }
   },
   {
    "box": {
     "id": "obj-102",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1030.0,
      720.0,
      145.0,
      22.0
     ],
     "text": "r folkrnn-restore-2"
    }
   },
   {
    "box": {
     "id": "obj-103",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1030.0,
      780.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-104",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1180.0,
      750.0,
      63.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      1180.0,
      750.0,
      63.0,
      22.0
     ],
     "text": "restore"
    }
   },
   {
    "box": {
     "id": "obj-105",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1180.0,
      720.0,
      131.0,
      22.0
     ],
     "text": "r folkrnn-restore"
    }
   },
   {
    "box": {
     "id": "obj-106",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1180.0,
      780.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-107",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      900.0,
      234.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      900.0,
      234.0,
      20.0
     ],
     "text": "force 0.7 generated + 0.3 @pitch"
    }
   },
   {
    "box": {
     "id": "obj-108",
     "maxclass": "toggle",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      20.0,
      955.0,
      22.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      955.0,
      22.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-109",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      925.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-force"
    }
   },
   {
    "box": {
     "id": "obj-110",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "bang",
      ""
     ],
     "patching_rect": [
      20.0,
      985.0,
      47.0,
      22.0
     ],
     "text": "sel 0"
    }
   },
   {
    "box": {
     "id": "obj-111",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      1015.0,
      91.0,
      22.0
     ],
     "text": "force_clear"
    }
   },
   {
    "box": {
     "id": "obj-112",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1015.0,
      154.0,
      22.0
     ],
     "text": "force 0.7 @pitch 0.3"
    }
   },
   {
    "box": {
     "id": "obj-113",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1045.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-114",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      120.0,
      1045.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-115",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      330.0,
      900.0,
      171.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      330.0,
      900.0,
      171.0,
      20.0
     ],
     "text": "steer component / alpha"
    }
   },
   {
    "box": {
     "id": "obj-116",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      330.0,
      955.0,
      50.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      330.0,
      955.0,
      50.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-117",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      925.0,
      187.0,
      22.0
     ],
     "text": "r folkrnn-steer-component"
    }
   },
   {
    "box": {
     "floatoutput": 1,
     "id": "obj-118",
     "maxclass": "slider",
     "min": -20.0,
     "numinlets": 1,
     "numoutlets": 1,
     "orientation": 1,
     "outlettype": [
      ""
     ],
     "parameter_enable": 0,
     "patching_rect": [
      400.0,
      955.0,
      140.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      400.0,
      955.0,
      140.0,
      22.0
     ],
     "size": 40.0
    }
   },
   {
    "box": {
     "format": 6,
     "id": "obj-119",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      550.0,
      955.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      550.0,
      955.0,
      60.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-120",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      550.0,
      925.0,
      159.0,
      22.0
     ],
     "text": "r folkrnn-steer-alpha"
    }
   },
   {
    "box": {
     "id": "obj-121",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      985.0,
      68.0,
      22.0
     ],
     "text": "pak 0 0."
    }
   },
   {
    "box": {
     "id": "obj-122",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      1015.0,
      91.0,
      22.0
     ],
     "text": "steer $1 $2"
    }
   },
   {
    "box": {
     "id": "obj-123",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      330.0,
      1045.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-124",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      720.0,
      955.0,
      91.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      720.0,
      955.0,
      91.0,
      22.0
     ],
     "text": "steer_clear"
    }
   },
   {
    "box": {
     "id": "obj-125",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      720.0,
      925.0,
      159.0,
      22.0
     ],
     "text": "r folkrnn-steer-clear"
    }
   },
   {
    "box": {
     "id": "obj-126",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      720.0,
      985.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-127",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      955.0,
      49.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      880.0,
      955.0,
      49.0,
      22.0
     ],
     "text": "clear"
    }
   },
   {
    "box": {
     "id": "obj-128",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      880.0,
      925.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-clear"
    }
   },
   {
    "box": {
     "id": "obj-129",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      880.0,
      985.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-130",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1080.0,
      136.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1080.0,
      136.0,
      20.0
     ],
     "text": "4. what comes back"
    }
   },
   {
    "box": {
     "id": "obj-131",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1105.0,
      52.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1105.0,
      52.0,
      20.0
     ],
     "text": "tokens"
    }
   },
   {
    "box": {
     "id": "obj-132",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      840.0,
      1105.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-133",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1105.0,
      700.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1105.0,
      700.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-134",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1135.0,
      73.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1135.0,
      73.0,
      20.0
     ],
     "text": "tune step"
    }
   },
   {
    "box": {
     "id": "obj-135",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      260.0,
      1135.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-136",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1135.0,
      120.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1135.0,
      120.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-137",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1165.0,
      38.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1165.0,
      38.0,
      20.0
     ],
     "text": "note"
    }
   },
   {
    "box": {
     "id": "obj-138",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      300.0,
      1165.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-139",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1165.0,
      160.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1165.0,
      160.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-140",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1195.0,
      59.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1195.0,
      59.0,
      20.0
     ],
     "text": "applied"
    }
   },
   {
    "box": {
     "id": "obj-141",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      540.0,
      1195.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-142",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1195.0,
      400.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1195.0,
      400.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-143",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1225.0,
      45.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1225.0,
      45.0,
      20.0
     ],
     "text": "error"
    }
   },
   {
    "box": {
     "id": "obj-144",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1040.0,
      1225.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-145",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1225.0,
      900.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1225.0,
      900.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-146",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1255.0,
      38.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1255.0,
      38.0,
      20.0
     ],
     "text": "pong"
    }
   },
   {
    "box": {
     "id": "obj-147",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      200.0,
      1255.0,
      89.0,
      22.0
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-148",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      120.0,
      1255.0,
      60.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      120.0,
      1255.0,
      60.0,
      22.0
     ],
     "text": "-"
    }
   },
   {
    "box": {
     "id": "obj-149",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1300.0,
      619.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1300.0,
      619.0,
      20.0
     ],
     "text": "5. the notes here: MIDI out ([noteout]) / sine voice (switch audio on with the speaker)"
    }
   },
   {
    "box": {
     "id": "obj-150",
     "maxclass": "toggle",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      20.0,
      1355.0,
      22.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      20.0,
      1355.0,
      22.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-151",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      1325.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-midi"
    }
   },
   {
    "box": {
     "id": "obj-152",
     "maxclass": "toggle",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      330.0,
      1355.0,
      22.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      330.0,
      1355.0,
      22.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-153",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      1325.0,
      110.0,
      22.0
     ],
     "text": "r folkrnn-sine"
    }
   },
   {
    "box": {
     "id": "obj-154",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      20.0,
      1390.0,
      40.0,
      22.0
     ],
     "text": "gate"
    }
   },
   {
    "box": {
     "id": "obj-155",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "int",
      "int",
      "float",
      "int"
     ],
     "patching_rect": [
      20.0,
      1420.0,
      110.0,
      22.0
     ],
     "text": "unpack i i f i"
    }
   },
   {
    "box": {
     "id": "obj-156",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "patching_rect": [
      180.0,
      1450.0,
      33.0,
      22.0
     ],
     "text": "+ 1"
    }
   },
   {
    "box": {
     "id": "obj-157",
     "maxclass": "newobj",
     "numinlets": 3,
     "numoutlets": 2,
     "outlettype": [
      "float",
      "float"
     ],
     "patching_rect": [
      20.0,
      1480.0,
      124.0,
      22.0
     ],
     "text": "makenote 100 250"
    }
   },
   {
    "box": {
     "id": "obj-158",
     "maxclass": "newobj",
     "numinlets": 3,
     "numoutlets": 0,
     "patching_rect": [
      20.0,
      1510.0,
      61.0,
      22.0
     ],
     "text": "noteout"
    }
   },
   {
    "box": {
     "id": "obj-159",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      1390.0,
      40.0,
      22.0
     ],
     "text": "gate"
    }
   },
   {
    "box": {
     "id": "obj-160",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 3,
     "outlettype": [
      "float",
      "float",
      "float"
     ],
     "patching_rect": [
      330.0,
      1420.0,
      96.0,
      22.0
     ],
     "text": "unpack f f f"
    }
   },
   {
    "box": {
     "id": "obj-161",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      330.0,
      1450.0,
      40.0,
      22.0
     ],
     "text": "mtof"
    }
   },
   {
    "box": {
     "id": "obj-162",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      "signal"
     ],
     "patching_rect": [
      330.0,
      1480.0,
      54.0,
      22.0
     ],
     "text": "cycle~"
    }
   },
   {
    "box": {
     "id": "obj-163",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      "float"
     ],
     "patching_rect": [
      450.0,
      1450.0,
      54.0,
      22.0
     ],
     "text": "/ 400."
    }
   },
   {
    "box": {
     "id": "obj-164",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      450.0,
      1480.0,
      82.0,
      22.0
     ],
     "text": "pack 0. 0."
    }
   },
   {
    "box": {
     "id": "obj-165",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      450.0,
      1510.0,
      126.0,
      22.0
     ],
     "text": "$1 5 $1 $2 0. 50"
    }
   },
   {
    "box": {
     "id": "obj-166",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "signal",
      "bang"
     ],
     "patching_rect": [
      450.0,
      1540.0,
      47.0,
      22.0
     ],
     "text": "line~"
    }
   },
   {
    "box": {
     "id": "obj-167",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      "signal"
     ],
     "patching_rect": [
      330.0,
      1570.0,
      30.0,
      22.0
     ],
     "text": "*~"
    }
   },
   {
    "box": {
     "id": "obj-168",
     "maxclass": "ezdac~",
     "numinlets": 2,
     "numoutlets": 0,
     "patching_rect": [
      330.0,
      1600.0,
      45.0,
      45.0
     ],
     "presentation": 1,
     "presentation_rect": [
      330.0,
      1600.0,
      45.0,
      45.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-169",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      640.0,
      1355.0,
      234.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      640.0,
      1355.0,
      234.0,
      20.0
     ],
     "text": "print feedback to the Max window"
    }
   },
   {
    "box": {
     "id": "obj-170",
     "maxclass": "toggle",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      "int"
     ],
     "parameter_enable": 0,
     "patching_rect": [
      610.0,
      1355.0,
      22.0,
      22.0
     ],
     "presentation": 1,
     "presentation_rect": [
      610.0,
      1355.0,
      22.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-171",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      610.0,
      1325.0,
      117.0,
      22.0
     ],
     "text": "r folkrnn-print"
    }
   },
   {
    "box": {
     "id": "obj-172",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      610.0,
      1390.0,
      40.0,
      22.0
     ],
     "text": "gate"
    }
   },
   {
    "box": {
     "id": "obj-173",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      610.0,
      1420.0,
      103.0,
      22.0
     ],
     "text": "print folkrnn"
    }
   },
   {
    "box": {
     "id": "obj-174",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1350.0,
      40.0,
      560.0,
      20.0
     ],
     "presentation": 1,
     "presentation_rect": [
      1350.0,
      40.0,
      560.0,
      20.0
     ],
     "text": "engine: 'cmd args' -> OSC /folkrnn/<voice>/cmd args; 'global cmd args' -> /folkrnn/cmd args; 'connect HOST PORT FBPORT', 'disconnect', 'voice NAME'"
    }
   },
   {
    "box": {
     "id": "obj-175",
     "maxclass": "newobj",
     "numinlets": 0,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      80.0,
      103.0,
      22.0
     ],
     "text": "r folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-176",
     "maxclass": "newobj",
     "numinlets": 5,
     "numoutlets": 5,
     "outlettype": [
      "",
      "",
      "",
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      110.0,
      271.0,
      22.0
     ],
     "text": "route connect disconnect voice global"
    }
   },
   {
    "box": {
     "id": "obj-177",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "",
      "",
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      150.0,
      75.0,
      22.0
     ],
     "text": "t l l l l"
    }
   },
   {
    "box": {
     "id": "obj-178",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      180.0,
      371.0,
      22.0
     ],
     "text": "global subscribe $3 tokens notes bars tunes applied"
    }
   },
   {
    "box": {
     "id": "obj-179",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1750.0,
      180.0,
      126.0,
      22.0
     ],
     "text": "host $1, port $2"
    }
   },
   {
    "box": {
     "id": "obj-180",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1880.0,
      180.0,
      63.0,
      22.0
     ],
     "text": "port $3"
    }
   },
   {
    "box": {
     "id": "obj-181",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 3,
     "outlettype": [
      "",
      "int",
      "int"
     ],
     "patching_rect": [
      1960.0,
      180.0,
      96.0,
      22.0
     ],
     "text": "unpack s i i"
    }
   },
   {
    "box": {
     "id": "obj-182",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1960.0,
      240.0,
      54.0,
      22.0
     ],
     "text": "zl.reg"
    }
   },
   {
    "box": {
     "id": "obj-183",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1350.0,
      210.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-184",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1960.0,
      270.0,
      161.0,
      22.0
     ],
     "text": "global unsubscribe $1"
    }
   },
   {
    "box": {
     "id": "obj-185",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1960.0,
      300.0,
      103.0,
      22.0
     ],
     "text": "s folkrnn-cmd"
    }
   },
   {
    "box": {
     "id": "obj-186",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      2150.0,
      150.0,
      68.0,
      22.0
     ],
     "text": "tosymbol"
    }
   },
   {
    "box": {
     "id": "obj-187",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      2150.0,
      330.0,
      54.0,
      22.0
     ],
     "text": "zl.reg"
    }
   },
   {
    "box": {
     "id": "obj-188",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      2250.0,
      110.0,
      82.0,
      22.0
     ],
     "text": "loadmess 1"
    }
   },
   {
    "box": {
     "id": "obj-189",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "patching_rect": [
      1350.0,
      270.0,
      47.0,
      22.0
     ],
     "text": "t l b"
    }
   },
   {
    "box": {
     "id": "obj-190",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "patching_rect": [
      1600.0,
      270.0,
      47.0,
      22.0
     ],
     "text": "t l b"
    }
   },
   {
    "box": {
     "id": "obj-191",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      450.0,
      61.0,
      22.0
     ],
     "text": "zl.join"
    }
   },
   {
    "box": {
     "id": "obj-192",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1500.0,
      330.0,
      63.0,
      22.0
     ],
     "text": "zlclear"
    }
   },
   {
    "box": {
     "id": "obj-193",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      300.0,
      82.0,
      22.0
     ],
     "text": "zl.slice 1"
    }
   },
   {
    "box": {
     "id": "obj-194",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1600.0,
      300.0,
      82.0,
      22.0
     ],
     "text": "zl.slice 1"
    }
   },
   {
    "box": {
     "id": "obj-195",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "bang",
      ""
     ],
     "patching_rect": [
      1350.0,
      360.0,
      47.0,
      22.0
     ],
     "text": "t b s"
    }
   },
   {
    "box": {
     "id": "obj-196",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      410.0,
      215.0,
      22.0
     ],
     "text": "sprintf symout /folkrnn/%s/%s"
    }
   },
   {
    "box": {
     "id": "obj-197",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1600.0,
      410.0,
      194.0,
      22.0
     ],
     "text": "sprintf symout /folkrnn/%s"
    }
   },
   {
    "box": {
     "id": "obj-198",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1350.0,
      490.0,
      166.0,
      22.0
     ],
     "text": "udpsend 127.0.0.1 7400"
    }
   },
   {
    "box": {
     "id": "obj-199",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      560.0,
      117.0,
      22.0
     ],
     "text": "udpreceive 9001"
    }
   },
   {
    "box": {
     "id": "obj-200",
     "maxclass": "newobj",
     "numinlets": 4,
     "numoutlets": 4,
     "outlettype": [
      "",
      "",
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      590.0,
      180.0,
      22.0
     ],
     "text": "route /error /pong /note"
    }
   },
   {
    "box": {
     "id": "obj-201",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "bang"
     ],
     "patching_rect": [
      1350.0,
      620.0,
      47.0,
      22.0
     ],
     "text": "t l b"
    }
   },
   {
    "box": {
     "id": "obj-202",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1500.0,
      650.0,
      63.0,
      22.0
     ],
     "text": "zlclear"
    }
   },
   {
    "box": {
     "id": "obj-203",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      770.0,
      61.0,
      22.0
     ],
     "text": "zl.join"
    }
   },
   {
    "box": {
     "id": "obj-204",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      650.0,
      82.0,
      22.0
     ],
     "text": "zl.slice 1"
    }
   },
   {
    "box": {
     "id": "obj-205",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      680.0,
      68.0,
      22.0
     ],
     "text": "tosymbol"
    }
   },
   {
    "box": {
     "id": "obj-206",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1350.0,
      710.0,
      173.0,
      22.0
     ],
     "text": "fromsymbol @separator /"
    }
   },
   {
    "box": {
     "id": "obj-207",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      740.0,
      82.0,
      22.0
     ],
     "text": "zl.ecils 1"
    }
   },
   {
    "box": {
     "id": "obj-208",
     "maxclass": "newobj",
     "numinlets": 5,
     "numoutlets": 5,
     "outlettype": [
      "",
      "",
      "",
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      800.0,
      257.0,
      22.0
     ],
     "text": "route token note tune_start applied"
    }
   },
   {
    "box": {
     "id": "obj-209",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1600.0,
      620.0,
      103.0,
      22.0
     ],
     "text": "prepend error"
    }
   },
   {
    "box": {
     "id": "obj-210",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      840.0,
      82.0,
      22.0
     ],
     "text": "zl.slice 2"
    }
   },
   {
    "box": {
     "id": "obj-211",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      870.0,
      82.0,
      22.0
     ],
     "text": "zl.slice 1"
    }
   },
   {
    "box": {
     "id": "obj-212",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "outlettype": [
      "",
      ""
     ],
     "patching_rect": [
      1350.0,
      900.0,
      96.0,
      22.0
     ],
     "text": "zl.stream 16"
    }
   },
   {
    "box": {
     "id": "obj-213",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      1500.0,
      870.0,
      63.0,
      22.0
     ],
     "text": "zlclear"
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "destination": [
      "obj-3",
      0
     ],
     "source": [
      "obj-4",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-5",
      0
     ],
     "source": [
      "obj-3",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-6",
      0
     ],
     "source": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-8",
      0
     ],
     "source": [
      "obj-6",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-9",
      0
     ],
     "source": [
      "obj-10",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-11",
      0
     ],
     "source": [
      "obj-9",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-14",
      0
     ],
     "source": [
      "obj-13",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-14",
      0
     ],
     "source": [
      "obj-15",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-16",
      0
     ],
     "source": [
      "obj-14",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-18",
      0
     ],
     "source": [
      "obj-19",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-20",
      0
     ],
     "source": [
      "obj-18",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-21",
      0
     ],
     "source": [
      "obj-22",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-23",
      0
     ],
     "source": [
      "obj-21",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-24",
      0
     ],
     "source": [
      "obj-25",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-26",
      0
     ],
     "source": [
      "obj-24",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-27",
      0
     ],
     "source": [
      "obj-28",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-29",
      0
     ],
     "source": [
      "obj-27",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-30",
      0
     ],
     "source": [
      "obj-31",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-32",
      0
     ],
     "source": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-33",
      0
     ],
     "source": [
      "obj-34",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-35",
      0
     ],
     "source": [
      "obj-33",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-39",
      0
     ],
     "source": [
      "obj-38",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-40",
      0
     ],
     "source": [
      "obj-39",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-39",
      0
     ],
     "source": [
      "obj-41",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-42",
      0
     ],
     "source": [
      "obj-40",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-45",
      0
     ],
     "source": [
      "obj-44",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-46",
      0
     ],
     "source": [
      "obj-45",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-45",
      0
     ],
     "source": [
      "obj-47",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-48",
      0
     ],
     "source": [
      "obj-46",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-50",
      0
     ],
     "source": [
      "obj-51",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-52",
      0
     ],
     "source": [
      "obj-53",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-56",
      0
     ],
     "source": [
      "obj-55",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-54",
      0
     ],
     "source": [
      "obj-50",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-55",
      0
     ],
     "source": [
      "obj-54",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-57",
      0
     ],
     "source": [
      "obj-54",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-58",
      0
     ],
     "source": [
      "obj-57",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-58",
      1
     ],
     "source": [
      "obj-52",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-59",
      0
     ],
     "source": [
      "obj-58",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-60",
      0
     ],
     "source": [
      "obj-59",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-61",
      0
     ],
     "source": [
      "obj-62",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-63",
      0
     ],
     "source": [
      "obj-61",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-65",
      0
     ],
     "source": [
      "obj-66",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-67",
      0
     ],
     "source": [
      "obj-68",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-67",
      0
     ],
     "source": [
      "obj-69",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-70",
      0
     ],
     "source": [
      "obj-65",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-74",
      0
     ],
     "source": [
      "obj-70",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-71",
      0
     ],
     "source": [
      "obj-70",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-72",
      0
     ],
     "source": [
      "obj-71",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-72",
      1
     ],
     "source": [
      "obj-67",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-73",
      0
     ],
     "source": [
      "obj-72",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-75",
      0
     ],
     "source": [
      "obj-73",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-76",
      0
     ],
     "source": [
      "obj-74",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-78",
      0
     ],
     "source": [
      "obj-79",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-78",
      0
     ],
     "source": [
      "obj-80",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-81",
      0
     ],
     "source": [
      "obj-82",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-83",
      1
     ],
     "source": [
      "obj-78",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-83",
      2
     ],
     "source": [
      "obj-81",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-84",
      0
     ],
     "source": [
      "obj-83",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-85",
      0
     ],
     "source": [
      "obj-84",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-86",
      0
     ],
     "source": [
      "obj-87",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-88",
      0
     ],
     "source": [
      "obj-86",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-83",
      0
     ],
     "source": [
      "obj-88",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-89",
      0
     ],
     "source": [
      "obj-90",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-91",
      0
     ],
     "source": [
      "obj-89",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-92",
      0
     ],
     "source": [
      "obj-93",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-94",
      0
     ],
     "source": [
      "obj-92",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-83",
      0
     ],
     "source": [
      "obj-94",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-95",
      0
     ],
     "source": [
      "obj-96",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-97",
      0
     ],
     "source": [
      "obj-95",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-98",
      0
     ],
     "source": [
      "obj-99",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-100",
      0
     ],
     "source": [
      "obj-98",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-83",
      0
     ],
     "source": [
      "obj-100",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-101",
      0
     ],
     "source": [
      "obj-102",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-103",
      0
     ],
     "source": [
      "obj-101",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-104",
      0
     ],
     "source": [
      "obj-105",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-106",
      0
     ],
     "source": [
      "obj-104",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-108",
      0
     ],
     "source": [
      "obj-109",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-110",
      0
     ],
     "source": [
      "obj-108",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-111",
      0
     ],
     "source": [
      "obj-110",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-112",
      0
     ],
     "source": [
      "obj-110",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-113",
      0
     ],
     "source": [
      "obj-111",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-114",
      0
     ],
     "source": [
      "obj-112",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-116",
      0
     ],
     "source": [
      "obj-117",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-119",
      0
     ],
     "source": [
      "obj-120",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-119",
      0
     ],
     "source": [
      "obj-118",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-121",
      0
     ],
     "source": [
      "obj-116",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-121",
      1
     ],
     "source": [
      "obj-119",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-122",
      0
     ],
     "source": [
      "obj-121",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-123",
      0
     ],
     "source": [
      "obj-122",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-124",
      0
     ],
     "source": [
      "obj-125",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-126",
      0
     ],
     "source": [
      "obj-124",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-127",
      0
     ],
     "source": [
      "obj-128",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-129",
      0
     ],
     "source": [
      "obj-127",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-133",
      0
     ],
     "source": [
      "obj-132",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-136",
      0
     ],
     "source": [
      "obj-135",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-139",
      0
     ],
     "source": [
      "obj-138",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-142",
      0
     ],
     "source": [
      "obj-141",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-145",
      0
     ],
     "source": [
      "obj-144",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-148",
      0
     ],
     "source": [
      "obj-147",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-150",
      0
     ],
     "source": [
      "obj-151",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-152",
      0
     ],
     "source": [
      "obj-153",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-154",
      0
     ],
     "source": [
      "obj-150",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-155",
      0
     ],
     "source": [
      "obj-154",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-156",
      0
     ],
     "source": [
      "obj-155",
      3
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-158",
      2
     ],
     "source": [
      "obj-156",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-157",
      2
     ],
     "source": [
      "obj-155",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-157",
      1
     ],
     "source": [
      "obj-155",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-157",
      0
     ],
     "source": [
      "obj-155",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-158",
      0
     ],
     "source": [
      "obj-157",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-158",
      1
     ],
     "source": [
      "obj-157",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-159",
      0
     ],
     "source": [
      "obj-152",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-160",
      0
     ],
     "source": [
      "obj-159",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-164",
      1
     ],
     "source": [
      "obj-160",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-163",
      0
     ],
     "source": [
      "obj-160",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-161",
      0
     ],
     "source": [
      "obj-160",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-162",
      0
     ],
     "source": [
      "obj-161",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-164",
      0
     ],
     "source": [
      "obj-163",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-165",
      0
     ],
     "source": [
      "obj-164",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-166",
      0
     ],
     "source": [
      "obj-165",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-167",
      0
     ],
     "source": [
      "obj-162",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-167",
      1
     ],
     "source": [
      "obj-166",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-168",
      0
     ],
     "source": [
      "obj-167",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-168",
      1
     ],
     "source": [
      "obj-167",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-170",
      0
     ],
     "source": [
      "obj-171",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-172",
      0
     ],
     "source": [
      "obj-170",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-173",
      0
     ],
     "source": [
      "obj-172",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-176",
      0
     ],
     "source": [
      "obj-175",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-177",
      0
     ],
     "source": [
      "obj-176",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-180",
      0
     ],
     "source": [
      "obj-177",
      3
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-181",
      0
     ],
     "source": [
      "obj-177",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-182",
      1
     ],
     "source": [
      "obj-181",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-179",
      0
     ],
     "source": [
      "obj-177",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-178",
      0
     ],
     "source": [
      "obj-177",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-183",
      0
     ],
     "source": [
      "obj-178",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-182",
      0
     ],
     "source": [
      "obj-176",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-184",
      0
     ],
     "source": [
      "obj-182",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-185",
      0
     ],
     "source": [
      "obj-184",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-186",
      0
     ],
     "source": [
      "obj-188",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-186",
      0
     ],
     "source": [
      "obj-176",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-187",
      1
     ],
     "source": [
      "obj-186",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-189",
      0
     ],
     "source": [
      "obj-176",
      4
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-190",
      0
     ],
     "source": [
      "obj-176",
      3
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-191",
      1
     ],
     "source": [
      "obj-192",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-192",
      0
     ],
     "source": [
      "obj-189",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-193",
      0
     ],
     "source": [
      "obj-189",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-191",
      1
     ],
     "source": [
      "obj-193",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-192",
      0
     ],
     "source": [
      "obj-190",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-194",
      0
     ],
     "source": [
      "obj-190",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-191",
      1
     ],
     "source": [
      "obj-194",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-195",
      0
     ],
     "source": [
      "obj-193",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-196",
      1
     ],
     "source": [
      "obj-195",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-187",
      0
     ],
     "source": [
      "obj-195",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-196",
      0
     ],
     "source": [
      "obj-187",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-197",
      0
     ],
     "source": [
      "obj-194",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-191",
      0
     ],
     "source": [
      "obj-196",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-191",
      0
     ],
     "source": [
      "obj-197",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-198",
      0
     ],
     "source": [
      "obj-191",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-198",
      0
     ],
     "source": [
      "obj-179",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-199",
      0
     ],
     "source": [
      "obj-180",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-200",
      0
     ],
     "source": [
      "obj-199",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-201",
      0
     ],
     "source": [
      "obj-200",
      3
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-202",
      0
     ],
     "source": [
      "obj-201",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-203",
      1
     ],
     "source": [
      "obj-202",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-204",
      0
     ],
     "source": [
      "obj-201",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-203",
      1
     ],
     "source": [
      "obj-204",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-205",
      0
     ],
     "source": [
      "obj-204",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-206",
      0
     ],
     "source": [
      "obj-205",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-207",
      0
     ],
     "source": [
      "obj-206",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-203",
      0
     ],
     "source": [
      "obj-207",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-208",
      0
     ],
     "source": [
      "obj-203",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-172",
      1
     ],
     "source": [
      "obj-203",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-209",
      0
     ],
     "source": [
      "obj-200",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-172",
      1
     ],
     "source": [
      "obj-209",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-210",
      0
     ],
     "source": [
      "obj-208",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-211",
      0
     ],
     "source": [
      "obj-210",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-212",
      0
     ],
     "source": [
      "obj-211",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-213",
      0
     ],
     "source": [
      "obj-208",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-212",
      0
     ],
     "source": [
      "obj-213",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-132",
      0
     ],
     "source": [
      "obj-212",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-135",
      0
     ],
     "source": [
      "obj-210",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-141",
      0
     ],
     "source": [
      "obj-208",
      3
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-144",
      0
     ],
     "source": [
      "obj-200",
      0
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-147",
      0
     ],
     "source": [
      "obj-200",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-138",
      0
     ],
     "source": [
      "obj-208",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-154",
      1
     ],
     "source": [
      "obj-208",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-159",
      1
     ],
     "source": [
      "obj-208",
      1
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-138",
      0
     ],
     "source": [
      "obj-200",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-154",
      1
     ],
     "source": [
      "obj-200",
      2
     ]
    }
   },
   {
    "patchline": {
     "destination": [
      "obj-159",
      1
     ],
     "source": [
      "obj-200",
      2
     ]
    }
   }
  ]
 }
}
