"""Model registry and checkpoint loading: the only place hyperparameters and weight files meet.

``build_shm("lite")`` builds the registered variant and loads ``weights/shm_lite.pt`` when it is
shipped (:data:`~sparsemat.settings.DEFAULT_MODEL` names the default); ``build_shm("path/to/ckpt.pt")`` loads a
checkpoint (its ``config`` entry names the widths).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparsemat.convert import load_weights_file
from sparsemat.engine.colour_samples import levels_problem
from sparsemat.errors import ModelError
from sparsemat.models.shm import SHM, SHMConfig
from sparsemat.settings import DEFAULT_MODEL

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Registered SHM variants.
SHM_CONFIGS: dict[str, SHMConfig] = {
    "paper": SHMConfig(stem=64, layers=(64, 128, 256, 512), decoder=(256, 256, 64), head=(32, 16)),
    "lite": SHMConfig(stem=16, layers=(16, 32, 64, 96), decoder=(64, 48, 16), head=(16, 8), residual=True,
                      guided_prior=True, bytes_per_site=2000.0),
    "lite_cs": SHMConfig(stem=16, layers=(16, 32, 64, 96), decoder=(64, 48, 16), head=(16, 8), residual=True,
                         guided_prior=True, colour_samples=True, bytes_per_site=2000.0),
}
# lite_cs2: the lite_cs network trained on whole-composite views (--whole-view); the default until 2026-12-03
SHM_CONFIGS["lite_cs2"] = SHM_CONFIGS["lite_cs"]
# lite_cs3: lite_cs2 fine-tuned with texture cases, frozen BN and distillation towards lite_cs2; the default until 2026-12-06
SHM_CONFIGS["lite_cs3"] = SHM_CONFIGS["lite_cs"]
# lite_cs4: lite_cs3 trained on with grown, choked, noisy and compound mattes drawn more often, distilled towards
# lite_cs3; the default (MODEL_CARD.md)
SHM_CONFIGS["lite_cs4"] = SHM_CONFIGS["lite_cs"]
# lite_csw: lite_cs with every stem, layer, decoder and head width 1.5 times (1.53 M parameters), widened from
# lite_cs4 (sparsemat.train.widen) and trained on; opt-in (MODEL_CARD.md); bytes_per_site scaled from lite's by the widths
SHM_CONFIGS["lite_csw"] = dataclasses.replace(SHM_CONFIGS["lite_cs"], stem=24, layers=(24, 48, 96, 144),
                                              decoder=(96, 72, 24), head=(24, 12), bytes_per_site=3000.0)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def shipped_weight_path(name: str) -> Path:
    """Path of the shipped weight file of variant ``name`` (may not exist)."""
    return WEIGHTS_DIR / f"shm_{name}.pt"


def _config_from(obj: Any) -> SHMConfig:
    if isinstance(obj, SHMConfig):
        return obj
    if isinstance(obj, str) and obj in SHM_CONFIGS:
        return SHM_CONFIGS[obj]
    if isinstance(obj, dict):
        fields = {f.name for f in dataclasses.fields(SHMConfig)}
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in obj.items() if k in fields}
        cfg = SHMConfig(**kwargs)
        problem = levels_problem(tuple(cfg.sample_levels))
        if problem:
            raise ModelError(f"Checkpoint config has colour-sample levels {cfg.sample_levels!r}: it {problem}.")
        return cfg
    raise ModelError(
        f"Checkpoint config {obj!r} is neither a registered SHM name ({', '.join(SHM_CONFIGS)}) nor a dict."
    )


def load_checkpoint(
    path: str | Path, flags: dict[str, Any] | None = None
) -> tuple[SHMConfig, dict[str, torch.Tensor]]:
    """Read an SHM checkpoint: ``{"config": name | dict, "state_dict": ...}`` or a bare state dict.

    A bare state dict is matched against the registered variants by shapes. ``flags``, when given, receives
    the checkpoint's ``lpn_ctx`` entry (True for converted official SHMs that need the LPN's context).
    """
    p = Path(path)
    try:
        ckpt = load_weights_file(p)
    except FileNotFoundError as exc:
        raise ModelError(f"SHM checkpoint '{p}' does not exist.") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad checkpoint for the user
        raise ModelError(f"SHM checkpoint '{p}' cannot be read: {exc}") from exc
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        if flags is not None:
            flags["lpn_ctx"] = bool(ckpt.get("lpn_ctx", False))
        state = ckpt["state_dict"]
        cfg = _config_from(ckpt.get("config", "paper"))
        return cfg, state
    if not isinstance(ckpt, dict):
        raise ModelError(f"SHM checkpoint '{p}' holds a {type(ckpt).__name__}, not a state dict.")
    for cfg in SHM_CONFIGS.values():
        ref = SHM(cfg).state_dict()
        if ref.keys() == ckpt.keys() and all(ref[k].shape == ckpt[k].shape for k in ref):
            return cfg, ckpt
    raise ModelError(f"SHM checkpoint '{p}' matches no registered variant ({', '.join(SHM_CONFIGS)}).")


def build_shm(name_or_path: str | Path = DEFAULT_MODEL, device: torch.device | str = "cpu") -> SHM:
    """Build an SHM in eval mode on ``device``.

    Args:
        name_or_path: a registered variant (``lite_cs4`` the default, ``lite_cs3``, ``lite_cs2``, ``lite_cs``, ``lite``, ``paper``) — loads
            the shipped ``weights/shm_<name>.pt`` when it exists, else random init (logged as untrained) — or
            the path of a checkpoint file.
        device: torch device.

    Raises:
        ModelError: unknown name, unreadable or mismatching checkpoint.
    """
    key = str(name_or_path)
    if key not in SHM_CONFIGS:  # a path, as the model knob allows it: "file:" prefix and "~" expanded
        key = os.path.expanduser(key.removeprefix("file:"))
    flags: dict[str, Any] = {}
    if key in SHM_CONFIGS:
        cfg = SHM_CONFIGS[key]
        weight = shipped_weight_path(key)
        state: dict[str, torch.Tensor] | None = None
        if weight.is_file():
            cfg, state = load_checkpoint(weight, flags)
        else:
            log.warning(
                "No shipped weights for SHM '%s' (%s): the model is randomly initialised and untrained.", key, weight
            )
    elif Path(key).suffix in (".pt", ".pth", ".ckpt") or Path(key).exists():
        cfg, state = load_checkpoint(key, flags)
    else:
        raise ModelError(f"Unknown SHM model '{key}': use one of {', '.join(SHM_CONFIGS)} or a checkpoint path.")
    model = SHM(cfg)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelError(f"SHM checkpoint for '{key}' does not fit the {cfg} network: {exc}") from exc
    # A converted official SHM was trained on the LPN's dec16x features: the engine passes the prior's
    # ``last_ctx`` to refiners with this attribute set (Session._ctx).
    model.uses_prior_context = bool(flags.get("lpn_ctx", False))  # type: ignore[assignment]
    return model.to(device).eval()
