"""spark-submit entry point: `train_quality` (see `python -m tokenmill train_quality --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("train_quality"))
