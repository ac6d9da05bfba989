"""`python -m tokenmill.sample [--out data/sample]`"""

import sys

from ..runner import main

sys.exit(main("sample"))
