"""`python -m tokenmill <job> ...`"""

import sys

from .runner import main

sys.exit(main())
