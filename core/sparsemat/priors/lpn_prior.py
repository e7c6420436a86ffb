"""``lpn`` prior: SparseMat's own low-resolution prior network (:class:`sparsemat.models.lpn.LPN`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from sparsemat.convert import load_weights_file, strip_official
from sparsemat.errors import ModelError
from sparsemat.models.lpn import LPN
from sparsemat.priors.base import check_lr_rgb, resize_alpha, resize_rgb, torch_device

#: Weights shipped with the package (converted official or project-trained), loaded when present.
SHIPPED_LPN_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "lpn.pt"


class UntrainedModelWarning(UserWarning):
    """A network runs with random weights: its output is not a real matte."""


def load_lpn_weights(lpn: LPN, path: str | Path) -> None:
    """Load LPN weights (our format or an official/converted one, optionally ``lpn.``-prefixed), strictly."""
    path = Path(path)
    try:
        raw = load_weights_file(path)
    except Exception as exc:
        raise ModelError(f"Cannot read LPN weights {path}: {exc}") from exc
    sd = strip_official(raw, str(path))
    if any(k.startswith("lpn.") for k in sd):
        sd = {k[4:]: v for k, v in sd.items() if k.startswith("lpn.")}
    try:
        lpn.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"LPN weights {path} do not match the LPN architecture: {str(exc)[:500]}") from exc


class LpnPrior:
    """The LPN as a prior (single-frame, no temporal state).

    Args:
        weights: LPN weights file; default: the shipped ``sparsemat/weights/lpn.pt`` when present,
            else random initialisation with an :class:`UntrainedModelWarning`.
        device: ``cpu``, ``cuda`` or ``auto``.

    Attributes:
        last_ctx: [1, 32, h/16, w/16] float32 ``dec16x`` features of the last :meth:`predict`
            (for official checkpoints whose Masked-SE was trained on them), or None.
        trained: False when the network runs with random weights.
        recurrent: always False (no temporal state).
    """

    name = "lpn"
    recurrent = False

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        self.device = torch_device(device)
        self.net = LPN()
        path = Path(weights) if weights is not None else (SHIPPED_LPN_WEIGHTS if SHIPPED_LPN_WEIGHTS.is_file() else None)
        if weights is not None and not Path(weights).is_file():
            raise ModelError(f"LPN weights file not found: {weights}")
        self.trained = path is not None
        if path is not None:
            load_lpn_weights(self.net, path)
        else:
            warnings.warn(
                "The LPN prior has no trained weights (sparsemat/weights/lpn.pt is missing): it runs with random "
                "weights and its output is not a real matte. Use the 'input' or 'rvm' prior, or convert the official "
                "checkpoints with `sparsemat convert-official`.",
                UntrainedModelWarning,
                stacklevel=2,
            )
        self.weights_path = path
        self.net.eval().to(self.device)
        self.last_ctx: Tensor | None = None

    def reset(self) -> None:
        """Forget the last context features (the LPN has no temporal state)."""
        self.last_ctx = None

    @torch.no_grad()  # not inference_mode: callers may update the result in place
    def predict(self, lr_rgb: Tensor) -> Tensor:
        """Run the LPN on one frame.

        Args:
            lr_rgb: [1, 3, h, w] float32 display sRGB in [0, 1]. Sizes that are not multiples of 32 are
                resized to the next multiple internally and the alpha is resized back.

        Returns:
            [1, 1, h, w] float32 alpha in [0, 1] on ``lr_rgb``'s device.
        """
        check_lr_rgb(lr_rgb, self.name)
        h, w = lr_rgb.shape[-2:]
        size = (-(-h // 32) * 32, -(-w // 32) * 32)
        x = resize_rgb(lr_rgb.to(self.device, torch.float32), size) * 2.0 - 1.0
        alpha, ctx = self.net(x)
        self.last_ctx = ctx
        return resize_alpha(alpha, (h, w)).to(lr_rgb.device)
