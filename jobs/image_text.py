"""spark-submit jobs/image_text.py --source <preset|Parquet|JSONL> | --config C: clean, filter, dedup image–caption pairs."""

import sys

from tokenmill.cli import main

sys.exit(main("image_text"))
