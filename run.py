#!/usr/bin/env python3
"""floorbridge entry point: `python run.py --help`."""

import sys

from floorbridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
