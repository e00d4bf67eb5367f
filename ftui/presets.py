"""Where the YAML presets and their sample datasets live.

`presets/` sits beside the package in a checkout; an installed copy (the Docker image) points
at it with $FTUI_PRESETS_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

PRESETS_DIR = Path(
    os.environ.get("FTUI_PRESETS_DIR") or Path(__file__).resolve().parents[1] / "presets"
)
SAMPLES_DIR = PRESETS_DIR / "data"
