"""Convert the official SparseMat checkpoints (nowsyn/SparseMat, spconv 1.2.1) to SparseMat's modules.

Inputs (official file names):

* ``lpn.pth``: the pre-trained LPN (keys ``backbone.model.features.*``, ``decoder.*``, ``aux_head.*``).
* ``SparseMat.pth``: the whole network (``lpn.*`` + ``shm.*``), possibly under ``state_dict`` /
  ``model_state_dict`` and with DataParallel ``module.`` prefixes.

The official inference script loads the LPN from ``SparseMat.pth`` (its BatchNorm statistics kept
updating while the SHM trained), so that LPN is preferred when both files are given.

What changes on the way:

* **LPN**: nothing; our :class:`~sparsemat.models.lpn.LPN` mirrors the official module names, so keys
  map 1:1 (only prefixes are stripped).
* **SHM sparse convs**: spconv 1.x stores weights as RSCK ``[kh, kw, C_in, C_out]``; ours (spconv 2.x
  KRSC) are ``[C_out, kh, kw, C_in]`` = ``permute(3, 0, 1, 2)``. This holds for SubM, strided and
  inverse convs alike.
* **layer1 128-in quirk**: ``layer1.0.conv1`` and ``layer1.0.downsample.0`` were built with 128 input
  channels but fed 64; spconv 1.2.1 viewed the filter as ``[-1, 64, 64]`` and used the first 9 slices.
  We take the first ``9*64*64`` values, view them as ``[9 offsets, 64 in, 64 out]`` and convert.
* **SHM names**: the official stem ``backbone.conv1/bn1/conv2/bn2/conv3/bn3`` → ``stem.{0,1,2}.{0,1}``;
  ``backbone.layerN`` → ``layerN``; ``ctx.conv_{f,b,g}.layers.0`` → ``se.{fg,bg,gate}``;
  ``decoder.conv_up{1,2,3}`` → ``up{1,2,3}``; ``decoder.conv_up4_alpha`` → ``head``;
  ``decoder.conv_p8x/p4x/p2x`` (side outputs at strides 4/2/1) → ``p4x/p2x/p1x``.
* **Context**: the official Masked-SE was trained on the LPN's ``dec16x`` features. Our SHM also has
  a :class:`~sparsemat.models.context.ContextEncoder` (``context.*``) with no official counterpart;
  its parameters are filled with the reference initialisation so the checkpoint loads strictly, and
  the checkpoint is marked ``"lpn_ctx": True``: run it with ``ctx`` = the LPN prior's ``last_ctx``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sparsemat.errors import ModelError
from sparsemat.models.lpn import LPN

SOURCE = "nowsyn/SparseMat official checkpoint (converted by sparsemat.convert)"

#: Official SHM module prefixes → ours (first match wins; keys without the ``shm.`` prefix).
SHM_PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("backbone.conv1.", "stem.0.0."),
    ("backbone.bn1.", "stem.0.1."),
    ("backbone.conv2.", "stem.1.0."),
    ("backbone.bn2.", "stem.1.1."),
    ("backbone.conv3.", "stem.2.0."),
    ("backbone.bn3.", "stem.2.1."),
    ("backbone.layer", "layer"),
    ("ctx.conv_f.layers.0.", "se.fg."),
    ("ctx.conv_b.layers.0.", "se.bg."),
    ("ctx.conv_g.layers.0.", "se.gate."),
    ("decoder.conv_up1.", "up1."),
    ("decoder.conv_up2.", "up2."),
    ("decoder.conv_up3.", "up3."),
    ("decoder.conv_up4_alpha.", "head."),
    ("decoder.conv_p8x.", "p4x."),
    ("decoder.conv_p4x.", "p2x."),
    ("decoder.conv_p2x.", "p1x."),
)

#: Official keys whose filter has the 128-in quirk.
QUIRK_KEYS: tuple[str, ...] = ("backbone.layer1.0.conv1.weight", "backbone.layer1.0.downsample.0.weight")

_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# ------------------------------------------------------------------------------------------------
# weight layouts
# ------------------------------------------------------------------------------------------------


def rsck_to_krsc(w: Tensor) -> Tensor:
    """spconv 1.x filter ``[kh, kw, C_in, C_out]`` → ours (spconv 2.x) ``[C_out, kh, kw, C_in]``."""
    if w.dim() != 4:
        raise ModelError(f"A sparse conv filter must be 4-D [kh, kw, C_in, C_out], got {tuple(w.shape)}.")
    return w.permute(3, 0, 1, 2).contiguous()


def quirk_filter_to_krsc(w: Tensor, in_channels: int = 64) -> Tensor:
    """Recover the filter spconv 1.2.1 actually applied from a filter declared with too many inputs.

    Args:
        w: ``[kh, kw, C_decl, C_out]`` RSCK as stored (layer1: ``[3, 3, 128, 64]``).
        in_channels: channels actually fed (64).

    Returns:
        ``[C_out, kh, kw, in_channels]`` KRSC: the first ``kh*kw*in_channels*C_out`` values viewed as
        ``[kh*kw offsets, in_channels, C_out]`` (what ``indiceConv`` read), then converted.
    """
    kh, kw, _, cout = w.shape
    n = kh * kw * in_channels * cout
    used = w.reshape(-1)[:n].view(kh * kw, in_channels, cout)
    return rsck_to_krsc(used.view(kh, kw, in_channels, cout))


# ------------------------------------------------------------------------------------------------
# state-dict plumbing
# ------------------------------------------------------------------------------------------------


def _numpy_scalar_globals() -> list[Any]:
    """What a training script's pickled numpy scalars need under ``weights_only`` loading.

    The official ``train.py`` saves ``best_mad`` as a ``numpy.float64`` next to the weights; numpy 1.x
    pickles name its constructor ``numpy.core.multiarray.scalar``, numpy 2.x ``numpy._core…``.
    """
    try:
        from numpy._core.multiarray import scalar  # type: ignore[attr-defined,no-redef]  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[attr-defined,no-redef]
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return [np.dtype, *dtypes, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]


def load_weights_file(path: Path) -> Any:
    """``torch.load`` with ``weights_only`` (no code runs from the file), accepting numpy scalars."""
    with torch.serialization.safe_globals(_numpy_scalar_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_official(path: str | Path) -> dict[str, Tensor]:
    """Read an official checkpoint: unwrap ``state_dict``/``model_state_dict`` and strip ``module.``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"Official checkpoint not found: {p}")
    try:
        obj = load_weights_file(p)
    except Exception as exc:
        raise ModelError(f"Cannot read the official checkpoint {p}: {exc}") from exc
    return strip_official(obj, str(p))


def strip_official(obj: Any, source: str = "checkpoint") -> dict[str, Tensor]:
    """Unwrap containers and strip DataParallel ``module.`` prefixes (anywhere before ``lpn.``/``shm.``)."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ModelError(f"{source} does not hold a state dict (found {type(obj).__name__}).")
    out: dict[str, Tensor] = {}
    for k, v in obj.items():
        if not isinstance(v, Tensor):
            continue
        while k.startswith("module."):
            k = k[len("module.") :]
        k = k.replace(".module.", ".")
        out[k] = v
    return out


def split_official(sd: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split a whole-network state dict into (LPN keys, SHM keys) without their ``lpn.``/``shm.`` prefixes.

    A state dict without those prefixes is classified by its keys (``backbone.model.*`` = LPN).
    """
    lpn = {k[4:]: v for k, v in sd.items() if k.startswith("lpn.")}
    shm = {k[4:]: v for k, v in sd.items() if k.startswith("shm.")}
    if not lpn and not shm:
        if any(k.startswith("backbone.model.") for k in sd):
            lpn = dict(sd)
        elif any(k.startswith(("backbone.layer", "decoder.conv_up")) for k in sd):
            shm = dict(sd)
    return lpn, shm


def _check_against(sd: Mapping[str, Tensor], ref: Mapping[str, Tensor], what: str, optional: tuple[str, ...] = ()) -> None:
    missing = sorted(k for k in ref if k not in sd and not k.startswith(optional))
    unexpected = sorted(k for k in sd if k not in ref)
    wrong = sorted(f"{k} {tuple(sd[k].shape)} (expected {tuple(ref[k].shape)})" for k in sd if k in ref and sd[k].shape != ref[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                parts.append(f"{label}: {', '.join(items[:6])}{' …' if len(items) > 6 else ''} ({len(items)})")
        raise ModelError(f"{what} does not match: " + "; ".join(parts))


# ------------------------------------------------------------------------------------------------
# LPN
# ------------------------------------------------------------------------------------------------


def convert_lpn_state_dict(sd: Mapping[str, Tensor], source: str = "LPN checkpoint") -> dict[str, Tensor]:
    """Official LPN state dict (prefixes stripped) → ours (1:1 names), validated against :class:`LPN`.

    ``num_batches_tracked`` buffers missing from old checkpoints are filled with 0.
    """
    ref = LPN().state_dict()
    out = {k: v.detach().clone() for k, v in sd.items()}
    for k in ref:
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros((), dtype=torch.long)
    _check_against(out, ref, source)
    return {k: out[k].to(ref[k].dtype) for k in ref}


# ------------------------------------------------------------------------------------------------
# SHM
# ------------------------------------------------------------------------------------------------


def official_shm_shapes() -> dict[str, tuple[int, ...]]:
    """Official SHM keys (without ``shm.``) and shapes, from the paper-width network (method.md §4).

    Sparse conv filters are RSCK ``[kh, kw, C_in, C_out]``; layer1.0's conv1/downsample declare 128
    inputs. Dense Masked-SE convs are ``[C_out, C_in, 1, 1]``.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for s in _BN_SUFFIXES:
            shapes[f"{prefix}.{s}"] = () if s == "num_batches_tracked" else (c,)

    def conv(prefix: str, cin: int, cout: int, k: int = 3, bias: bool = False) -> None:
        shapes[f"{prefix}.weight"] = (k, k, cin, cout)
        if bias:
            shapes[f"{prefix}.bias"] = (cout,)

    conv("backbone.conv1", 4, 64)
    bn("backbone.bn1", 64)
    conv("backbone.conv2", 64, 64)
    bn("backbone.bn2", 64)
    conv("backbone.conv3", 64, 64)
    bn("backbone.bn3", 64)
    cin = 128  # the official inplanes bug
    for n, c in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            p = f"backbone.layer{n}.{b}"
            conv(f"{p}.conv1", cin if b == 0 else c, c)
            bn(f"{p}.bn1", c)
            conv(f"{p}.conv2", c, c, bias=True)
            bn(f"{p}.bn2", c)
            if b == 0:
                conv(f"{p}.downsample.0", cin, c)
                bn(f"{p}.downsample.1", c)
        cin = c
    for name, ci, co in (("conv_f", 32, 32), ("conv_b", 32, 32), ("conv_g", 64, 512)):
        shapes[f"ctx.{name}.layers.0.weight"] = (co, ci, 1, 1)
        shapes[f"ctx.{name}.layers.0.bias"] = (co,)
    for name, ci, co in (("conv_up1", 512, 256), ("conv_up2", 320, 256), ("conv_up3", 320, 64)):
        conv(f"decoder.{name}.0", ci, co, bias=True)
        bn(f"decoder.{name}.1", co)
    conv("decoder.conv_up4_alpha.0", 67, 32, bias=True)
    conv("decoder.conv_up4_alpha.2", 32, 16, bias=True)
    conv("decoder.conv_up4_alpha.4", 16, 1, k=1)
    conv("decoder.conv_p8x", 256, 1, k=1)
    conv("decoder.conv_p4x", 256, 1, k=1)
    conv("decoder.conv_p2x", 64, 1, k=1)
    return shapes


def shm_key(official: str) -> str:
    """Our SHM key for an official SHM key (without ``shm.``); ModelError when no rule applies."""
    for old, new in SHM_PREFIX_MAP:
        if official.startswith(old):
            return new + official[len(old) :]
    raise ModelError(f"Official SHM key '{official}' has no counterpart in SparseMat's SHM.")


def _is_sparse_filter(official: str, v: Tensor) -> bool:
    return official.startswith(("backbone.", "decoder.")) and official.endswith(".weight") and v.dim() == 4


def convert_shm_state_dict(
    sd: Mapping[str, Tensor], reference: Mapping[str, Tensor] | None = None, source: str = "SHM checkpoint"
) -> dict[str, Tensor]:
    """Official SHM state dict (without ``shm.``) → ours for the ``paper`` variant.

    Args:
        sd: official keys and tensors (RSCK sparse filters).
        reference: our SHM ``state_dict()`` (default: a fresh ``SHM(SHM_CONFIGS["paper"])``); its
            ``context.*`` entries fill the context encoder, which has no official counterpart: the
            converted model is marked ``lpn_ctx`` and the engine hands it the official LPN's ``dec16x``
            instead (it refuses any other prior), so those seeded placeholder weights never run.
        source: file name for error messages.

    Returns:
        a state dict that loads into the reference SHM with ``strict=True``.
    """
    expected = official_shm_shapes()
    _check_against(
        {k: v for k, v in sd.items()}, {k: torch.empty(s) for k, s in expected.items()}, f"{source} (official SHM)",
        optional=tuple(k for k in expected if k.endswith("num_batches_tracked")),
    )  # fmt: skip
    if reference is None:
        from sparsemat.builders import SHM_CONFIGS
        from sparsemat.models.shm import SHM

        with torch.random.fork_rng():  # the same file from every conversion (context.* is never run, see below)
            torch.manual_seed(0)
            reference = SHM(SHM_CONFIGS["paper"]).state_dict()
    out: dict[str, Tensor] = {}
    for k, v in sd.items():
        v = v.detach().clone()
        if k in QUIRK_KEYS:
            v = quirk_filter_to_krsc(v, in_channels=64)
        elif _is_sparse_filter(k, v):
            v = rsck_to_krsc(v)
        out[shm_key(k)] = v
    for k, v in reference.items():
        if k not in out and (k.startswith("context.") or k.endswith("num_batches_tracked")):
            out[k] = v.detach().clone()
    _check_against(out, reference, f"{source} (converted SHM)")
    return {k: out[k].to(reference[k].dtype) for k in reference}


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------


def convert_official(
    lpn_pth: str | Path | None, shm_pth: str | Path | None, out_dir: str | Path
) -> dict[str, Path]:
    """Convert the official checkpoints and write SparseMat ones.

    Args:
        lpn_pth: official ``lpn.pth`` (optional when ``shm_pth`` holds ``lpn.*`` keys).
        shm_pth: official ``SparseMat.pth`` (``lpn.*`` + ``shm.*``); optional for an LPN-only conversion.
        out_dir: folder for the results (created).

    Returns:
        ``{"lpn": out_dir/lpn.pt, "shm": out_dir/shm_official.pt}`` (only the parts converted).
        ``lpn.pt`` is ``{"state_dict", "source"}`` for :class:`~sparsemat.priors.lpn_prior.LpnPrior`
        (copy it to ``sparsemat/weights/lpn.pt`` to ship it); ``shm_official.pt`` is
        ``{"config": "paper", "state_dict", "lpn_ctx": True, "source"}`` for
        :func:`sparsemat.builders.build_shm`.
    """
    if lpn_pth is None and shm_pth is None:
        raise ModelError("Give the official lpn.pth, SparseMat.pth or both.")
    lpn_sd: dict[str, Tensor] = {}
    shm_sd: dict[str, Tensor] = {}
    lpn_from = ""
    if shm_pth is not None:
        lpn_sd, shm_sd = split_official(load_official(shm_pth))
        lpn_from = str(shm_pth) if lpn_sd else ""
        if not shm_sd and not lpn_sd:
            raise ModelError(f"{shm_pth} holds neither 'lpn.*' nor 'shm.*' weights of the official SparseMat.")
    if not lpn_sd and lpn_pth is not None:
        lpn_sd = split_official(load_official(lpn_pth))[0]
        lpn_from = str(lpn_pth)
        if not lpn_sd:
            raise ModelError(f"{lpn_pth} holds no LPN weights (keys 'backbone.model.*').")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if lpn_sd:
        written["lpn"] = out / "lpn.pt"
        state = convert_lpn_state_dict(lpn_sd, lpn_from)
        torch.save({"state_dict": state, "source": f"{SOURCE}: {Path(lpn_from).name}"}, written["lpn"])
    if shm_sd:
        written["shm"] = out / "shm_official.pt"
        state = convert_shm_state_dict(shm_sd, source=str(shm_pth))
        torch.save(
            {"config": "paper", "state_dict": state, "lpn_ctx": True, "source": f"{SOURCE}: {Path(str(shm_pth)).name}"},
            written["shm"],
        )
    return written
