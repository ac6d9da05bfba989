"""`python -m tokenmill.sample [--out data/sample]`"""

import sys

from ..cli import main

sys.exit(main("sample"))
