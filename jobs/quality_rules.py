"""spark-submit entry point: `quality_rules` (see `python -m tokenmill quality_rules --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("quality_rules"))
