"""spark-submit entry point: `build_mixture` (see `python -m tokenmill build_mixture --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("build_mixture"))
