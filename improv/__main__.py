"""Run ``python -m improv``."""

import sys

from improv.cli import main

sys.exit(main())
