"""spark-submit entry point: `count_tokens` (see `python -m tokenmill count_tokens --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("count_tokens"))
