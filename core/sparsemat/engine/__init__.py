"""The SparseMat engine: sparsity maps, SHM refinement, Eq. 2 blend, cascade, frame history."""

from sparsemat.engine.frames import ArraySource, FrameInput, FrameSource
from sparsemat.engine.result import FrameResult, FrameStats
from sparsemat.engine.session import Session, resolve_device

__all__ = ["ArraySource", "FrameInput", "FrameResult", "FrameSource", "FrameStats", "Session", "resolve_device"]
