"""spark-submit entry point: `plan_mixture` (see `python -m tokenmill plan_mixture --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("plan_mixture"))
