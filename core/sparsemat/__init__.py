"""SparseMat: ultrahigh-resolution alpha matting with spatio-temporal sparsity.

Public API (stable): :class:`Settings`, :class:`OutputSettings`, the error classes, and, from
:mod:`sparsemat.engine`, :class:`Session` and :class:`FrameResult`.
"""

from sparsemat.errors import (
    BudgetWarning,
    DeviceError,
    InputError,
    InputWarning,
    MissingFrameError,
    ModelError,
    OutputError,
    SettingsError,
    SparseMatError,
)
from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, KnobSpec, OutputSettings, Settings
from sparsemat.version import __version__

__all__ = [
    "ENGINE_KNOBS",
    "OUTPUT_KNOBS",
    "BudgetWarning",
    "DeviceError",
    "InputError",
    "InputWarning",
    "KnobSpec",
    "MissingFrameError",
    "ModelError",
    "OutputError",
    "OutputSettings",
    "Settings",
    "SettingsError",
    "SparseMatError",
    "__version__",
]
