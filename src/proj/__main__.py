"""``python -m proj``: the same command line as the ``proj`` console script."""
import sys

from proj.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
