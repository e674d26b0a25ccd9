import sys

from folkrnn_live.cli.main import main

sys.exit(main())
