"""spark-submit entry point: `langid_eval` (see `python -m tokenmill langid_eval --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("langid_eval"))
