"""The store's tests import their PostgreSQL helpers (store_testing) by name."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest runs with --import-mode=importlib, so a test's own folder is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
