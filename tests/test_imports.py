"""Nothing heavy at import: importing the engine loads no model, table or deep-learning stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import sys
import engine.search, engine.evidence, engine.services, models.calibration, models.embedders
from models.calibration import default_calibration
heavy = sorted(m for m in ("torch", "torchvision", "timm", "scipy.interpolate") if m in sys.modules)
print(heavy, default_calibration.cache_info().currsize)
"""


def test_importing_the_engine_loads_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "[] 0", done.stdout + done.stderr
