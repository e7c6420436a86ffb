"""Run any ``sparsemat`` command with other colour-sample thresholds (docs/models.md, "Twenty-third session", Q).

The refiner's colour-sample inputs take foreground colours where the low-res prior is above
``sparsemat.engine.colour_samples.FG_LEVEL`` (0.98) and background colours below ``BG_LEVEL`` (0.02). This wrapper sets
both for one run, training (the data workers too: the patch runs at import, and spawned workers import this file) and
evaluation alike, so a model trained with other levels is also scored with them. The levels are not yet a property of
a model: weights trained this way must be run through this wrapper.

Usage::

    SM_LEVELS=0.8/0.2 python tools/with_sample_levels.py train shm --config lite_cs --init ... --out runs/Q
    SM_LEVELS=0.8/0.2 python tools/with_sample_levels.py eval --validation --kinds target --model runs/Q/last.pt
"""

from __future__ import annotations

import os
import sys

import sparsemat.engine.colour_samples as colour_samples

_fg, _bg = (float(v) for v in os.environ.get("SM_LEVELS", "0.98/0.02").split("/"))
colour_samples.FG_LEVEL, colour_samples.BG_LEVEL = _fg, _bg

if __name__ == "__main__":
    from sparsemat.cli.main import main

    print(f"colour-sample levels: foreground above {_fg}, background below {_bg}", flush=True)
    sys.exit(main(sys.argv[1:]))
