"""``python -m mcalloc`` runs the mcalloc command line."""

import sys

from mcalloc.cli.main import main

sys.exit(main())
