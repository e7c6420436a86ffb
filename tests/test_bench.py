"""Smoke test of ``sparsemat bench`` at a tiny size: record schema and finite values, no timing assertions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from sparsemat.bench import runner
from sparsemat.bench.methods import ramp, tile_starts
from sparsemat.bench.plates import parse_size
from sparsemat.bench.report import write_json, write_markdown, write_plots

REQUIRED = ("size", "width", "height", "config", "method", "backend", "device", "stage_seconds", "total_seconds",
            "peak_rss_bytes", "active_share", "shm_gmacs", "mad_unknown", "grad_unknown")


def test_sizes_and_tiles() -> None:
    assert parse_size("4k") == ("4k", 2160, 3840)
    assert parse_size("256x144") == ("256x144", 144, 256)
    with pytest.raises(ValueError):
        parse_size("huge")
    starts = tile_starts(2160)
    assert starts[0] == 0 and starts[-1] == 2160 - 512
    assert all(b - a <= 512 - 64 for a, b in zip(starts, starts[1:], strict=False))
    r = ramp(512, lo_edge=False, hi_edge=True)
    assert r[0] < 0.05 and r[-1] == 1.0


def test_bench_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # children run in-process here (speed); the real command starts one process per measurement
    def in_process(task: str, spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if task == "macs":
            return {"status": "ok", "gmacs": {"lite": 1.0}}
        return json.loads(json.dumps(runner.dispatch(task, spec)))

    monkeypatch.setattr(runner, "_child", in_process)
    plan = runner.BenchPlan(sizes=["256x144"], configs=["lite"], backends=["torch", "dense"], frames=2,
                            memory_sizes=[], temporal_size="256x144", temporal_frames=2, photos=False,
                            work=str(tmp_path / "work"), probe_size="256x144", max_seconds=600)
    result = runner.run_bench(plan, log=lambda m: None)
    recs = result["records"]
    methods = {r["method"] for r in recs}
    assert methods == {"sparse", "dense", "patch", "guided", "temporal", "tweak"}
    for r in recs:
        assert r["status"] == "ok", r
        for key in REQUIRED:
            assert key in r, key
        assert (r["width"], r["height"]) == (256, 144)
        assert r["total_seconds"] > 0 and r["peak_rss_bytes"] > 0
        for v in (r["active_share"], r["shm_gmacs"], r["mad_unknown"], r["grad_unknown"], *r["stage_seconds"].values()):
            assert math.isfinite(v) and v >= 0
        if r["method"] in ("sparse", "dense", "patch"):
            assert r["shm_gmacs"] > 0 and r["active_share"] > 0
    assert sum(1 for r in recs if r["method"] == "temporal") == 4
    assert all("dtssd" in r for r in recs if r["method"] == "temporal")
    (tweak,) = [r for r in recs if r["method"] == "tweak"]
    for f in tweak["per_frame"]:  # every knob after the refiner reused its output and changed nothing else
        assert f["tweak_reused_passes"] == len(f["tweaks"]) == len(f["tweak_reuse_seconds"]) == 3
        assert f["tweak_max_abs_diff"] == 0.0 and len(f["tweak_full_seconds"]) == 3

    write_json(result, str(tmp_path / "b.json"))
    assert json.loads((tmp_path / "b.json").read_text())["records"]
    plots = write_plots(result, str(tmp_path / "img"))
    assert all(Path(p).stat().st_size > 0 for p in plots)
    write_markdown(result, str(tmp_path / "benchmarks.md"), plots_dir=str(tmp_path / "img"))
    text = (tmp_path / "benchmarks.md").read_text()
    assert "| 256x144 (256×144) | lite | sparse | torch |" in text and "bench_time.png" in text
    assert "## Knob tweaks in the viewer" in text
    assert f"| 256x144 (256×144) | {plan.engine_config} | 2 × 3 |" in text
    assert "| 6 of 6 | 0 |" in text
