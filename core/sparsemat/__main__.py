"""``python -m sparsemat`` runs the command-line interface."""

import sys

from sparsemat.cli.main import main

sys.exit(main())
