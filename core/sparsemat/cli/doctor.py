"""``sparsemat doctor``: what a render with these flags would use on this machine, and what is wrong.

For a pipeline TD setting up a workstation or a farm blade: the engine and Python, the device and
sparse backend, the refiner's weights, the prior ``auto`` picks, the colour config (and that a
conversion works), the threads and the active-pixel budget within the machine's or container's
limits. Takes the engine knobs and ``--threads`` as ``render`` does. Exit status 0 when nothing is
wrong, 1 when a render would fail or run untrained weights (each problem says what to do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparsemat.cli.knobs import add_engine_flags, settings_from_args
from sparsemat.cli.threads import add_threads_flag, thread_source
from sparsemat.errors import SparseMatError
from sparsemat.settings import Settings
from sparsemat.version import __version__


@dataclass
class Check:
    """One line of the report: ``ok`` False marks a problem, ``note`` says why or what to do."""

    name: str
    value: str
    ok: bool = True
    note: str = ""


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``doctor`` flags."""
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--input-colorspace", metavar="NAME",
                        help="also check that this plate colour space is known (as render's --input-colorspace)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="also check where a render would write (a file, a sequence pattern or a folder): "
                             "that its folder can be created and written, and its free space")
    add_threads_flag(parser.add_argument_group("run"))
    add_engine_flags(parser)


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB"


def _device_checks(settings: Settings) -> tuple[list[Check], Any]:
    import torch

    from sparsemat.engine.session import resolve_device
    from sparsemat.sparse import get_backend, spconv_available

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    checks = [Check("torch", f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'})"),
              Check("GPUs", ", ".join(gpus) or "none")]
    try:
        device = resolve_device(settings.device)
    except SparseMatError as exc:
        return [*checks, Check("device", settings.device, False, str(exc))], None
    checks.append(Check("device", f"{device} (knob: {settings.device})"))
    try:
        backend = get_backend(settings.backend, device).name
    except SparseMatError as exc:
        return [*checks, Check("sparse backend", settings.backend, False, str(exc))], None
    note = "" if backend == "spconv" or device.type == "cpu" else (
        "spconv is not installed: the pure-PyTorch backend runs on the GPU, slower")
    checks.append(Check("sparse backend", f"{backend} (spconv installed: {'yes' if spconv_available() else 'no'})",
                        True, note))
    return checks, device


def _refiner_check(settings: Settings, device: Any) -> tuple[Check, Any]:
    from sparsemat.builders import SHM_CONFIGS, build_shm, count_parameters, shipped_weight_path

    name = settings.model
    if name in SHM_CONFIGS and not shipped_weight_path(name).is_file():
        return Check("refiner", name, False, f"no weights for '{name}' ({shipped_weight_path(name)} is missing): "
                     "it would run untrained; pick a shipped model or a checkpoint (--model)"), None
    try:
        model = build_shm(name, device=device)
    except SparseMatError as exc:
        return Check("refiner", name, False, str(exc)), None
    source = shipped_weight_path(name) if name in SHM_CONFIGS else Path(name)
    return Check("refiner", f"{name}: {count_parameters(model) / 1e6:.2f} M parameters from {source}"), model


def _prior_check(settings: Settings) -> Check:
    from sparsemat.priors import choose_prior
    from sparsemat.priors.lpn_prior import SHIPPED_LPN_WEIGHTS

    try:
        name, reason = choose_prior(settings.prior, has_matte=False)
    except SparseMatError as exc:
        return Check("prior", settings.prior, False, str(exc))
    untrained = name == "lpn" and not SHIPPED_LPN_WEIGHTS.is_file()
    return Check("prior without a matte", f"{name} ({reason})", not untrained,
                 "connect a matte (roto, keyer) or install RVM (README, Dependencies)" if untrained else "")


def _colour_checks(plate_space: str | None = None) -> list[Check]:
    import numpy as np
    import OpenImageIO as oiio

    from sparsemat.io.colour import CONFIG, convert, resolve_colorspace

    checks = [Check("OpenImageIO / OpenColorIO",
                    f"{oiio.__version__} / {oiio.get_string_attribute('opencolorio_version')}, config {CONFIG}",
                    True, f"$OCIO={os.environ['OCIO']} is not read" if os.environ.get("OCIO") else "")]
    try:
        grey = float(convert(np.full((1, 1, 3), 0.18, np.float32), "lin_rec709")[0, 0, 0])
    except SparseMatError as exc:
        return [*checks, Check("colour conversion", "lin_rec709 -> sRGB", False, str(exc))]
    ok = abs(grey - 0.4614) < 1e-3
    checks.append(Check("colour conversion", f"linear 0.18 -> sRGB {grey:.4f}", ok,
                        "" if ok else "expected 0.4614: this OpenImageIO build converts colour differently"))
    if plate_space is not None:
        try:
            checks.append(Check("plate colour space", f"{plate_space} = {resolve_colorspace(plate_space)}", True))
        except SparseMatError as exc:
            checks.append(Check("plate colour space", plate_space, False,
                                f"{exc} Set the plate colour space (--input-colorspace, or the node's Plate colour "
                                "space knob) to one of these names."))
    return checks


#: Free space below which the output check reports a problem: about 40 frames of 4K RGBA half EXR (~50 MB each).
MIN_FREE_BYTES = 2 * 1024**3


def _output_check(path: str) -> Check:
    """Where a render would write: the folder exists (or its nearest existing parent can hold it), is writable, and
    has at least :data:`MIN_FREE_BYTES` free."""
    import shutil

    folder = os.path.abspath(path if path.endswith(os.sep) or os.path.isdir(path) else os.path.dirname(path) or ".")
    existing = folder
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check("output folder", folder, False,
                     f"{existing} is not writable by this user: fix its permissions or write elsewhere")
    free = shutil.disk_usage(existing).free
    value = f"{folder}{'' if existing == folder else ' (will be created)'}, {_gib(free)} free"
    if free < MIN_FREE_BYTES:
        return Check("output folder", value, False,
                     f"less than {_gib(MIN_FREE_BYTES)} free: a 4K RGBA half frame takes about 50 MB; free some space "
                     "or write elsewhere")
    return Check("output folder", value)


def _limit_checks(args: argparse.Namespace, settings: Settings, device: Any, model: Any) -> list[Check]:
    from sparsemat.engine.budget import available_memory_bytes
    from sparsemat.engine.cgroup import memory_headroom_bytes

    checks = []
    try:
        threads, why = thread_source(args.threads, os.environ)
    except SparseMatError as exc:
        checks.append(Check("threads", str(args.threads), False, str(exc)))
    else:
        checks.append(Check("threads", f"{threads or os.cpu_count()} of {os.cpu_count()} cores ({why})"))
    if device is not None:
        headroom = memory_headroom_bytes() if device.type == "cpu" else None
        limit = f", container limit leaves {_gib(headroom)}" if headroom is not None else ""
        checks.append(Check("memory", f"{_gib(available_memory_bytes(device))} free on {device}{limit}"))
    if model is not None:
        from sparsemat.engine import Session

        budget = Session(settings, refiner=model).budget  # the engine's own rule: the knob, else free memory
        why = "knob" if settings.max_active_pixels > 0 else "from free memory"
        checks.append(Check("active-pixel budget", f"{budget:,} pixels per pass ({why}; "
                            f"{budget / (3840 * 2160) * 100:.0f} % of a UHD plate)"))
    return checks


def report(args: argparse.Namespace) -> list[Check]:
    """Every check, in the order printed."""
    settings = settings_from_args(args)
    checks = [Check("engine", f"sparsemat {__version__}, Python {platform.python_version()} ({sys.executable})")]
    device_checks, device = _device_checks(settings)
    checks += device_checks
    model = None
    if device is not None:
        refiner, model = _refiner_check(settings, device)
        checks.append(refiner)
    checks.append(_prior_check(settings))
    checks += _colour_checks(getattr(args, "input_colorspace", None))
    if getattr(args, "output", None):
        checks.append(_output_check(args.output))
    checks += _limit_checks(args, settings, device, model)
    return checks


def run(args: argparse.Namespace) -> int:
    """Print the report; exit status 1 when any check failed."""
    checks = report(args)
    problems = [c for c in checks if not c.ok]
    if args.json:
        print(json.dumps({"checks": [asdict(c) for c in checks], "problems": len(problems)}, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = "ok     " if c.ok else "PROBLEM"
            print(f"{mark} {c.name:<{width}}  {c.value}" + (f"\n        {'':<{width}}  -> {c.note}" if c.note else ""))
        print(f"{len(problems)} problem(s)" if problems else "everything a render needs is in place")
    return 1 if problems else 0
