"""Fail early, with a clear message, when the interpreter is too old for floorbridge."""

import sys

if sys.version_info < (3, 11):
    sys.exit(f"floorbridge needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
