"""`python -m tokenmill <job> ...`"""

import sys

from .cli import main

sys.exit(main())
