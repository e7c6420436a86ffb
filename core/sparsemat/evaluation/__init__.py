"""Evaluation: matting metrics (MAD, MSE, SAD, Grad, Conn, dtSSD), trimaps, the guided-filter baseline
and Markdown report tables. (The same-resolution ``guided_filter`` function lives in the
:mod:`sparsemat.evaluation.guided_filter` module and is not re-exported, so the module name stays usable.)"""

from sparsemat.evaluation.guided_filter import bilinear_upsample, box_filter, guided_upsample
from sparsemat.evaluation.metrics import (
    METRICS,
    UNITS,
    conn,
    dtssd,
    dtssd_sequence,
    evaluate,
    grad,
    mad,
    make_trimap,
    mse,
    sad,
    unknown_mask,
)
from sparsemat.evaluation.report import format_table, mean_rows

__all__ = [
    "METRICS",
    "UNITS",
    "bilinear_upsample",
    "box_filter",
    "conn",
    "dtssd",
    "dtssd_sequence",
    "evaluate",
    "format_table",
    "grad",
    "guided_upsample",
    "mad",
    "make_trimap",
    "mean_rows",
    "mse",
    "sad",
    "unknown_mask",
]
