"""``python -m engine`` runs the mcalloc command line."""

import sys

from engine.cli.main import main

sys.exit(main())
