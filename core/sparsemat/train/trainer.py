"""Trainer of the SHM (sparse refiner) and the LPN (low-resolution prior) on synthetic or user data.

One loop serves both networks (:class:`Task` supplies model, batches, loss and validation):

* **Reproducible from the seed.** The batch of step ``i`` is drawn from ``numpy.random.default_rng([seed, i])``
  alone and the network is initialised under ``torch.manual_seed(seed)``, so a run resumed from a checkpoint
  sees exactly the batches an uninterrupted run would have seen.
* **Checkpoints** every ``ckpt_every`` steps to ``OUT/last.pt`` (model, optimizer, step, history) and the best
  validation MAD to ``OUT/best.pt`` (``{"config", "state_dict", ...}``: loadable by :func:`sparsemat.builders.
  build_shm`); ``resume`` continues from ``OUT/last.pt`` (or a given file). ``time_limit`` ends a run after that
  many minutes with a checkpoint at the last step, so a fixed-length job (a farm slot, a GPU lease) is continued
  by the next one with ``resume``.
* **Progress** as a one-line bar on a TTY, log lines otherwise; every ``val_every`` steps a validation report
  (MAD / Grad on the unknown region of a fixed validation set drawn from a different seed) is printed and
  appended to ``OUT/log.jsonl`` with the training losses.
* **Batches** are generated in a worker process (spawned, one torch thread) one step ahead of the optimiser,
  so data synthesis overlaps the network's compute on a two-core machine.

SHM recipe (method.md §6, with the port decisions documented in docs/models.md):

* Active set = the **inference band** ``dilate_k(0.01 < α↑ < 0.99)`` of the upsampled degraded prior at crop
  resolution (k = 15, as the engine), not the official training mask (which by a comparison bug is
  unknown ∪ foreground of the *ground truth*): the network is trained on exactly the sites it refines.
* Losses: Charbonnier on the active sites of each output (side outputs at strides 4, 2, 1 against the GT
  area-resized to their grid, at their own active sites; weights 0.1, 0.1, 0.1, 1.0) + Laplacian-pyramid L1 of
  the inference blend inside the band + optionally a gradient L1 (``grad_weight``).
* Adam, linear warm-up then cosine decay to ``min_lr_ratio·lr``.
* Low-resolution inputs as at inference: the crop's plate and degraded matte area-downsampled by a factor drawn
  per batch from ``lr_factors`` (a 2K–6K plate going to the prior's 512 px short side is ×2–×8); ``α↑`` is
  the bilinear upsampling of that low-res prior (what the engine's band and features see).

LPN recipe: 512 px synthetic composites (``crop``), alpha L1 + Laplacian-pyramid L1 on the whole image, Adam.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsemat.engine.colour_samples import (
    DEFAULT_LEVELS,
    levels_problem,
    sample_features,
    sample_levels,
    samples_dense,
    wants_colour_samples,
)
from sparsemat.engine.guided import guided_dense, wants_guided_prior
from sparsemat.errors import ModelError, SettingsError
from sparsemat.train import losses
from sparsemat.train.synth import SOFT_EDGE_PROB
from sparsemat.train.widen import calibrate_new_channels, new_channel_counts, widen_state, widths_of_state

BAND_LOW = 0.01
BAND_HIGH = 0.99


@dataclass
class TrainConfig:
    """Every knob of a training run (saved in each checkpoint and in ``OUT/config.json``).

    Attributes:
        model: ``"shm"`` or ``"lpn"``.
        config: SHM variant name (``lite``/``paper``); ignored for the LPN.
        steps: optimiser steps in total (a resumed run stops at the same total).
        batch: crops per step.
        crop: crop side in px (SHM: full-resolution crop; LPN: composite side, a multiple of 32).
        lr: peak learning rate; warmup: linear warm-up steps; min_lr_ratio: floor of the cosine decay.
        weight_decay: Adam weight decay.
        seed: seed of initialisation and of every batch.
        out: run folder.
        ckpt_every, val_every, log_every: intervals in steps.
        val_size: validation crops (drawn from ``seed + VAL_SEED_OFFSET``, never a training seed).
        lr_factors: plate → prior-resolution factors drawn per batch (SHM).
        kinds: prior degradations (:data:`sparsemat.train.synth.PRIOR_KINDS` subset; empty = all).
        kernel: band dilation (px, odd), as the engine's ``kernel_size``.
        side_weights: weights of ``p4x, p2x, p1x`` and the final alpha.
        lap_weight, grad_weight: weights of the Laplacian and gradient terms.
        loss_norm: penalty of the SHM's alpha terms (the per-output terms and the distillation's alpha pull): ``l1``
            (Charbonnier, the official recipe) or ``l2`` (squared errors), see
            :data:`~sparsemat.train.losses.LOSS_NORMS`; and of its structure terms when ``edge_norm`` is None.
        edge_norm: penalty of the SHM's structure terms (Laplacian pyramid, gradient, the distillation's gradient
            pull): ``l1`` or ``l2``; None: ``loss_norm``. The over-sharpening term is squared either way.
        over_weight: weight of :func:`~sparsemat.train.losses.over_sharpening_loss` on the blend in the band (0:
            off): the Grad metric's Gaussian-derivative gradient magnitude where it exceeds the ground truth's, so
            hardening an edge the ground truth keeps soft costs more than under-sharpening one (SHM).
        data: ``synthetic`` | ``aim:FG,ALPHA,BG`` | ``vm240k:ROOT`` (see :mod:`sparsemat.train.datasets`).
        photos: folder of photographs for synthetic backgrounds/textures (None: the shared folder if present;
            ``none``: generated textures only).
        exclude_photos: photo file names left out of training (held out for the real-photo check).
        threads: torch threads of the optimiser process.
        device: ``cpu`` or a CUDA device (``cuda``, ``cuda:1``): where the network, its batches and the
            validation run; batches are still generated on the CPU by the data workers.
        workers: batch-generation processes (0: generate in-process).
        resume: continue from ``OUT/last.pt`` (True) or from a checkpoint path.
        time_limit: wall-clock minutes this process may train (0: no limit). Checked after every step: once it is
            spent the run writes its checkpoint and stops, and ``resume`` continues it exactly where it stopped
            (for farm jobs and GPU leases with a fixed length).
        init: start from this checkpoint's weights (fine-tuning: fresh optimizer, schedule and step count).
        reset_head: after ``init``, zero the last conv of a residual SHM head so the model starts as its base
            (used when the prior input changed, e.g. bilinear → guided).
        sample_scale: side of each synthetic composite relative to ``crop`` (uniform range). Larger composites
            give crops that look like pieces of a 2K–4K plate (large subjects, wide defocused ramps).
        crops_per_sample: crops cut from each composite (cheaper large composites; 1 = the default
            :func:`~sparsemat.train.synth.training_batch` path).
        soft_edge_prob: chance that a synthetic body has a defocused edge (2–24 px ramp at 512 px, scaled with
            the composite) instead of a sharp one.
        texture_case_prob: chance that a synthetic composite is one of
            :data:`~sparsemat.train.synth.TEXTURE_CASES` (a textured body behind a defocused edge, a woven fabric,
            a patterned background behind smoke or motion blur); 0 draws the composites of earlier versions.
        texture_cases: the texture cases drawn (names of :data:`~sparsemat.train.synth.ALL_TEXTURE_CASES`, a
            repeated name drawn more often); empty: :data:`~sparsemat.train.synth.TEXTURE_CASES`.
        whole_view: cut each crop's prior from its whole composite's degraded matte and give colour-sample SHMs
            the colour estimates of the whole composite's low-resolution view, as the engine computes them on a
            plate (:class:`~sparsemat.train.datasets.WholeView`); off: each crop degrades and estimates alone.
        flat_weight: weight of :func:`~sparsemat.train.losses.flat_consistency_loss` (0: off), which keeps the
            SHM on its base alpha where the plate is flat inside the band.
        flat_window, flat_contrast: that loss's contrast window (odd px) and full-structure contrast (picked on
            training-distribution validation crops, docs/models.md).
        ema: decay of an exponential moving average of the weights, updated after every step (0: off). When on,
            validation, ``best.pt`` and the deployable ``state_dict`` of ``last.pt`` are the average; ``last.pt``
            also keeps the raw weights (``train_state_dict``) so ``resume`` continues the same run.
        freeze_bn: keep every batch-norm layer in inference mode while training: normalise with the running
            statistics of ``init`` and leave them unchanged (scale and shift still learn), so a fine-tune on a
            different data mix cannot move the normalisation the rest of the network relies on. Needs ``init``.
        distill_weight: weight of a Charbonnier pull of the final alpha towards the ``init`` weights' own output on
            the same input (the teacher: a frozen copy in inference mode), on the band of every crop whose
            composite is not a texture case (batch ``texture``); 0: off. A fine-tune then learns the texture cases
            while keeping what ``init`` already does on the rest. SHM only; needs ``init``.
        distill_grad_weight: weight of an L1 between the forward-difference gradients of the blend and of the
            teacher's blend (its alpha in the band, the upsampled prior elsewhere) on the same crops and band as
            ``distill_weight``; 0: off. It keeps the edge structure of ``init`` where the fine-tune has nothing new
            to learn. SHM only; needs ``init``.
        distill_skip_kinds: prior degradations (:data:`~sparsemat.train.synth.PRIOR_KINDS`) whose crops both
            distillation terms leave out, as they leave out texture cases (batch ``kind``): a fine-tune learns those
            kinds from the data alone while distillation keeps what ``init`` does on the others. Empty: every crop
            that is not a texture case is distilled.
        sample_levels: ``(foreground, background)`` levels of the colour-sample inputs (``SHMConfig.sample_levels``)
            for the trained model, in its data and in its checkpoint, so the engine runs it with them; None: the
            ``init`` checkpoint's levels, else the configuration's (0.98, 0.02). The distillation teacher sees the
            same inputs as the model.
        fixed_batches: > 0 cycles over this many batches (step ``i`` uses the batch of ``i % fixed_batches``):
            an overfitting check for debugging and tests; 0 (default) draws a fresh batch every step.
    """

    model: str = "shm"
    config: str = "lite"
    steps: int = 3000
    batch: int = 6
    crop: int = 256
    lr: float = 1.5e-3
    warmup: int = 100
    min_lr_ratio: float = 0.02
    weight_decay: float = 0.0
    seed: int = 0
    out: str = "runs/shm_lite"
    ckpt_every: int = 100
    val_every: int = 250
    log_every: int = 10
    val_size: int = 16
    lr_factors: tuple[int, ...] = (2, 4, 8)
    kinds: tuple[str, ...] = ()
    kernel: int = 15
    side_weights: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 1.0)
    lap_weight: float = 1.0
    grad_weight: float = 0.0
    loss_norm: str = "l1"
    edge_norm: str | None = None
    over_weight: float = 0.0
    data: str = "synthetic"
    photos: str | None = None
    exclude_photos: tuple[str, ...] = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
    threads: int = 1
    device: str = "cpu"
    workers: int = 1
    resume: bool | str = False
    time_limit: float = 0.0
    init: str | None = None
    reset_head: bool = False
    sample_scale: tuple[float, float] = (1.0, 1.6)
    crops_per_sample: int = 1
    soft_edge_prob: float = SOFT_EDGE_PROB
    texture_case_prob: float = 0.0
    texture_cases: tuple[str, ...] = ()
    whole_view: bool = False
    flat_weight: float = 0.0
    flat_window: int = 9
    flat_contrast: float = 0.1
    ema: float = 0.0
    freeze_bn: bool = False
    distill_weight: float = 0.0
    distill_grad_weight: float = 0.0
    distill_skip_kinds: tuple[str, ...] = ()
    sample_levels: tuple[float, float] | None = None
    fixed_batches: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


VAL_SEED_OFFSET = 1_000_003
"""Validation crops come from ``seed + VAL_SEED_OFFSET`` (batch seeds are ``[seed, step]``: never equal)."""


# ------------------------------------------------------------------------------------------------- helpers
def band_mask(prior_hr: Tensor, kernel: int) -> Tensor:
    """Inference band of a prior: ``dilate_k(0.01 < α↑ < 0.99)``.

    Args:
        prior_hr: ``[B, 1, H, W]`` float32 upsampled prior in [0, 1].
        kernel: odd square dilation width in px.

    Returns:
        ``[B, 1, H, W]`` float32 in {0, 1}.
    """
    band = ((prior_hr > BAND_LOW) & (prior_hr < BAND_HIGH)).float()
    if kernel > 1:
        band = F.max_pool2d(band, kernel, 1, kernel // 2)
    return band


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up to ``cfg.lr``, then cosine to ``min_lr_ratio·lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / max(1, cfg.warmup)
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    t = min(max(t, 0.0), 1.0)
    lo = cfg.lr * cfg.min_lr_ratio
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def training_device(name: str) -> torch.device:
    """The torch device of ``TrainConfig.device``.

    Raises:
        SettingsError: not a device name, or a CUDA device PyTorch cannot see.
    """
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SettingsError("--device", name, "use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise SettingsError("--device", name, "use cpu, cuda or cuda:N")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SettingsError("--device", name, "PyTorch sees no CUDA GPU on this machine; train with --device cpu")
        if dev.index is not None and dev.index >= count:
            raise SettingsError("--device", name, f"this machine has {count} CUDA GPU(s): cuda:0 … cuda:{count - 1}")
    return dev


def to_device(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """``batch`` with every tensor on ``device`` (the same dict when it is already there)."""
    if all(v.device == device for v in batch.values()):
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def ema_update(avg: nn.Module, model: nn.Module, decay: float) -> None:
    """``avg ← decay·avg + (1 − decay)·model`` for every floating-point parameter and buffer (BN statistics
    included); integer buffers (BN's batch counter) are copied."""
    with torch.no_grad():
        mine = model.state_dict()
        for name, a in avg.state_dict().items():
            if a.is_floating_point():
                a.mul_(decay).add_(mine[name], alpha=1.0 - decay)
            else:
                a.copy_(mine[name])


def set_train_mode(model: nn.Module, freeze_bn: bool = False) -> None:
    """``model.train()``; with ``freeze_bn`` every batch-norm layer (dense or sparse) stays in ``eval`` mode, so it
    normalises with, and never updates, its running statistics."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def load_init_weights(model: nn.Module, state: dict[str, Tensor], source: str = "checkpoint") -> list[str]:
    """Load ``state`` into ``model`` for a fine-tune, widening what the model has more of.

    Into an SHM, a checkpoint of the same layers but fewer channels anywhere — new input features appended to the
    first conv, or a wider network (``--config`` with larger widths) — is widened by
    :func:`sparsemat.train.widen.widen_state`: old channels keep their values, new channels feed nothing old, so
    the model computes exactly what the checkpoint did. Any other mismatch is a :class:`ModelError` naming
    ``source``.

    Returns:
        The names of the widened tensors.
    """
    from sparsemat.models.shm import SHM

    own = model.state_dict()
    merged: dict[str, Tensor] = dict(state)
    widened = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if isinstance(model, SHM) and widened and set(state) == set(own):
        try:
            merged = widen_state(state, widths_of_state(state, model.cfg), model)
        except (ValueError, KeyError) as exc:
            raise ModelError(f"{source} does not fit the configured SHM network: {exc}") from exc
    try:
        model.load_state_dict(merged)
    except RuntimeError as exc:
        raise ModelError(f"{source} does not fit the configured SHM network: {exc}") from exc
    return widened


CALIBRATION_BATCHES = 8
"""Training batches whose statistics the new batch-norm channels of a widened ``--init`` take under ``--freeze-bn``
(the first ones of the run)."""


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of one training step (depends on ``seed`` and ``step`` only)."""
    return np.random.default_rng([int(seed), int(step)])


# --------------------------------------------------------------------------------------- batch generation
_WORKER: dict[str, Any] = {}


def _init_worker(data: str, photos: str | None, exclude: tuple[str, ...], parent: int | None = None) -> None:
    torch.set_num_threads(1)
    if parent is not None:
        _exit_with_parent(parent)
    from sparsemat.train.datasets import make_source

    _WORKER["source"] = make_source(data, photos, exclude)


def _exit_with_parent(parent: int) -> None:
    """End this worker process when the trainer that spawned it is gone (killed, crashed).

    A process pool's workers otherwise outlive a trainer stopped with a signal, holding a core and
    a gigabyte each until someone finds them.
    """

    def watch() -> None:
        while True:
            time.sleep(2.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True, name="sparsemat-parent-watch").start()


def _source() -> Any:
    return _WORKER["source"]


def _make_batch(kind: str, seed: int, step: int, cfg_items: dict[str, Any]) -> dict[str, np.ndarray]:
    """Worker entry: the numpy batch of ``step`` (``kind`` ``shm`` or ``lpn``)."""
    rng = step_rng(seed, step)
    src = _source()
    kinds = tuple(cfg_items["kinds"]) or None
    if kind == "lpn":
        return src.lpn_batch(rng, cfg_items["batch"], cfg_items["crop"], kinds)
    f = int(rng.choice(cfg_items["lr_factors"]))
    return _shm_batch(src, rng, cfg_items["batch"], cfg_items["crop"], f, kinds, False,
                      tuple(cfg_items.get("sample_scale", (1.0, 1.6))), int(cfg_items.get("crops_per_sample", 1)),
                      float(cfg_items.get("soft_edge_prob", SOFT_EDGE_PROB)), bool(cfg_items.get("whole_view", False)),
                      float(cfg_items.get("texture_case_prob", 0.0)),
                      tuple(cfg_items.get("sample_levels") or DEFAULT_LEVELS),  # type: ignore[arg-type]
                      tuple(cfg_items.get("texture_cases") or ()))


def _shm_batch(src: Any, rng: np.random.Generator, batch: int, crop: int, factor: int, kinds: Sequence[str] | None,
               fixed_kinds: bool, sample_scale: tuple[float, ...], crops_per_sample: int,
               soft_edge_prob: float, whole_view: bool = False, texture_case_prob: float = 0.0,
               sample_levels: tuple[float, float] = DEFAULT_LEVELS,
               texture_cases: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """SHM crops from ``src``: from large composites when ``sample_scale``/``crops_per_sample`` differ from the
    defaults or ``whole_view`` is on, else from the default :func:`~sparsemat.train.synth.training_batch` path
    (training and validation crops are drawn the same way). ``sample_levels``: those of the whole view's colour
    estimates; ``texture_cases``: the texture cases drawn (empty: the default ones)."""
    large = crops_per_sample > 1 or tuple(sample_scale) != (1.0, 1.6) or whole_view
    return src.shm_batch(rng, batch, crop, factor, kinds, fixed_kinds=fixed_kinds,
                         sample_scale=tuple(sample_scale) if large else None, crops_per_sample=crops_per_sample,
                         soft_edge_prob=soft_edge_prob, whole_view=whole_view, texture_case_prob=texture_case_prob,
                         sample_levels=sample_levels, texture_cases=tuple(texture_cases) or None)


class BatchStream:
    """Batches by step, generated ``ahead`` steps in advance in worker processes (or in-process).

    Args:
        kind: ``shm`` or ``lpn``.
        cfg: the run's config (data source, batch, crop, factors, kinds, seed, workers).
    """

    def __init__(self, kind: str, cfg: TrainConfig, ahead: int = 2) -> None:
        self.kind = kind
        self.cfg = cfg
        self.items = {"batch": cfg.batch, "crop": cfg.crop, "lr_factors": list(cfg.lr_factors), "kinds": list(cfg.kinds),
                      "sample_scale": list(cfg.sample_scale), "crops_per_sample": cfg.crops_per_sample,
                      "soft_edge_prob": cfg.soft_edge_prob, "whole_view": cfg.whole_view,
                      "texture_case_prob": cfg.texture_case_prob, "texture_cases": list(cfg.texture_cases),
                      "sample_levels": list(cfg.sample_levels) if cfg.sample_levels else None}
        self.cycle = max(0, cfg.fixed_batches)
        self.ahead = ahead
        self.pool: ProcessPoolExecutor | None = None
        self.pending: dict[int, Future[dict[str, np.ndarray]]] = {}
        if cfg.workers > 0:
            self.pool = ProcessPoolExecutor(
                max_workers=cfg.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=(cfg.data, cfg.photos, tuple(cfg.exclude_photos), os.getpid()),
            )
        else:
            _init_worker(cfg.data, cfg.photos, tuple(cfg.exclude_photos))
            torch.set_num_threads(cfg.threads)

    def get(self, step: int, last: int) -> dict[str, Tensor]:
        """The batch of ``step`` as float32 tensors; schedules steps up to ``min(step + ahead, last)``."""
        if self.cycle:
            step = step % self.cycle
            last = min(last, self.cycle)
        if self.pool is None:
            arrays = _make_batch(self.kind, self.cfg.seed, step, self.items)
        else:
            for s in range(step, min(step + self.ahead + 1, last)):
                if s not in self.pending:
                    self.pending[s] = self.pool.submit(_make_batch, self.kind, self.cfg.seed, s, self.items)
            fut = self.pending.pop(step) if not self.cycle else self.pending[step]
            arrays = fut.result()
        return {k: torch.from_numpy(v) for k, v in arrays.items()}

    def close(self) -> None:
        """Stop the workers."""
        if self.pool is not None:
            for fut in self.pending.values():
                fut.cancel()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


# ------------------------------------------------------------------------------------------------- tasks
class Task(Protocol):
    """What the loop needs from one kind of network."""

    kind: str

    def build(self) -> nn.Module:
        """A freshly initialised network (under the run's seed)."""
        ...

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``(total loss, {term: value})`` of one batch."""
        ...

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics (``mad_unk``, ``grad_unk``, baselines) of the model in eval mode."""
        ...

    def export(self, model: nn.Module) -> dict[str, Any]:
        """The deployable checkpoint entries (``config``, ``state_dict``)."""
        ...


def unknown_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Unknown-region ``(MAD ×1e3, Grad /1e3)`` of one ``[H, W]`` alpha against its ground truth (both in [0, 1])."""
    from sparsemat.evaluation.metrics import grad, mad, unknown_mask

    unk = unknown_mask(gt)
    return mad(pred, gt, unk), grad(pred, gt, unk)


class ShmPass(NamedTuple):
    """One SHM forward pass on a batch (dense backend, ``[B, 1, H, W]`` maps)."""

    out: Any
    """``SHMOutput`` (side outputs and the final alpha on the band's sites)."""
    band: Tensor
    """float {0, 1}: the inference band of ``prior_hr``."""
    base: Tensor
    """[0, 1]: the alpha the SHM was given (see :meth:`ShmTask.base_alpha`)."""


class ShmTask:
    """SHM training (see the module docstring)."""

    kind = "shm"

    def __init__(self, cfg: TrainConfig) -> None:
        from sparsemat.builders import SHM_CONFIGS

        if cfg.config not in SHM_CONFIGS:
            raise SettingsError("--config", cfg.config, f"choose one of {', '.join(SHM_CONFIGS)}")
        if cfg.crop % 8 or cfg.crop % max(cfg.lr_factors):
            raise SettingsError("--crop", cfg.crop, f"must be a multiple of 8 and of every LR factor {cfg.lr_factors}")
        self.cfg = cfg
        self.backend = __import__("sparsemat.sparse", fromlist=["get_backend"]).get_backend("dense", "cpu")
        self._val: list[dict[str, Tensor]] | None = None
        self.teacher: nn.Module | None = None
        """The frozen ``init`` SHM for :attr:`TrainConfig.distill_weight` and ``distill_grad_weight`` (set by the
        training loop)."""

    @property
    def levels(self) -> tuple[float, float]:
        """The colour-sample levels of the trained model (:attr:`TrainConfig.sample_levels`, resolved by
        :func:`resolve_sample_levels`; the configuration's when unset)."""
        from sparsemat.builders import SHM_CONFIGS

        lv = self.cfg.sample_levels or SHM_CONFIGS[self.cfg.config].sample_levels
        return (float(lv[0]), float(lv[1]))

    def model_config(self) -> Any:
        """The ``SHMConfig`` trained: the registered variant's widths with :attr:`levels`."""
        from sparsemat.builders import SHM_CONFIGS

        return replace(SHM_CONFIGS[self.cfg.config], sample_levels=self.levels)

    def build(self, like: dict[str, Tensor] | None = None) -> nn.Module:
        """A new SHM of the configured widths (or those of the state dict ``like``) and sample levels."""
        from sparsemat.models.shm import SHM

        cfg = self.model_config()
        return SHM(cfg if like is None else widths_of_state(like, cfg))

    @staticmethod
    def base_alpha(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The alpha the SHM is given, as at the engine's first level: ``[B, 1, H, W]`` in [0, 1] (guided
        prior for a guided-input SHM, else the bilinear ``prior_hr``)."""
        if wants_guided_prior(model):
            return guided_dense(batch["lr_rgb"], batch["lr_prior"], batch["rgb"])
        return batch["prior_hr"]

    def forward(self, model: nn.Module, batch: dict[str, Tensor]) -> ShmPass:
        """Run the SHM on the band of ``batch`` as the engine's first level would."""
        x, band, base = self.inputs(model, batch)
        return ShmPass(model(x, batch["lr_rgb"], batch["lr_prior"]), band, base)

    def inputs(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Any, Tensor, Tensor]:
        """``(sparse input on the band, band [B,1,H,W] {0,1}, base alpha [B,1,H,W])`` of ``batch`` for ``model``."""
        prior = batch["prior_hr"]
        band = band_mask(prior, self.cfg.kernel)
        base = self.base_alpha(model, batch)
        parts = [batch["rgb"], base]
        if wants_colour_samples(model):
            if "est" in batch:  # estimates from the whole composite's low-res view (TrainConfig.whole_view)
                parts.append(sample_features(batch["est"], batch["rgb"]))
            else:
                parts.append(samples_dense(batch["lr_rgb"], batch["lr_prior"], batch["rgb"], sample_levels(model)))
        feats = torch.cat(parts, 1).mul(2.0).sub(1.0)
        coords = torch.nonzero(band[:, 0] > 0)
        f = feats.permute(0, 2, 3, 1)[coords[:, 0], coords[:, 1], coords[:, 2]]
        b, _, h, w = prior.shape
        return self.backend.from_coords(coords, f, (h, w), b), band, base

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Charbonnier (``loss_norm="l2"``: squared error) per output on its active sites + Laplacian (+ gradient,
        + over-sharpening) of the blend in the band, the Laplacian and gradient in :meth:`edge_norm`
        (+ the flat-region pull towards the base alpha when ``flat_weight > 0``; + the pulls towards the teacher
        outside texture cases when ``distill_weight > 0`` (alpha) or ``distill_grad_weight > 0`` (gradients of the
        blend), from one teacher pass)."""
        x, band, base = self.inputs(model, batch)
        out = model(x, batch["lr_rgb"], batch["lr_prior"])
        gt = batch["alpha"]
        terms: dict[str, float] = {}
        total = gt.new_zeros(())
        maps = [*out.side, out.alpha]
        names = ("p4", "p2", "p1", "alpha")
        for name, m, wgt in zip(names, maps, self.cfg.side_weights, strict=True):
            mask = m.sites
            g = losses.resize_to(gt, tuple(m.features.shape[-2:]))
            term = losses.alpha_loss(m.features, g, mask, self.cfg.loss_norm)
            terms[name] = float(term.detach())
            total = total + wgt * term
        prior = batch["prior_hr"]
        blend = band * out.alpha.features + (1.0 - band) * prior
        target = band * gt + (1.0 - band) * prior
        if self.cfg.lap_weight > 0:
            lap = losses.laplacian_loss(blend, target, band, norm=self.edge_norm)
            terms["lap"] = float(lap.detach())
            total = total + self.cfg.lap_weight * lap
        if self.cfg.grad_weight > 0:
            gl = losses.gradient_loss(blend, target, band, self.edge_norm)
            terms["grad"] = float(gl.detach())
            total = total + self.cfg.grad_weight * gl
        if self.cfg.over_weight > 0:
            ov = losses.over_sharpening_loss(blend, target, band)
            terms["over"] = float(ov.detach())
            total = total + self.cfg.over_weight * ov
        if self.cfg.flat_weight > 0:
            fl = losses.flat_consistency_loss(out.alpha.features, base, batch["rgb"], band, self.cfg.flat_window,
                                              self.cfg.flat_contrast)
            terms["flat"] = float(fl.detach())
            total = total + self.cfg.flat_weight * fl
        if self.teacher is not None and (self.cfg.distill_weight > 0 or self.cfg.distill_grad_weight > 0):
            teacher = self.teacher_alpha(x, batch)
            if self.cfg.distill_weight > 0:
                dl = self.distill_loss(out.alpha, x, batch, teacher)
                terms["distill"] = float(dl.detach())
                total = total + self.cfg.distill_weight * dl
            if self.cfg.distill_grad_weight > 0:
                dg = self.distill_grad_loss(blend, band, x, batch, teacher)
                terms["distill_grad"] = float(dg.detach())
                total = total + self.cfg.distill_grad_weight * dg
        return total, terms

    @property
    def edge_norm(self) -> str:
        """Penalty of the structure terms: :attr:`TrainConfig.edge_norm`, else :attr:`TrainConfig.loss_norm`."""
        return self.cfg.edge_norm or self.cfg.loss_norm

    def teacher_alpha(self, x: Any, batch: dict[str, Tensor]) -> Tensor:
        """The teacher's final alpha ``[B, 1, H, W]`` float32 in [0, 1] (0 off its sites) on the student's own
        sparse input ``x`` (:meth:`inputs`; the teacher is the same network), without gradients."""
        assert self.teacher is not None
        with torch.no_grad():
            return self.teacher(x, batch["lr_rgb"], batch["lr_prior"]).alpha.features

    def _keep(self, batch: dict[str, Tensor]) -> Tensor | float:
        """``[B, 1, 1, 1]`` 1 for the items distillation covers: not texture cases (``batch["texture"]``; all items
        without it) and not of a kind in :attr:`TrainConfig.distill_skip_kinds` (``batch["kind"]``), else 0."""
        keep: Tensor | float = 1.0 - batch["texture"].reshape(-1, 1, 1, 1) if "texture" in batch else 1.0
        if self.cfg.distill_skip_kinds:  # every batch path names its crops' kinds (sparsemat.train.datasets)
            from sparsemat.train.synth import PRIOR_KINDS

            idx = [PRIOR_KINDS.index(k) for k in self.cfg.distill_skip_kinds]
            skipped = batch["kind"][:, idx].sum(dim=1).clamp(max=1.0).reshape(-1, 1, 1, 1)
            keep = keep * (1.0 - skipped)
        return keep

    def distill_loss(self, alpha: Any, x: Any, batch: dict[str, Tensor], teacher: Tensor | None = None) -> Tensor:
        """The alpha term (:func:`losses.alpha_loss`: Charbonnier, or squared error with ``loss_norm="l2"``) between
        the student's final ``alpha`` (``SparseMap`` on the band's sites) and the teacher's (``teacher``, else
        :meth:`teacher_alpha` of ``x``), on the sites of the items :meth:`_keep` covers. 0-d float32."""
        target = self.teacher_alpha(x, batch) if teacher is None else teacher
        return losses.alpha_loss(alpha.features, target, alpha.sites * self._keep(batch), self.cfg.loss_norm)

    def distill_grad_loss(self, blend: Tensor, band: Tensor, x: Any, batch: dict[str, Tensor],
                          teacher: Tensor | None = None) -> Tensor:
        """Gradient L1 or L2 (:func:`losses.gradient_loss`, :meth:`edge_norm`) between the student's ``blend``
        ``[B, 1, H, W]`` (its alpha in ``band``, ``batch["prior_hr"]`` elsewhere) and the teacher's blend built the
        same way, over the band of the items :meth:`_keep` covers. 0-d float32; exactly 0 when student and teacher
        agree."""
        target = self.teacher_alpha(x, batch) if teacher is None else teacher
        t_blend = band * target + (1.0 - band) * batch["prior_hr"]
        return losses.gradient_loss(blend, t_blend, band * self._keep(batch), self.edge_norm)

    def val_set(self) -> list[dict[str, Tensor]]:
        """Fixed validation batches: ``val_size`` crops from ``seed + VAL_SEED_OFFSET``, factors and kinds
        cycling over the configured ones, composites sized as the training ones (built once)."""
        if self._val is None:
            from sparsemat.train.synth import PRIOR_KINDS

            src = _source() if "source" in _WORKER else None
            if src is None:
                from sparsemat.train.datasets import make_source

                src = make_source(self.cfg.data, self.cfg.photos, tuple(self.cfg.exclude_photos))
            rng = np.random.default_rng(self.cfg.seed + VAL_SEED_OFFSET)
            kinds = self.cfg.kinds or PRIOR_KINDS
            vb = max(1, min(4, self.cfg.val_size))
            batches: list[dict[str, Tensor]] = []
            for i in range(0, self.cfg.val_size, vb):
                f = self.cfg.lr_factors[(i // vb) % len(self.cfg.lr_factors)]
                kk = tuple(kinds[(i + j) % len(kinds)] for j in range(vb))
                arr = _shm_batch(src, rng, vb, self.cfg.crop, f, kk, True, self.cfg.sample_scale,
                                 self.cfg.crops_per_sample, self.cfg.soft_edge_prob, self.cfg.whole_view,
                                 self.cfg.texture_case_prob, self.levels, self.cfg.texture_cases)
                batches.append({k: torch.from_numpy(v) for k, v in arr.items()})
            self._val = batches
        return self._val

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Unknown-region MAD/Grad of the blend (band: SHM, elsewhere α↑), of α↑ alone and of the base blend
        (band: the alpha the SHM was given — the guided prior for a guided-input SHM), averaged."""
        was = model.training
        model.eval()
        rows: list[tuple[float, ...]] = []
        dev = _model_device(model)
        for cpu_batch in self.val_set():
            batch = to_device(cpu_batch, dev)
            out, band, base = self.forward(model, batch)
            prior = batch["prior_hr"]
            blend = (band * out.alpha.features + (1.0 - band) * prior).cpu().numpy()
            base_blend = (band * base + (1.0 - band) * prior).cpu().numpy()
            for i in range(blend.shape[0]):
                gt = cpu_batch["alpha"][i, 0].numpy()
                rows.append((*unknown_metrics(blend[i, 0], gt), *unknown_metrics(cpu_batch["prior_hr"][i, 0].numpy(), gt),
                             *unknown_metrics(base_blend[i, 0], gt)))
        model.train(was)
        a = np.asarray(rows)
        names = ("mad_unk", "grad_unk", "prior_mad_unk", "prior_grad_unk", "base_mad_unk", "base_grad_unk")
        return {n: float(a[:, j].mean()) for j, n in enumerate(names)}

    def export(self, model: nn.Module) -> dict[str, Any]:
        """``{"config": name | dict, "state_dict": ...}`` (the format of :func:`sparsemat.builders.load_checkpoint`;
        CPU tensors whatever the training device). The config is the variant's name when the model is that
        variant, else its fields (other sample levels), so the engine builds the model as it was trained."""
        from sparsemat.builders import SHM_CONFIGS

        cfg = self.model_config()
        config: str | dict[str, Any] = self.cfg.config if cfg == SHM_CONFIGS[self.cfg.config] else asdict(cfg)
        return {"config": config, "state_dict": _cpu_state(model)}


class LpnTask:
    """LPN training on whole synthetic composites of ``crop²`` px (alpha L1 + Laplacian L1)."""

    kind = "lpn"

    def __init__(self, cfg: TrainConfig) -> None:
        if cfg.crop % 32:
            raise SettingsError("--crop", cfg.crop, "must be a multiple of 32 for the LPN")
        self.cfg = cfg
        self._val: list[dict[str, Tensor]] | None = None

    def build(self) -> nn.Module:
        """A new LPN (official widths)."""
        from sparsemat.models.lpn import LPN

        return LPN()

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """L1 + Laplacian-pyramid L1 of the predicted alpha over the whole image."""
        pred, _ = model(batch["rgb"] * 2.0 - 1.0)
        gt = batch["alpha"]
        l1 = (pred - gt).abs().mean()
        ones = torch.ones_like(gt)
        lap = losses.laplacian_loss(pred, gt, ones) if self.cfg.lap_weight > 0 else gt.new_zeros(())
        total = l1 + self.cfg.lap_weight * lap
        return total, {"l1": float(l1.detach()), "lap": float(lap.detach())}

    def val_set(self) -> list[dict[str, Tensor]]:
        """Fixed validation composites from ``seed + VAL_SEED_OFFSET``."""
        if self._val is None:
            from sparsemat.train.datasets import make_source

            src = make_source(self.cfg.data, self.cfg.photos, tuple(self.cfg.exclude_photos))
            rng = np.random.default_rng(self.cfg.seed + VAL_SEED_OFFSET)
            vb = max(1, min(4, self.cfg.val_size))
            self._val = [
                {k: torch.from_numpy(v) for k, v in src.lpn_batch(rng, vb, self.cfg.crop, None).items()}
                for _ in range(0, self.cfg.val_size, vb)
            ]
        return self._val

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        """Whole-image and unknown-region MAD/Grad of the predicted alpha."""
        from sparsemat.evaluation.metrics import mad

        was = model.training
        model.eval()
        rows: list[tuple[float, float, float]] = []
        dev = _model_device(model)
        for batch in self.val_set():
            pred, _ = model(batch["rgb"].to(dev) * 2.0 - 1.0)
            pred = pred.cpu()
            for i in range(pred.shape[0]):
                gt = batch["alpha"][i, 0].numpy()
                p = pred[i, 0].numpy()
                m, g = unknown_metrics(p, gt)
                rows.append((m, g, mad(p, gt)))
        model.train(was)
        a = np.asarray(rows)
        return {"mad_unk": float(a[:, 0].mean()), "grad_unk": float(a[:, 1].mean()), "mad": float(a[:, 2].mean())}

    def export(self, model: nn.Module) -> dict[str, Any]:
        """``{"config": "lpn", "state_dict": ...}`` (loadable by :func:`sparsemat.priors.lpn_prior.load_lpn_weights`;
        CPU tensors)."""
        return {"config": "lpn", "state_dict": _cpu_state(model)}


def _read_init(path: str) -> Any:
    """The ``--init`` checkpoint as saved (``{"config", "state_dict", ...}`` or a bare state dict), on the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def resolve_sample_levels(cfg: TrainConfig, init: Any = None) -> TrainConfig:
    """``cfg`` with :attr:`TrainConfig.sample_levels` set for an SHM run: as given, else the ``init`` checkpoint's
    (a fine-tune keeps the levels its weights were trained with), else None (the configuration's). ``init``: that
    checkpoint when the caller has already read it (None reads it here).

    Raises:
        SettingsError: levels that are not ``0 < background < foreground < 1``.
    """
    if cfg.model != "shm":
        return cfg
    if cfg.sample_levels is not None:
        problem = levels_problem(tuple(cfg.sample_levels))
        if problem:
            raise SettingsError("--sample-levels", ",".join(f"{v:g}" for v in cfg.sample_levels), problem)
        return cfg
    if cfg.init:
        if init is None:
            init = _read_init(cfg.init)
        conf = init.get("config") if isinstance(init, dict) else None
        if isinstance(conf, dict) and conf.get("sample_levels") is not None:
            lv = conf["sample_levels"]
            return replace(cfg, sample_levels=(float(lv[0]), float(lv[1])))
    return cfg


def make_task(cfg: TrainConfig) -> ShmTask | LpnTask:
    """The task of ``cfg.model``."""
    if cfg.model == "shm":
        return ShmTask(cfg)
    if cfg.model == "lpn":
        return LpnTask(cfg)
    raise SettingsError("model", cfg.model, "choose shm or lpn")


# ----------------------------------------------------------------------------------------------- progress
class Progress:
    """A one-line progress bar on a TTY, plain log lines every ``every`` steps otherwise."""

    def __init__(self, total: int, every: int, stream: Any = None, quiet: bool = False) -> None:
        self.total = total
        self.every = max(1, every)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet
        self.t0 = time.time()
        self.first: int | None = None

    def update(self, step: int, text: str) -> None:
        """Report that step ``step`` (1-based count of finished steps) is done."""
        if self.quiet:
            return
        if self.first is None:
            self.first = step - 1
        done = step - self.first
        el = time.time() - self.t0
        rate = el / max(done, 1)
        eta = rate * (self.total - step)
        if self.tty:
            n = int(30 * step / max(self.total, 1))
            bar = "#" * n + "-" * (30 - n)
            self.stream.write(f"\r[{bar}] {step}/{self.total} {rate:.2f}s/it eta {eta / 60:.1f}m {text}   ")
            self.stream.flush()
        elif step % self.every == 0 or step == self.total:
            self.stream.write(f"step {step}/{self.total} {rate:.2f}s/it eta {eta / 60:.1f}m {text}\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a full line (ends the bar's line on a TTY)."""
        if self.quiet:
            return
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


# ----------------------------------------------------------------------------------------------- the loop
def _load_resume(cfg: TrainConfig) -> dict[str, Any] | None:
    if not cfg.resume:
        return None
    path = Path(cfg.out) / "last.pt" if cfg.resume is True else Path(str(cfg.resume))
    if not path.is_file():
        raise SettingsError("--resume", str(path), "the checkpoint does not exist")
    return dict(torch.load(path, map_location="cpu", weights_only=True))


def _save(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, quiet: bool = False, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a training run.

    Args:
        cfg: the run's knobs.
        quiet: no progress output.
        on_step: optional callback ``(step, terms)`` after every optimiser step (tests).

    Returns:
        ``{"step": last step trained, "history": [per-validation dicts], "losses": [per-step total loss],
        "best": best validation MAD, "out": run folder, "stopped": "" or why the run stopped before
        ``cfg.steps`` (the time limit)}``.
    """
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        return _train(cfg, quiet, on_step)
    finally:
        torch.set_num_threads(old_threads)


def _train(cfg: TrainConfig, quiet: bool, on_step: Callable[[int, dict[str, float]], None] | None) -> dict[str, Any]:
    device = training_device(cfg.device)
    # the --init checkpoint is read once: for its colour-sample levels here and for its weights below
    init_ckpt = _read_init(cfg.init) if cfg.init and cfg.model == "shm" and cfg.sample_levels is None else None
    cfg = resolve_sample_levels(cfg, init_ckpt)
    task = make_task(cfg)
    if cfg.freeze_bn and not (cfg.init or cfg.resume):
        raise SettingsError("--freeze-bn", True, "needs --init: frozen statistics of random weights normalise nothing")
    for flag, norm in (("--loss-norm", cfg.loss_norm), ("--edge-norm", cfg.edge_norm or "l1")):
        if norm != "l1" and not isinstance(task, ShmTask):
            raise SettingsError(flag, norm, "applies to SHM runs; the LPN trains with l1")
    for flag, w in (("--distill-weight", cfg.distill_weight), ("--distill-grad-weight", cfg.distill_grad_weight)):
        if w > 0 and not (cfg.init and isinstance(task, ShmTask)):
            raise SettingsError(flag, w, "needs --init and an SHM run: the teacher is the SHM the fine-tune starts from")
    if cfg.distill_skip_kinds and not (cfg.distill_weight > 0 or cfg.distill_grad_weight > 0):
        raise SettingsError("--distill-skip-kinds", ",".join(cfg.distill_skip_kinds),
                            "applies with --distill-weight or --distill-grad-weight (there is no distillation to skip)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = task.build().to(device)  # a resumed optimizer state is cast to the parameters' device on load
    set_train_mode(model, cfg.freeze_bn)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    history: list[dict[str, Any]] = []
    step_losses: list[float] = []
    recent_terms: list[dict[str, float]] = []
    best = float("inf")
    distil = (cfg.distill_weight > 0 or cfg.distill_grad_weight > 0) and isinstance(task, ShmTask)
    new_bn: dict[str, int] = {}  # batch-norm layers that gained channels by widening --init
    if cfg.init and (distil or not cfg.resume):
        init = init_ckpt if init_ckpt is not None else _read_init(cfg.init)
        init_state, source = init.get("state_dict", init), f"Checkpoint '{cfg.init}' (--init)"
        if not cfg.resume:
            load_init_weights(model, init_state, source)
            new_bn = new_channel_counts(init_state, model)
        if distil and isinstance(task, ShmTask):  # the teacher: the init weights (and widths), also on resume
            teacher = task.build(init_state).to(device)
            load_init_weights(teacher, init_state, source)
            task.teacher = teacher.eval().requires_grad_(False)
    if cfg.reset_head:
        cfg_m = getattr(model, "cfg", None)
        if not (cfg.init and getattr(cfg_m, "residual", False)):
            raise SettingsError("--reset-head", True, "needs --init and an SHM configuration with a residual head (lite)")
        with torch.no_grad():
            model.head[-1].weight.zero_()  # type: ignore[index, union-attr]
    avg = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema > 0 else None
    state = _load_resume(cfg)
    if state is not None:
        model.load_state_dict(state.get("train_state_dict", state["state_dict"]))
        if avg is not None:
            avg.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        history = list(state.get("history", []))
        step_losses = [float(v) for v in state.get("losses", [])]
        best = float(state.get("best", float("inf")))
        torch.set_rng_state(state["torch_rng"])
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    prog = Progress(cfg.steps, cfg.log_every, quiet=quiet)
    log_path = out / "log.jsonl"

    def checkpoint(step: int) -> None:
        raw = {"train_state_dict": _cpu_state(model)} if avg is not None else {}
        _save(out / "last.pt", {
            **task.export(avg or model), **raw, "optimizer": opt.state_dict(), "step": step, "history": history,
            "losses": step_losses, "best": best, "torch_rng": torch.get_rng_state(), "train_config": asdict(cfg),
        })

    def validate(step: int, t_train: float) -> None:
        nonlocal best
        t = time.time()
        metrics = task.validate(avg or model)
        set_train_mode(model, cfg.freeze_bn)  # validation leaves every module in train mode
        recent = step_losses[-cfg.log_every * 5:]
        terms = {f"loss_{k}": round(float(np.mean([t[k] for t in recent_terms])), 5) for k in recent_terms[0]} if recent_terms else {}
        row = {"step": step, "time_s": round(t_train, 1), "loss": float(np.mean(recent)) if recent else None,
               "lr": lr_at(max(step - 1, 0), cfg), **terms, **{k: round(v, 4) for k, v in metrics.items()},
               "val_s": round(time.time() - t, 1)}
        history.append(row)
        with log_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        base = f" (prior {metrics['prior_mad_unk']:.2f} / {metrics['prior_grad_unk']:.2f})" if "prior_mad_unk" in metrics else ""
        if "base_mad_unk" in metrics:
            base += f" (base {metrics['base_mad_unk']:.2f} / {metrics['base_grad_unk']:.2f})"
        prog.message(f"val @ {step}: MAD_unk {metrics['mad_unk']:.2f}  Grad_unk {metrics['grad_unk']:.2f}{base}")
        if metrics["mad_unk"] < best:
            best = metrics["mad_unk"]
            _save(out / "best.pt", {**task.export(avg or model), "step": step, "metrics": metrics})

    stream = BatchStream(task.kind, cfg)
    if new_bn and cfg.freeze_bn:  # frozen statistics of the new channels: measure them first
        n = calibrate_new_channels(model, new_bn, (task.loss(model, to_device(stream.get(i, cfg.steps), device))
                                                   for i in range(min(CALIBRATION_BATCHES, cfg.steps))))
        prog.message(f"widened --init: batch-norm statistics of the new channels measured on {n} batches")
    t_train = float(history[-1]["time_s"]) if history else 0.0
    started = time.monotonic()
    done, stopped = start, ""
    try:
        if start == 0 and cfg.val_every > 0:
            validate(0, 0.0)
        for step in range(start, cfg.steps):
            t = time.time()
            batch = to_device(stream.get(step, cfg.steps), device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            loss, terms = task.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if avg is not None:
                ema_update(avg, model, cfg.ema)
            val = float(loss.detach())
            step_losses.append(val)
            recent_terms = [*recent_terms[-(cfg.log_every * 5 - 1):], terms]
            t_train += time.time() - t
            done = step + 1
            recent = step_losses[-cfg.log_every:]
            prog.update(done, f"loss {np.mean(recent):.4f} lr {lr_at(step, cfg):.2e}")
            if on_step is not None:
                on_step(done, terms)
            if cfg.val_every > 0 and (done % cfg.val_every == 0 or done == cfg.steps):
                validate(done, t_train)
            out_of_time = cfg.time_limit > 0 and done < cfg.steps and time.monotonic() - started >= cfg.time_limit * 60
            if done % cfg.ckpt_every == 0 or done == cfg.steps or out_of_time:
                checkpoint(done)
            if out_of_time:
                stopped = (f"the time limit of {cfg.time_limit:g} min was reached after step {done} of {cfg.steps}; "
                           f"the checkpoint {out / 'last.pt'} holds it: run the same command with --resume to go on")
                prog.message(stopped)
                break
    finally:
        stream.close()
    return {"step": done, "history": history, "losses": step_losses, "best": best, "out": str(out),
            "stopped": stopped}


def iter_history(out: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of ``OUT/log.jsonl`` (validation reports)."""
    p = Path(out) / "log.jsonl"
    if p.is_file():
        for line in p.read_text().splitlines():
            if line.strip():
                yield json.loads(line)


def export_weights(ckpt: str | Path, dest: str | Path, half: bool = False) -> Path:
    """Strip a training checkpoint to ``{"config", "state_dict"}`` (optionally float16 weights) at ``dest``."""
    state = torch.load(Path(ckpt), map_location="cpu", weights_only=True)
    sd = state["state_dict"]
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    obj: dict[str, Any] = {"config": state.get("config", "lite"), "state_dict": sd}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, dest)
    return dest
