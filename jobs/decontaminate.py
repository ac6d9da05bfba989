"""spark-submit entry point: `decontaminate` (see `python -m tokenmill decontaminate --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("decontaminate"))
