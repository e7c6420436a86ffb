"""Function-preserving widening of a trained SHM: start a wider network exactly where a narrower one stands.

A fine-tune of the shipped refiners trades one prior degradation against another (docs/experiments.md, "Twentieth
session"), which points at capacity. Training a wider network from scratch is out of a CPU budget; widening the
trained one is not. The wider network's state is built from the narrower one's:

* every weight, bias and batch-norm entry of an existing channel is copied into the same channel of the wider
  network (concatenated inputs — the decoder's skip connections and the head's RGB — are placed by their parts);
* an existing output channel gets weight 0 from every new input channel, so nothing new reaches the old channels;
* new channels keep the wider network's own initialisation (random incoming weights, batch-norm defaults, the
  zero-initialised residual branches), free to learn from the first step on.

So at step 0 the wider network computes the narrower one's matte exactly (to float round-off): a fine-tune from it
loses nothing it had and can spend the new channels on what the old ones could not fit. Batch-norm running
statistics of new channels start at (0, 1); :func:`calibrate_new_channels` measures them for a fine-tune that keeps
the statistics fixed (``--freeze-bn``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import torch
from torch import Tensor, nn

from sparsemat.models.shm import SHM, SHMConfig
from sparsemat.sparse.layers import _SparseConvBase

CONCAT_INPUTS: dict[str, tuple[str, str]] = {
    "up2.0.weight": ("decoder0", "layer0"),
    "up3.0.weight": ("decoder1", "stem"),
    "head.0.weight": ("decoder2", "rgb"),
}
"""Convs whose input is a concatenation of two feature maps, by the widths of its two parts (see
:func:`_part_width`): ``up2`` reads ``[u1, x2]``, ``up3`` reads ``[u2, x1]``, the head reads ``[u3, RGB]``."""


def _part_width(cfg: SHMConfig, part: str) -> int:
    if part == "stem":
        return cfg.stem
    if part == "rgb":
        return 3
    if part.startswith("layer"):
        return cfg.layers[int(part[5:])]
    return cfg.decoder[int(part[7:])]


def input_channel_index(name: str, narrow: SHMConfig, wide: SHMConfig, narrow_cin: int) -> Tensor:
    """Where the narrow conv ``name``'s input channels sit among the wide conv's.

    Args:
        name: state-dict key of a conv weight.
        narrow, wide: the two configurations.
        narrow_cin: the narrow weight's input channels.

    Returns:
        ``[narrow_cin]`` int64 indices into the wide weight's input channels.
    """
    parts = CONCAT_INPUTS.get(name)
    if parts is None:
        return torch.arange(narrow_cin)
    first_n, first_w = _part_width(narrow, parts[0]), _part_width(wide, parts[0])
    second_n = _part_width(narrow, parts[1])
    if first_n + second_n != narrow_cin:
        raise ValueError(f"{name}: {narrow_cin} input channels, expected {first_n} + {second_n}")
    return torch.cat([torch.arange(first_n), first_w + torch.arange(second_n)])


def widths_of_state(state: dict[str, Tensor], like: SHMConfig) -> SHMConfig:
    """``like`` with the stem, layer, decoder and head widths read off an SHM state dict."""
    return replace(
        like,
        stem=int(state["stem.0.0.weight"].shape[0]),
        layers=tuple(int(state[f"layer{i}.0.bn1.weight"].shape[0]) for i in range(1, 5)),  # type: ignore[arg-type]
        decoder=tuple(int(state[f"up{i}.1.weight"].shape[0]) for i in range(1, 4)),  # type: ignore[arg-type]
        head=(int(state["head.0.weight"].shape[0]), int(state["head.2.weight"].shape[0])),
    )


def widen_state(narrow_state: dict[str, Tensor], narrow: SHMConfig, wide_model: SHM) -> dict[str, Tensor]:
    """The state dict of ``wide_model`` that computes what ``narrow_state`` computes (see the module docstring).

    Args:
        narrow_state: a trained SHM's state dict, of configuration ``narrow``.
        narrow: its configuration; every width at most the wide model's.
        wide_model: the freshly initialised wider SHM (its own values fill the new channels).

    Returns:
        A state dict for ``wide_model.load_state_dict``.

    Raises:
        ValueError: a tensor of ``narrow_state`` is missing from the wide model or wider than it.
    """
    wide = wide_model.cfg
    modules = dict(wide_model.named_modules())
    out: dict[str, Tensor] = {}
    for name, ref in wide_model.state_dict().items():
        if name not in narrow_state:
            raise ValueError(f"{name} is missing from the narrow state dict")
        old = narrow_state[name].to(ref.dtype) if ref.is_floating_point() else narrow_state[name]
        if old.dim() != ref.dim() or any(o > r for o, r in zip(old.shape, ref.shape, strict=True)):
            raise ValueError(f"{name}: {tuple(old.shape)} does not fit into {tuple(ref.shape)}")
        if old.shape == ref.shape:
            out[name] = old.clone()
            continue
        new = ref.clone()
        module = modules.get(name.rsplit(".", 1)[0])
        if isinstance(module, _SparseConvBase) and name.endswith("weight"):  # [C_out, k, k, C_in]
            idx = input_channel_index(name, narrow, wide, old.shape[3])
            rows = new[: old.shape[0]]
            rows.zero_()  # old outputs read nothing from new inputs
            rows[..., idx] = old
        elif isinstance(module, nn.Conv2d) and name.endswith("weight"):  # dense [C_out, C_in, kh, kw]
            if old.shape[1:] != ref.shape[1:]:
                raise ValueError(f"{name}: a dense conv may only gain output channels")
            new[: old.shape[0]] = old
        elif old.dim() == 1:  # biases, batch-norm weights, biases and running statistics
            new[: old.shape[0]] = old
        else:
            raise ValueError(f"{name}: no rule to widen a {tuple(old.shape)} tensor to {tuple(ref.shape)}")
        out[name] = new
    return out


def new_channel_counts(narrow_state: dict[str, Tensor], wide_model: nn.Module) -> dict[str, int]:
    """For every batch-norm layer of ``wide_model`` that gained channels: module name → its narrow channel count."""
    counts: dict[str, int] = {}
    for name, m in wide_model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            n = int(narrow_state[f"{name}.running_mean"].shape[0])
            if n < m.running_mean.shape[0]:
                counts[name] = n
    return counts


@torch.no_grad()
def calibrate_new_channels(model: nn.Module, counts: dict[str, int], run: Iterable[object]) -> int:
    """Measure the running statistics of the new batch-norm channels, keep the old channels' as they are.

    Every batch-norm layer named in ``counts`` is reset and accumulates a plain average over the passes of ``run``
    (an iterable whose iteration runs ``model`` forward in training mode, e.g. a generator of loss evaluations);
    then its first ``counts[name]`` channels get their previous statistics back. Parameters are not touched.

    Returns:
        The number of passes run.
    """
    bns = {name: m for name, m in model.named_modules() if name in counts}
    kept = {name: (m.running_mean.clone(), m.running_var.clone(), m.momentum)  # type: ignore[union-attr]
            for name, m in bns.items()}
    for m in bns.values():
        m.reset_running_stats()
        m.momentum = None
    was_training = {name: m.training for name, m in model.named_modules()}
    passes = 0
    try:
        for name, m in model.named_modules():
            m.train(name in bns or not isinstance(m, nn.modules.batchnorm._BatchNorm))
        for _ in run:
            passes += 1
    finally:
        for name, m in model.named_modules():
            m.train(was_training[name])
        for name, m in bns.items():
            mean, var, momentum = kept[name]
            n = counts[name]
            m.running_mean[:n] = mean[:n]  # type: ignore[index]
            m.running_var[:n] = var[:n]  # type: ignore[index]
            m.momentum = momentum
    return passes
