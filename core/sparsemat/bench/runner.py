"""Run the benchmark: one fresh subprocess per (size, config, method, backend).

A fresh process per measurement makes the peak resident memory (``VmHWM``, the
``getrusage(RUSAGE_SELF).ru_maxrss`` of that process) belong to that method alone; CUDA peaks come from
``torch.cuda.max_memory_allocated``. The parent only orchestrates and never holds a plate.

Child entry point: ``python -m sparsemat.bench.runner TASK SPEC.json OUT.json`` with ``TASK`` one of
``prepare`` (write a plate set), ``run`` (measure one method on a plate set) and ``macs`` (analytic dense
SHM MACs at the paper's 4K).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsemat.settings import DEFAULT_MODEL

#: Peak RSS a dense run may reach before it is reported as "does not fit" instead of being run.
DEFAULT_MAX_RSS_GB = 14.0
#: Size of the dense memory probe (its per-pixel cost is extrapolated to the real size).
PROBE_SIZE = "960x540"


@dataclass
class BenchPlan:
    """What to measure.

    Attributes:
        sizes: size tokens for the speed/quality table (``2k``, ``4k``, ``WxH`` …).
        configs: SHM configs (``lite_cs4`` the default model, ``lite_csw``, ``lite_cs3``, ``lite_cs2``, ``lite_cs``, ``lite``, ``paper``).
        backends: sparse backends for the ``sparse`` method (``torch``, ``spconv``); ``dense`` in this
            list enables the ``dense`` method.
        methods: subset of ``sparse, dense, patch, guided, temporal, tweak``.
        frames: frames per plate sequence (timed runs per method).
        memory_sizes: extra sizes run with ``sparse``/``engine_config`` only, for the memory target.
        temporal_size: size of the temporal on/off study (``engine_config``).
        engine_config: SHM config of the memory target run and the temporal study (the engine's default model).
        temporal_frames: frames of that study.
        seed: plate seed.
        max_seconds: per measurement, stop taking more frames once this much time is spent (≥ 1 frame).
        max_rss_gb: dense runs estimated above this peak RSS are reported as "does not fit".
        photos: use the shared photo folder for backgrounds when present.
        probe_size: plate size of the dense memory probe.
        max_frame_seconds: dense/patch runs whose first frame is estimated (from the probe's MAC rate)
            above this are reported as "skipped (too slow)" with the estimate instead of being run.
        work: folder for plates and outputs (None: a temporary folder, removed afterwards).
    """

    sizes: list[str] = field(default_factory=lambda: ["2k", "4k"])
    configs: list[str] = field(default_factory=lambda: [DEFAULT_MODEL, "paper"])
    backends: list[str] = field(default_factory=lambda: ["torch", "dense"])
    methods: list[str] = field(default_factory=lambda: ["sparse", "dense", "patch", "guided", "temporal", "tweak"])
    frames: int = 3
    memory_sizes: list[str] = field(default_factory=lambda: ["8k"])
    temporal_size: str = "2k"
    temporal_frames: int = 4
    engine_config: str = DEFAULT_MODEL
    seed: int = 3
    max_seconds: float = 90.0
    max_rss_gb: float = DEFAULT_MAX_RSS_GB
    photos: bool = True
    work: str | None = None
    probe_size: str = PROBE_SIZE
    max_frame_seconds: float = 240.0


# ------------------------------------------------------------------------------------------- children
def _child(task: str, spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run ``task`` in a fresh interpreter and return its JSON answer (``status: failed`` on errors)."""
    with tempfile.TemporaryDirectory(prefix="sparsemat-bench-") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "out.json")
        Path(spec_path).write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "sparsemat.bench.runner", task, spec_path, out_path]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "note": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not os.path.isfile(out_path):
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            return {"status": "failed", "note": f"exit {proc.returncode}: {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(Path(out_path).read_text())
        return result


def _device_for(backend: str) -> str:
    return "cuda" if backend == "spconv" else "cpu"


def _median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)``; zeros for an empty list."""
    if not values:
        return 0.0, 0.0, 0.0
    return float(statistics.median(values)), float(min(values)), float(max(values))


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one method on one plate set in this process (the ``run`` child task)."""
    import numpy as np
    import torch

    from sparsemat.bench import methods as M
    from sparsemat.bench.plates import PlateSet
    from sparsemat.evaluation import dtssd_sequence, grad, mad, unknown_mask

    plates = PlateSet.load(spec["plates"])
    device = torch.device(spec.get("device", "cpu"))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    load0 = os.getloadavg()
    method = M.Method(spec["method"], spec["config"], spec["backend"], device, bool(spec.get("temporal", False)))
    out_dir = M.scratch_dir()
    proc_peak = M.peak_rss_bytes()
    extra_peak = 0
    per_frame: list[dict[str, Any]] = []
    preds: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    started = time.perf_counter()
    keep_preds = spec["method"] == "temporal"
    try:
        for f in range(plates.frames):
            clock = M.StageClock(device)
            with clock("io"):
                rgb, prior = M.read_inputs(plates, f)
            proc_peak = max(proc_peak, M.peak_rss_bytes())
            can_reset = M.reset_peak_rss()
            base = M.rss_bytes()
            out = method.frame(f, rgb, prior, clock)
            if can_reset:
                extra_peak = max(extra_peak, M.peak_rss_bytes() - base)
            with clock("io"):
                M.write_output(out_dir, f, rgb, out.alpha)
            gt = plates.gt(f)
            unk = unknown_mask(gt, 15)
            row: dict[str, Any] = {
                "frame": f, "stage_seconds": dict(clock.seconds), "total_seconds": sum(clock.seconds.values()),
                "shm_gmacs": out.shm_gmacs, "active_share": out.active_share,
                "mad_unknown": mad(out.alpha, gt, unk), "grad_unknown": grad(out.alpha, gt, unk), **out.extra,
            }
            per_frame.append(row)
            if keep_preds:
                preds.append(out.alpha)
                gts.append(gt)
            del rgb, prior, out
            elapsed = time.perf_counter() - started
            if not keep_preds and f + 1 < plates.frames and elapsed + row["total_seconds"] > spec["max_seconds"]:
                break
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    proc_peak = max(proc_peak, M.peak_rss_bytes())
    stage_med = {s: _median_spread([r["stage_seconds"].get(s, 0.0) for r in per_frame])[0] for s in M.STAGES}
    stage_spread = {s: list(_median_spread([r["stage_seconds"].get(s, 0.0) for r in per_frame])[1:])
                    for s in M.STAGES}
    tot, tmin, tmax = _median_spread([r["total_seconds"] for r in per_frame])
    rec: dict[str, Any] = {
        "status": "ok",
        "stage_seconds": stage_med, "stage_spread": stage_spread,
        "total_seconds": tot, "total_spread": [tmin, tmax],
        "engine_seconds": sum(stage_med[s] for s in ("prior", "maps", "shm", "blend")),
        "runs": len(per_frame),
        "peak_rss_bytes": proc_peak, "compute_peak_extra_bytes": extra_peak,
        "peak_cuda_bytes": int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else 0,
        "active_share": float(np.mean([r["active_share"] for r in per_frame])),
        "shm_gmacs": _median_spread([r["shm_gmacs"] for r in per_frame])[0],
        "mad_unknown": float(np.mean([r["mad_unknown"] for r in per_frame])),
        "grad_unknown": float(np.mean([r["grad_unknown"] for r in per_frame])),
        "per_frame": per_frame, "threads": torch.get_num_threads(),
        "loadavg": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
    }
    if keep_preds:
        rec["dtssd"] = dtssd_sequence(preds, gts)
        rec["sequence_shm_gmacs"] = float(sum(r["shm_gmacs"] for r in per_frame))
        rec["sequence_active_pixels"] = float(sum(r["active_share"] for r in per_frame)) * plates.height * plates.width
    if device.type == "cuda":
        rec["device_name"] = torch.cuda.get_device_name(device)
    return rec


def dispatch(task: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one child task in this process and return its JSON-ready answer."""
    if task == "prepare":
        from sparsemat.bench.plates import make_plates

        ps = make_plates(spec["folder"], spec["size"], spec["frames"], spec["seed"], spec["motion"], spec["photos"])
        result: dict[str, Any] = {"status": "ok", "folder": ps.folder, "photos": ps.photos}
    elif task == "run":
        result = run_one(spec)
    elif task == "macs":
        from sparsemat.bench.methods import paper_dense_gmacs

        result = {"status": "ok", "gmacs": {c: paper_dense_gmacs(2160, 3840, c) for c in spec["configs"]}}
    else:
        raise SystemExit(f"unknown task {task!r}")
    return result


def _child_main(argv: Sequence[str]) -> int:
    task, spec_path, out_path = argv
    result = dispatch(task, json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(result))
    return 0


# ----------------------------------------------------------------------------------------------- parent
def machine_info() -> dict[str, Any]:
    """Machine, software and load description for the report header."""
    import torch

    from sparsemat.version import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = ""
    with contextlib.suppress(OSError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[3], check=False).stdout.strip()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "sparsemat": __version__, "commit": commit, "python": platform.python_version(), "gpu": gpu,
            "date": time.strftime("%Y-%m-%d %H:%M"), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def _weights_status(configs: Sequence[str]) -> dict[str, str]:
    from sparsemat.builders import shipped_weight_path

    return {c: ("trained (" + shipped_weight_path(c).name + ")") if shipped_weight_path(c).is_file()
            else "random init (no shipped weights)" for c in configs}


def run_bench(plan: BenchPlan, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every measurement of ``plan``; returns ``{"machine", "plan", "records", "macs_4k", ...}``."""
    from dataclasses import asdict

    from sparsemat.bench.plates import parse_size

    work = plan.work or tempfile.mkdtemp(prefix="sparsemat-bench-")
    records: list[dict[str, Any]] = []
    info = machine_info()
    t_start = time.perf_counter()

    def plates_for(size: str, frames: int, motion: str) -> str | None:
        folder = os.path.join(work, f"plates-{size}-{motion}-{frames}f-s{plan.seed}")
        log(f"[bench] plates {size} ({motion}, {frames} frames)")
        res = _child("prepare", {"folder": folder, "size": size, "frames": frames, "seed": plan.seed,
                                 "motion": motion, "photos": plan.photos})
        if res.get("status") != "ok":
            log(f"[bench]   plate generation failed: {res.get('note')}")
            return None
        info["photos"] = res.get("photos", 0)
        return folder

    def measure(size: str, folder: str, config: str, method: str, backend: str, **extra: Any) -> dict[str, Any]:
        name, h, w = parse_size(size)
        base = {"size": name, "width": w, "height": h, "config": config, "method": method, "backend": backend,
                "device": _device_for(backend)}
        spec = {"plates": folder, "config": config if method != "guided" else "-", "method": method,
                "backend": backend, "device": base["device"], "max_seconds": plan.max_seconds, **extra}
        t0 = time.perf_counter()
        res = _child("run", spec)
        res.pop("device", None)
        rec = {**base, **{k: v for k, v in extra.items() if k != "plates"}, **res}
        log(f"[bench]   {name} {config} {method}/{backend}{' ' + str(extra) if extra else ''}: "
            f"{rec.get('status')} {rec.get('total_seconds', 0):.2f} s/frame, "
            f"peak {rec.get('peak_rss_bytes', 0) / 1e9:.2f} GB, active {100 * rec.get('active_share', 0):.1f} %, "
            f"{rec.get('shm_gmacs', 0):.1f} GMACs ({time.perf_counter() - t0:.0f} s) {rec.get('note', '')}")
        records.append(rec)
        return rec

    sparse_backends = [b for b in plan.backends if b in ("torch", "spconv")]
    cuda_ok = bool(machine_info()["gpu"])
    probes: dict[str, dict[str, Any]] = {}

    def probe(config: str) -> dict[str, Any]:
        if config not in probes:
            folder = plates_for(plan.probe_size, 1, "locked")
            probes[config] = _child("run", {"plates": folder, "config": config, "method": "dense",
                                            "backend": "dense", "device": "cpu", "max_seconds": 1.0}) if folder else {}
        return probes[config]

    def guard(size: str, config: str, method: str) -> dict[str, Any] | None:
        """A "does not fit" / "too slow" record estimated from the dense probe, or None to run it."""
        pr = probe(config)
        if pr.get("status") != "ok":
            return None
        from sparsemat.bench.methods import tile_starts

        _, ph, pw = parse_size(plan.probe_size)
        # extrapolate from the largest dense run of this config already measured, else from the probe
        done = [r for r in records if (r["method"], r["config"], r.get("status")) == ("dense", config, "ok")]
        if done:
            pr = max(done, key=lambda r: r["width"] * r["height"])
            ph, pw = pr["height"], pr["width"]
        name, h, w = parse_size(size)
        tiles = len(tile_starts(h)) * len(tile_starts(w))
        scale = h * w / (ph * pw) if method == "dense" else tiles * min(512, h) * min(512, w) / (ph * pw)
        est_s = pr["stage_seconds"]["shm"] * scale
        base = {"size": name, "width": w, "height": h, "config": config, "method": method, "backend": "dense",
                "device": "cpu", "estimated_seconds": est_s}
        if method == "dense":
            per_px = pr["compute_peak_extra_bytes"] / (ph * pw) + 64.0  # + plates, output and I/O buffers
            est = pr["peak_rss_bytes"] + per_px * (h * w - ph * pw)
            if est > plan.max_rss_gb * 1e9:
                return {**base, "status": "does not fit", "estimated_peak_rss_bytes": est,
                        "note": f"estimated peak RSS {est / 1e9:.1f} GB > {plan.max_rss_gb:g} GB limit (not run; "
                                f"extrapolated from the {pw}x{ph} dense run); estimated SHM time {est_s:.0f} s"}
        if est_s > plan.max_frame_seconds:
            return {**base, "status": "too slow",
                    "note": f"estimated SHM time {est_s:.0f} s per frame > {plan.max_frame_seconds:g} s limit "
                            f"(extrapolated from the {pw}x{ph} dense run; not run)"}
        return None

    for size in plan.sizes:
        folder = plates_for(size, plan.frames, "locked")
        if folder is None:
            continue
        for config in plan.configs:
            if "sparse" in plan.methods:
                for b in sparse_backends:
                    if b == "spconv" and not cuda_ok:
                        name, h, w = parse_size(size)
                        records.append({"size": name, "width": w, "height": h, "config": config, "method": "sparse",
                                        "backend": "spconv", "device": "cuda", "status": "skipped",
                                        "note": "no CUDA GPU on this machine"})
                        continue
                    measure(size, folder, config, "sparse", b)
            for method in ("dense", "patch"):
                if method not in plan.methods or (method == "dense" and "dense" not in plan.backends):
                    continue
                skip = guard(size, config, method)
                if skip is not None:
                    records.append(skip)
                    log(f"[bench]   {size} {config} {method}: {skip['status']} ({skip['note']})")
                    continue
                measure(size, folder, config, method, "dense")
        if "guided" in plan.methods:
            measure(size, folder, "-", "guided", "cpu")
        if "tweak" in plan.methods:
            measure(size, folder, plan.engine_config, "tweak", sparse_backends[0] if sparse_backends else "torch")

    for size in plan.memory_sizes:
        folder = plates_for(size, 1, "locked")
        if folder is not None:
            measure(size, folder, plan.engine_config, "sparse", sparse_backends[0] if sparse_backends else "torch",
                    role="memory")

    if "temporal" in plan.methods:
        for motion in ("locked", "moving"):
            folder = plates_for(plan.temporal_size, plan.temporal_frames, motion)
            if folder is None:
                continue
            for temporal in (True, False):
                measure(plan.temporal_size, folder, plan.engine_config, "temporal", sparse_backends[0] if sparse_backends
                        else "torch", motion=motion, temporal=temporal)

    macs = _child("macs", {"configs": plan.configs})
    if plan.work is None:
        shutil.rmtree(work, ignore_errors=True)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    return {"machine": info, "plan": asdict(plan), "weights": _weights_status(plan.configs),
            "macs_4k_dense": macs.get("gmacs", {}), "records": records}


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
