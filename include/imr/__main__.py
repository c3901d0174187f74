"""`python -m imr`: the `imr` command line (imr.cli)."""

import sys

from .cli import main

sys.exit(main())
