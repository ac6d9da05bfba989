"""spark-submit entry point: `dedup_minhash` (see `python -m tokenmill dedup_minhash --help`)."""

import sys

from tokenmill.cli import main

if __name__ == "__main__":
    sys.exit(main("dedup_minhash"))
