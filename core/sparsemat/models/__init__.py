"""SparseMat network modules (``nn.Module`` only; checkpoints load in :mod:`sparsemat.builders`)."""

from __future__ import annotations

from sparsemat.models.context import ContextEncoder, MaskedSE
from sparsemat.models.shm import SHM, SHMConfig, SHMOutput

__all__ = ["SHM", "ContextEncoder", "MaskedSE", "SHMConfig", "SHMOutput"]
