"""Shared fixtures. ``HIVE_TEST_TIME_SCALE`` scales every wait (one timing unit)."""

from __future__ import annotations

import os

TIME_SCALE = float(os.environ.get("HIVE_TEST_TIME_SCALE", "1"))
