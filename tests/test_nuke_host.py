"""Host-free logic shared by the Nuke and Natron adapters: frames, cache keys, engine command, progress."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
import harness  # noqa: E402, F401  (import paths)
from sparsemat.settings import ENGINE_KNOBS, OutputSettings, Settings  # noqa: E402
from sparsemat_host import cache, sidecar  # noqa: E402
from sparsemat_host import knobs as K  # noqa: E402


def test_frame_patterns_and_ranges() -> None:
    assert cache.frame_path("/a/b.%04d.exr", 7) == "/a/b.0007.exr"
    assert cache.frame_path("/a/b.####.exr", 12) == "/a/b.0012.exr"
    assert cache.parse_frame_ranges("1-3, 7 10-14x2") == [1, 2, 3, 7, 10, 12, 14]
    assert cache.spans([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert cache.farm_frames_from_args(["nuke", "-F", "11-20", "-X", "W", "-x", "s.nk"]) == list(range(11, 21))
    assert cache.farm_frames_from_args(["nuke", "-F", "1-2", "-F", "5", "-x", "s.nk"]) == [1, 2, 5]
    assert cache.farm_frames_from_args(["nuke", "-x", "s.nk"]) is None
    with pytest.raises(ValueError):
        cache.parse_frame_ranges("1-x")


def test_preroll_matches_the_engine_keyframes() -> None:
    assert cache.preroll_start(13, 8, 1) == 8
    assert cache.preroll_start(5, 8, 3) == 3
    assert cache.preroll_start(50, 0, 10) == 10


def test_missing_frames(tmp_path: Path) -> None:
    pattern = (tmp_path / "o.%04d.exr").as_posix()
    for f in (1, 3):
        Path(pattern % f).write_bytes(b"x")
    assert cache.missing_frames(pattern, range(1, 5)) == [2, 4]
    assert cache.existing_frames(pattern, range(1, 5)) == [1, 3]


def test_frames_to_render_and_input_spans(tmp_path: Path) -> None:
    out = str(tmp_path / "out" / "m.####.exr")
    src = str(tmp_path / "src" / "s.####.exr")
    for f in (3, 4):
        Path(cache.frame_path(out, f)).parent.mkdir(parents=True, exist_ok=True)
        Path(cache.frame_path(out, f)).write_bytes(b"x")
    for f in (9, 10):
        Path(cache.frame_path(src, f)).parent.mkdir(parents=True, exist_ok=True)
        Path(cache.frame_path(src, f)).write_bytes(b"x")
    assert cache.frames_to_render(out, 1, 6) == ([1, 2, 3, 4, 5, 6], [1, 2, 5, 6])
    assert cache.frames_to_render(out, 1, 6, [4, 3, 12, 4]) == ([3, 4, 12], [12])
    # frames 12-13 with keyframes every 8: pre-roll from 8; 9-10 already cached for the source only
    assert cache.input_spans([12, 13], 1, 8, [src, out]) == [[(8, 8), (11, 13)], [(8, 13)]]
    assert cache.input_spans([2], 5, 8, [src]) == [[(2, 2)]]  # never before the first asked frame
    assert cache.input_spans([12, 13], 1, 8, [src, out], preroll=False) == [[(12, 13)], [(12, 13)]]


def test_settings_say_when_a_render_reads_earlier_frames() -> None:
    assert not Settings().reads_earlier_frames(has_matte=True)  # matte in, temporal reuse off: frames stand alone
    assert Settings(temporal=True).reads_earlier_frames(has_matte=True)
    assert Settings().reads_earlier_frames(has_matte=False)  # auto may pick RVM, which keeps recurrent state
    assert Settings(prior="rvm").reads_earlier_frames(has_matte=True)
    assert Settings(prior="onnx:/m/matte.onnx").reads_earlier_frames(has_matte=True)
    assert not Settings(prior="lpn").reads_earlier_frames(has_matte=False)


def test_cache_key_follows_settings_model_and_inputs(tmp_path: Path) -> None:
    base = cache.cache_key(Settings(), "in1", "0.1.0")
    assert base == cache.cache_key(Settings(), "in1", "0.1.0")
    assert base != cache.cache_key(Settings(threshold=0.1), "in1", "0.1.0")
    assert base != cache.cache_key(Settings(), "in2", "0.1.0")
    assert base != cache.cache_key(Settings(), "in1", "0.2.0")
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"a")
    k1 = cache.cache_key(Settings(model=str(ckpt)), "in1", "0.1.0")
    ckpt.write_bytes(b"ab")  # new weights under the same name
    assert k1 != cache.cache_key(Settings(model=str(ckpt)), "in1", "0.1.0")


def test_engine_flags_round_trip_through_the_cli_parser() -> None:
    from sparsemat.cli.knobs import add_engine_flags, settings_from_args

    settings = Settings(prior="lpn", threshold=0.125, temporal=True, kernel_size=31, refine_strength=0.25,
                        colour_bound=True, cascade_levels=2, max_active_pixels=5000, keyframe_interval=0, model="paper", backend="dense", device="cpu",
                        prior_size=300)
    parser = argparse.ArgumentParser()
    add_engine_flags(parser)
    parsed = settings_from_args(parser.parse_args(sidecar.settings_flags(settings)))
    assert parsed == settings
    bools = sum(k.kind == "bool" for k in ENGINE_KNOBS)
    assert bools == 2 and len(sidecar.settings_flags(settings)) == 2 * len(ENGINE_KNOBS) - bools  # bool flags: no value


def test_render_command_follows_the_contract() -> None:
    cmd = sidecar.render_command(["py", "-m", "sparsemat"], "/c/in.%04d.exr", "/c/out.%04d.exr", 3, 9,
                                 Settings(), OutputSettings(), matte="/c/m.%04d.exr")
    assert cmd[:9] == ["py", "-m", "sparsemat", "render", "/c/in.%04d.exr", "-o", "/c/out.%04d.exr", "--frames", "3-9"]
    assert cmd[9:11] == ["--progress", "json"]
    assert "--resume" in cmd and "--overlay" in cmd and cmd[cmd.index("--output-mode") + 1] == "rgba"
    assert cmd[cmd.index(sidecar.MATTE_FLAG) + 1] == "/c/m.%04d.exr"


def test_progress_lines() -> None:
    ev = sidecar.parse_progress_line('{"frame": 4, "status": "done", "active_share": 0.031, "seconds": 0.5, '
                                     '"cascade_scales": [0.5, 1.0]}')
    assert ev is not None and ev.frame == 4
    assert sidecar.status_text(ev) == "frame 4: 3.1% refined, 0.50 s, 2 cascade levels"
    assert sidecar.parse_progress_line("loading model…") is None
    assert sidecar.parse_progress_line('{"no": 1}') is None


def test_engine_configuration_layers(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"python": sys.executable}))
    env = {"SPARSEMAT_CONFIG": str(config)}
    assert sidecar.engine_command(env) == [sys.executable, "-m", "sparsemat"]
    assert sidecar.engine_command({**env, "SPARSEMAT_PYTHON": "/x/python"}) == ["/x/python", "-m", "sparsemat"]
    with pytest.raises(sidecar.EngineNotFoundError, match="install.py"):
        sidecar.engine_command({"SPARSEMAT_CONFIG": str(tmp_path / "none.json")})


def test_the_engine_runs_without_the_hosts_python_variables(tmp_path: Path) -> None:
    """Nuke adds to PYTHONHOME: passed on, it kills the engine's own Python before it starts. The engine
    gets the host's environment without PYTHONHOME and PYTHONPATH, and everything else (OCIO, licences)."""
    report = ("import json, os; print(json.dumps({'frame': 1, 'status': 'done', 'message': '|'.join("
              "os.environ.get(k, '-') for k in ('PYTHONHOME', 'PYTHONPATH', 'OCIO'))}))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONHOME": str(tmp_path / "nuke" / "python"),
           "PYTHONPATH": str(tmp_path / "nuke" / "site"), "OCIO": "/show/config.ocio"}
    outcome = sidecar.run_render([sys.executable, "-c", report], env=env)
    assert outcome.ok, outcome.summary()
    assert outcome.last is not None and outcome.last.message == "-|-|/show/config.ocio"
    assert sidecar.engine_environment(env) == {"PATH": "/usr/bin:/bin", "OCIO": "/show/config.ocio"}


def test_partial_files_are_removed(tmp_path: Path) -> None:
    pattern = (tmp_path / "sparsemat.%04d.exr").as_posix()
    Path(pattern % 1).write_bytes(b"ok")
    (tmp_path / ".sparsemat.0002.exr.tmp-1.exr").write_bytes(b"half")
    (tmp_path / "key.json").write_text("{}")
    removed = cache.remove_partial_files(pattern)
    assert [Path(p).name for p in removed] == [".sparsemat.0002.exr.tmp-1.exr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json", "sparsemat.0001.exr"]


def test_knob_table_covers_every_engine_knob() -> None:
    for spec in ENGINE_KNOBS:
        node_knob = K.KNOBS_BY_NAME[spec.name]
        assert (node_knob.label, node_knob.tooltip, node_knob.default) == (spec.label, spec.tooltip, spec.default)
    assert K.settings_from_values(K.default_values()) == (Settings(), OutputSettings())


def test_host_free_modules_import_only_settings_and_stdlib() -> None:
    import ast

    allowed_third_party = {"sparsemat.settings", "sparsemat_host"}
    for path in (harness.REPO / "nuke_plugin" / "sparsemat_host").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name in allowed_third_party or top == "__future__", (
                    f"{path.name} imports {name}")
