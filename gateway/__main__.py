"""``python -m gateway`` runs the ``fedgate`` command line."""

from __future__ import annotations

import sys

from gateway.cli import main

sys.exit(main())
