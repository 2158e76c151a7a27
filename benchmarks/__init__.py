"""`make bench`: what each endpoint costs in DynamoDB work, time and size, next to the alternatives users pick.

`python -m benchmarks [MEASURE ...]` runs every measure (or the named ones) and writes `results.md` and plots.
Counts are exact; times are ratios and medians from the same run on a shared machine, never pass/fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "common"
if str(LAYER) not in sys.path:  # the layer is on the path in Lambda; here it is a source directory
    sys.path.insert(0, str(LAYER))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
