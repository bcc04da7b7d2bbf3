"""`python -m cafctl`."""

import sys

from cafctl.cli import main

sys.exit(main())
