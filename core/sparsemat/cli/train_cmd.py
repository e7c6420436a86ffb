"""``sparsemat train {shm,lpn}``: train the sparse refiner or the low-resolution prior (see
:mod:`sparsemat.train.trainer` for the recipe, checkpoints and the log format)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

from sparsemat.engine.colour_samples import levels_problem
from sparsemat.errors import SettingsError
from sparsemat.train.losses import LOSS_NORMS
from sparsemat.train.trainer import TrainConfig, export_weights, train


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``train`` flags."""
    d = TrainConfig()
    parser.add_argument("model", choices=("shm", "lpn"), help="network to train")
    parser.add_argument("--config", default=d.config, help="SHM variant (lite, paper) [%(default)s]")
    parser.add_argument("--steps", type=int, default=d.steps, help="optimiser steps in total [%(default)s]")
    parser.add_argument("--batch", type=int, default=d.batch, help="crops per step [%(default)s]")
    parser.add_argument("--crop", type=int, default=None, help="crop side in px [SHM 256, LPN 512]")
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (Adam) [%(default)s]")
    parser.add_argument("--warmup", type=int, default=d.warmup, help="linear warm-up steps [%(default)s]")
    parser.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="cosine floor / peak [%(default)s]")
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of init and data [%(default)s]")
    parser.add_argument("--out", default=None, help="run folder [runs/<model>_<config>]")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT",
                        help="continue from OUT/last.pt (or CKPT)")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from these weights (fine-tune: new optimizer, schedule and step count)")
    parser.add_argument("--reset-head", action="store_true",
                        help="with --init: zero the residual head's last conv, so step 0 returns the model's base "
                             "(e.g. after changing the prior input)")
    parser.add_argument("--time-limit", type=float, default=d.time_limit, metavar="MIN",
                        help="stop after this many minutes of wall time with a checkpoint that --resume continues "
                             "exactly (farm jobs, GPU leases); 0: no limit [%(default)s]")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint interval [%(default)s]")
    parser.add_argument("--val-every", type=int, default=d.val_every, help="validation interval (0: never) [%(default)s]")
    parser.add_argument("--val-size", type=int, default=d.val_size, help="validation crops [%(default)s]")
    parser.add_argument("--log-every", type=int, default=d.log_every, help="log-line interval off a TTY [%(default)s]")
    parser.add_argument("--lr-factors", type=_ints, default=d.lr_factors,
                        help="plate-to-prior downsampling factors drawn per batch [2,4,8]")
    parser.add_argument("--kinds", default="", help="prior degradations (comma list; default: all)")
    parser.add_argument("--kernel", type=int, default=d.kernel, help="band dilation in px [%(default)s]")
    parser.add_argument("--side-weights", type=_floats, default=d.side_weights, help="p4,p2,p1,final [0.1,0.1,0.1,1]")
    parser.add_argument("--lap-weight", type=float, default=d.lap_weight)
    parser.add_argument("--grad-weight", type=float, default=d.grad_weight)
    parser.add_argument("--sample-scale", type=_floats, default=d.sample_scale,
                        help="synthetic composite side / crop, uniform range [1,1.6]")
    parser.add_argument("--crops-per-sample", type=int, default=d.crops_per_sample,
                        help="crops cut from each synthetic composite [%(default)s]")
    parser.add_argument("--soft-edge-prob", type=float, default=d.soft_edge_prob,
                        help="chance of a defocused body edge in synthetic composites [%(default)s]")
    parser.add_argument("--texture-case-prob", type=float, default=d.texture_case_prob,
                        help="chance that a synthetic composite is a texture case: a textured body behind a "
                             "defocused edge, a woven fabric, or a patterned background [%(default)s]")
    parser.add_argument("--texture-cases", default="",
                        help="comma list of the texture cases drawn (textured_soft_body, fabric, "
                             "patterned_background, camouflage; a name given twice is drawn twice as often) "
                             "[the first three]")
    parser.add_argument("--whole-view", action="store_true",
                        help="cut each crop's prior from its whole composite's degraded matte and take the colour "
                             "samples from the whole composite's low-res view, as the engine does on a plate")
    parser.add_argument("--flat-weight", type=float, default=d.flat_weight,
                        help="weight of the pull towards the base alpha where the plate is flat in the band "
                             "(0: off) [%(default)s]")
    parser.add_argument("--flat-window", type=int, default=d.flat_window,
                        help="odd window (px) of that term's local plate contrast [%(default)s]")
    parser.add_argument("--flat-contrast", type=float, default=d.flat_contrast,
                        help="local RGB contrast (std) at which a pixel counts as structured [%(default)s]")
    parser.add_argument("--ema", type=float, default=d.ema,
                        help="decay of a moving average of the weights that validation, best.pt and the exported "
                             "weights use, e.g. 0.999 (0: off) [%(default)s]")
    parser.add_argument("--freeze-bn", action="store_true",
                        help="with --init: keep the batch-norm statistics of the initial weights fixed while "
                             "fine-tuning (scale and shift still learn)")
    parser.add_argument("--loss-norm", choices=LOSS_NORMS, default=d.loss_norm,
                        help="SHM: penalty of the alpha terms (per output, distillation): l1 as the official "
                             "recipe, or l2 (squared errors), whose optimum is the mean of the possible mattes, "
                             "softer where the inputs leave an edge open; also the structure terms' unless "
                             "--edge-norm [%(default)s]")
    parser.add_argument("--edge-norm", choices=LOSS_NORMS, default=None,
                        help="SHM: penalty of the structure terms (Laplacian, gradient, distillation gradient): l1 "
                             "favours piecewise-constant mattes, l2 smooth ones [--loss-norm]")
    parser.add_argument("--over-weight", type=float, default=d.over_weight,
                        help="SHM: weight of a term that charges the matte's gradient where it is steeper than the "
                             "ground truth's (hardened soft edges; 0: off) [%(default)s]")
    parser.add_argument("--distill-weight", type=float, default=d.distill_weight,
                        help="SHM with --init: weight of a pull towards the initial weights' own output on crops "
                             "that are not texture cases (0: off) [%(default)s]")
    parser.add_argument("--distill-grad-weight", type=float, default=d.distill_grad_weight,
                        help="SHM with --init: weight of a pull of the matte's gradients towards the initial "
                             "weights' own on the same crops (0: off) [%(default)s]")
    parser.add_argument("--distill-skip-kinds", default="", metavar="KINDS",
                        help="SHM: prior degradations (comma list, as --kinds) whose crops the distillation terms leave "
                             "out, so the fine-tune learns them from the data alone [none]")
    parser.add_argument("--sample-levels", type=_floats, default=None, metavar="FG,BG",
                        help="SHM: prior alpha above / below which a low-res pixel is a foreground / background colour "
                             "sample for the colour-sample inputs; stored in the checkpoint so the engine uses them "
                             "too [the --init checkpoint's, else 0.98,0.02]")
    parser.add_argument("--data", default=d.data, help="synthetic | aim:FG,ALPHA,BG | vm240k:ROOT[,BG] [%(default)s]")
    parser.add_argument("--photos", default=None, help="photo folder for synthetic data ('none': generated only)")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch threads [%(default)s]")
    parser.add_argument("--device", default=d.device,
                        help="cpu, cuda or cuda:N: where the network trains (data is made on the CPU) [%(default)s]")
    parser.add_argument("--workers", type=int, default=d.workers, help="data processes (0: in-process) [%(default)s]")
    parser.add_argument("--export", default=None, metavar="PATH",
                        help="after training, write the best checkpoint's weights here ({config, state_dict})")
    parser.add_argument("--half", action="store_true", help="export float16 weights")


def _names(flag: str, text: str, known: Sequence[str]) -> tuple[str, ...]:
    """The names of a comma list (empty: none; repeats kept); names not in ``known`` are refused with the known ones."""
    names = tuple(n for n in text.split(",") if n)
    bad = [n for n in names if n not in known]
    if bad:
        raise SettingsError(flag, ",".join(bad), f"choose from {', '.join(known)}")
    return names


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``train`` arguments."""
    from sparsemat.train.synth import ALL_TEXTURE_CASES, PRIOR_KINDS

    kinds = _names("--kinds", str(args.kinds), PRIOR_KINDS)
    skip = _names("--distill-skip-kinds", str(getattr(args, "distill_skip_kinds", "")), PRIOR_KINDS)
    cases = _names("--texture-cases", str(getattr(args, "texture_cases", "")), ALL_TEXTURE_CASES)
    if len(args.side_weights) != 4:
        raise SettingsError("--side-weights", args.side_weights, "needs four numbers (p4, p2, p1, final)")
    if not 0.0 <= args.soft_edge_prob <= 1.0:
        raise SettingsError("--soft-edge-prob", args.soft_edge_prob, "must be between 0 and 1")
    if not 0.0 <= args.texture_case_prob <= 1.0:
        raise SettingsError("--texture-case-prob", args.texture_case_prob, "must be between 0 and 1")
    if args.flat_weight < 0:
        raise SettingsError("--flat-weight", args.flat_weight, "must be 0 (off) or positive")
    if getattr(args, "over_weight", 0.0) < 0:
        raise SettingsError("--over-weight", args.over_weight, "must be 0 (off) or positive")
    if getattr(args, "distill_weight", 0.0) < 0:
        raise SettingsError("--distill-weight", args.distill_weight, "must be 0 (off) or positive")
    if getattr(args, "distill_grad_weight", 0.0) < 0:
        raise SettingsError("--distill-grad-weight", args.distill_grad_weight, "must be 0 (off) or positive")
    if args.flat_window < 1 or args.flat_window % 2 == 0:
        raise SettingsError("--flat-window", args.flat_window, "must be an odd number of pixels (e.g. 5)")
    if args.flat_contrast <= 0:
        raise SettingsError("--flat-contrast", args.flat_contrast, "must be positive (e.g. 0.05)")
    if not 0.0 <= args.ema < 1.0:
        raise SettingsError("--ema", args.ema, "must be 0 (off) or a decay below 1 (e.g. 0.999)")
    if args.steps < 1 or args.batch < 1:
        raise SettingsError("--steps/--batch", (args.steps, args.batch), "must be positive")
    if not args.time_limit >= 0:
        raise SettingsError("--time-limit", args.time_limit, "must be 0 (no limit) or a positive number of minutes")
    levels = getattr(args, "sample_levels", None)
    if levels is not None:
        problem = levels_problem(tuple(levels))
        if problem:
            raise SettingsError("--sample-levels", ",".join(f"{v:g}" for v in levels), problem)
        levels = (float(levels[0]), float(levels[1]))
    crop = args.crop if args.crop is not None else (256 if args.model == "shm" else 512)
    out = args.out or (f"runs/shm_{args.config}" if args.model == "shm" else "runs/lpn")
    return TrainConfig(
        model=args.model, config=args.config, steps=args.steps, batch=args.batch, crop=crop, lr=args.lr,
        warmup=args.warmup, min_lr_ratio=args.min_lr_ratio, weight_decay=args.weight_decay, seed=args.seed, out=out,
        ckpt_every=max(1, args.ckpt_every), val_every=max(0, args.val_every), log_every=max(1, args.log_every),
        val_size=max(1, args.val_size), lr_factors=tuple(args.lr_factors), kinds=kinds, kernel=args.kernel,
        side_weights=tuple(args.side_weights), lap_weight=args.lap_weight, grad_weight=args.grad_weight,  # type: ignore[arg-type]
        sample_scale=(float(args.sample_scale[0]), float(args.sample_scale[-1])),
        crops_per_sample=max(1, args.crops_per_sample), data=args.data, photos=args.photos, threads=args.threads, device=args.device,
        workers=max(0, args.workers), resume=args.resume, time_limit=float(args.time_limit),
        init=args.init, reset_head=bool(getattr(args, "reset_head", False)), soft_edge_prob=args.soft_edge_prob,
        texture_case_prob=args.texture_case_prob,
        texture_cases=cases,
        whole_view=bool(getattr(args, "whole_view", False)), flat_weight=args.flat_weight, flat_window=args.flat_window, flat_contrast=args.flat_contrast, ema=args.ema,
        freeze_bn=bool(getattr(args, "freeze_bn", False)),
        loss_norm=str(getattr(args, "loss_norm", "l1")),
        edge_norm=getattr(args, "edge_norm", None),
        over_weight=float(getattr(args, "over_weight", 0.0)),
        distill_weight=float(getattr(args, "distill_weight", 0.0)),
        distill_grad_weight=float(getattr(args, "distill_grad_weight", 0.0)),
        distill_skip_kinds=skip,
        sample_levels=levels,
    )


def run(args: argparse.Namespace) -> int:
    """Train; returns 0."""
    cfg = config_from_args(args)
    result = train(cfg, quiet=bool(getattr(args, "quiet", False)))
    hist = result["history"]
    if hist:
        logging.getLogger(__name__).info("last validation: %s", json.dumps(hist[-1]))
    if args.export:
        from pathlib import Path

        best = Path(cfg.out) / "best.pt"
        src = best if best.is_file() else Path(cfg.out) / "last.pt"
        dest = export_weights(src, args.export, half=args.half)
        logging.getLogger(__name__).info("exported %s -> %s", src, dest)
    return 0
