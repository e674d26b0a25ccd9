"""The ``folkrnn-live`` command line.  Every module in this package that defines
``register(subparsers)`` adds one subcommand; :mod:`folkrnn_live.cli.main` finds them."""
