"""Activation recordings: the recorder the server and ``record`` write with, and their reader.

Used by the server (``folkrnn_live.server``) and by the analyses (``folkrnn_live.analysis``); it imports
neither, so the server does not depend on the analyses.  See docs/recording-format.md for the files.
"""

from folkrnn_live.recording.recorder import Recorder, RecorderStats, RecordingFull
from folkrnn_live.recording.recording import Recording, RecordingError, load_recording

__all__ = ["Recorder", "RecorderStats", "Recording", "RecordingError", "RecordingFull", "load_recording"]
