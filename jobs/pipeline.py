"""spark-submit --py-files dist/tokenmill.zip jobs/pipeline.py --config conf/pipelines/sample.yaml"""

import sys

from tokenmill.cli import main

sys.exit(main("pipeline"))
