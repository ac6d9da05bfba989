"""spark-submit --py-files dist/tokenmill.zip jobs/pipeline.py --config conf/sample.yaml"""

import sys

from tokenmill.runner import main

sys.exit(main("pipeline"))
