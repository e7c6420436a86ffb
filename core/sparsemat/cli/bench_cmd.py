"""``sparsemat bench``: measure speed, memory and quality side by side, in one run.

``make bench`` runs ``sparsemat bench --docs docs/benchmarks.md --plots docs/img``, which regenerates the
benchmark page and its plots.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sparsemat.errors import SettingsError
from sparsemat.settings import DEFAULT_MODEL


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``bench`` flags."""
    import torch

    default_backends = "torch,dense,spconv" if torch.cuda.is_available() else "torch,dense"
    g = parser.add_argument_group("what to measure")
    g.add_argument("--sizes", default="2k,4k", help="plate sizes: hd, 2k, 4k, 6k, 8k or WxH (default 2k,4k)")
    g.add_argument("--config", default=f"{DEFAULT_MODEL},paper", help=f"SHM configs (default {DEFAULT_MODEL},paper)")
    g.add_argument("--backends", default=default_backends,
                   help=f"torch / spconv run the sparse engine, dense the same weights densely (default {default_backends})")
    g.add_argument("--methods", default="sparse,dense,patch,guided,temporal,tweak",
                   help="subset of sparse,dense,patch,guided,temporal,tweak (tweak: re-render time after a knob that "
                        "acts after the refiner, with and without its kept output)")
    g.add_argument("--frames", type=int, default=3, help="frames per sequence = timed runs per method (default 3)")
    g.add_argument("--memory-sizes", default="8k",
                   help="sizes run with the sparse engine (default model) only, for peak memory ('' for none; default 8k)")
    g.add_argument("--temporal-size", default="2k", help="size of the temporal on/off study (default 2k)")
    g.add_argument("--temporal-frames", type=int, default=4, help="frames of the temporal study (default 4)")
    g.add_argument("--seed", type=int, default=3, help="plate generator seed (default 3)")
    g.add_argument("--max-seconds", type=float, default=90.0,
                   help="per measurement, take no more frames once this much time is spent (default 90)")
    g.add_argument("--max-rss-gb", type=float, default=14.0,
                   help="dense runs estimated above this peak RSS are reported as 'does not fit' (default 14)")
    g.add_argument("--max-frame-seconds", type=float, default=240.0,
                   help="dense/patch runs estimated above this many SHM seconds per frame are reported, not run "
                        "(default 240)")
    g.add_argument("--no-photos", action="store_true", help="generated textures only (ignore ../shared/data)")
    g.add_argument("--work", default=None, help="keep plates and scratch files in this folder")
    o = parser.add_argument_group("output")
    o.add_argument("--json", default=None, help="write one record per (size, config, method, backend) here")
    o.add_argument("--docs", default=None, help="write the Markdown report here (docs/benchmarks.md)")
    o.add_argument("--plots", default=None, help="write bench_*.png plots into this folder")
    o.add_argument("--from-json", default=None, help="skip measuring: rebuild docs/plots from a --json file")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or reload one) and write the requested outputs."""
    from sparsemat.bench.plates import parse_size
    from sparsemat.bench.report import write_json, write_markdown, write_plots
    from sparsemat.bench.runner import BenchPlan, run_bench

    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
    else:
        plan = BenchPlan(
            sizes=_list(args.sizes), configs=_list(args.config), backends=_list(args.backends),
            methods=_list(args.methods), frames=args.frames, memory_sizes=_list(args.memory_sizes),
            temporal_size=args.temporal_size, temporal_frames=args.temporal_frames, seed=args.seed,
            max_seconds=args.max_seconds, max_frame_seconds=args.max_frame_seconds, max_rss_gb=args.max_rss_gb, photos=not args.no_photos, work=args.work,
        )
        try:
            for s in [*plan.sizes, *plan.memory_sizes, plan.temporal_size]:
                parse_size(s)
        except ValueError as exc:
            raise SettingsError("sizes", s, str(exc)) from exc
        if plan.frames < 1 or plan.temporal_frames < 2:
            raise SettingsError("frames", plan.frames, "at least 1 frame (and 2 for the temporal study)")
        plan_cmd = " ".join(["sparsemat", "bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "sparsemat bench"
        result = run_bench(plan, log=lambda m: print(m, flush=True))
        result["command"] = plan_cmd
    if args.json:
        write_json(result, args.json)
    if args.plots:
        write_plots(result, args.plots)
    if args.docs:
        write_markdown(result, args.docs, plots_dir=args.plots)
    failed = [r for r in result["records"] if r.get("status") == "failed"]
    for r in failed:
        print(f"sparsemat bench: {r['size']} {r['config']} {r['method']}/{r['backend']} failed: {r.get('note')}",
              file=sys.stderr)
    return 1 if failed else 0
