"""spark-submit jobs/audio_features.py --source <preset|folder|Parquet> | --config C: audio -> log-mel + text."""

import sys

from tokenmill.cli import main

sys.exit(main("audio_features"))
