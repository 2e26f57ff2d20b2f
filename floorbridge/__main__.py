"""`python -m floorbridge`: the command line, as `run.py` (how a web process starts its chat worker)."""

import sys

from floorbridge.cli import main

sys.exit(main())
