"""python jobs/sample.py --out data/sample: write the deterministic sample crawl."""

import sys

from tokenmill.cli import main

sys.exit(main("sample"))
