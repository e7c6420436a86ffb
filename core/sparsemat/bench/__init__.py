"""``sparsemat bench``: speed, memory and quality of SparseMat against dense, patch and guided-filter baselines.

* :mod:`sparsemat.bench.plates` — seeded generated plate sequences (EXR) with ground truth and a prior;
* :mod:`sparsemat.bench.methods` — the measured methods and the stage clock;
* :mod:`sparsemat.bench.runner` — one fresh subprocess per measurement (per-method peak memory);
* :mod:`sparsemat.bench.report` — the Markdown report, targets and matplotlib plots.
"""

from sparsemat.bench.runner import BenchPlan, run_bench

__all__ = ["BenchPlan", "run_bench"]
