"""``sparsemat eval``: hand-made mattes give hand-computed metrics; sequences add dtSSD; JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from sparsemat.cli.main import main as cli_main
from sparsemat.evaluation.validation import format_markdown, summarise


def _write(path: Path, a: np.ndarray) -> None:
    spec = oiio.ImageSpec(a.shape[1], a.shape[0], 1, oiio.FLOAT)
    spec.channelnames = ("A",)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.ascontiguousarray(a[..., None], dtype=np.float32))
    out.close()


def _pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt = np.zeros((10, 10), np.float32)
    gt[:, 5:] = 1.0
    pred = gt.copy()
    pred[0:4, 4] = 0.5  # 4 px off by 0.5 inside the trimap's unknown band
    pred[0:6, 0] = 0.25  # 6 px off by 0.25 outside it
    tri = np.where(gt > 0.5, 1.0, 0.0).astype(np.float32)
    tri[:, 4:6] = 0.5  # unknown: columns 4-5, 20 px
    return pred, gt, tri


def test_eval_image_hand_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred, gt, tri = _pair()
    for name, a in (("p.exr", pred), ("g.exr", gt), ("t.exr", tri)):
        _write(tmp_path / name, a)
    rc = cli_main(["eval", str(tmp_path / "p.exr"), str(tmp_path / "g.exr"), "--trimap", str(tmp_path / "t.exr"), "--json"])
    assert rc == 0
    m = json.loads(capsys.readouterr().out)["mean"]
    assert m["mad"] == pytest.approx((4 * 0.5 + 6 * 0.25) / 100 * 1e3)  # 35
    assert m["mad_unk"] == pytest.approx(4 * 0.5 / 20 * 1e3)  # 100
    assert m["mse"] == pytest.approx((4 * 0.25 + 6 * 0.0625) / 100 * 1e3)
    assert m["sad"] == pytest.approx((4 * 0.5 + 6 * 0.25) / 1e3)
    assert m["sad_unk"] == pytest.approx(2.0 / 1e3)
    assert m["grad"] > m["grad_unk"] > 0 and m["conn"] >= m["conn_unk"] >= 0
    assert "dtssd" not in m
    # the table form
    assert cli_main(["eval", str(tmp_path / "p.exr"), str(tmp_path / "g.exr"), "--trimap", str(tmp_path / "t.exr")]) == 0
    table = capsys.readouterr().out
    assert "mad" in table and "100.0000" in table and "35.0000" in table
    # identical mattes: every metric is 0
    assert cli_main(["eval", str(tmp_path / "g.exr"), str(tmp_path / "g.exr"), "--json"]) == 0
    assert all(v == 0 for v in json.loads(capsys.readouterr().out)["mean"].values())


def test_eval_sequence_dtssd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pred, gt, _ = _pair()
    for f in range(1, 4):
        _write(tmp_path / f"g.{f:04d}.exr", gt)
        _write(tmp_path / f"p.{f:04d}.exr", pred if f == 2 else gt)  # frame 2 flickers
    rc = cli_main(["eval", str(tmp_path / "p.####.exr"), str(tmp_path / "g.####.exr"), "--json", "--metrics", "mad"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["frames"] == [1, 2, 3]
    d = pred - gt
    step = np.sqrt((d**2).sum() / d.size) * 1e2  # frames 2 and 3 each differ by ±d from their predecessor
    assert res["mean"]["dtssd"] == pytest.approx((0 + step + step) / 3, rel=1e-5)
    assert res["mean"]["mad"] == pytest.approx(35 / 3)
    (tmp_path / "p.0003.exr").unlink()
    assert cli_main(["eval", str(tmp_path / "p.####.exr"), str(tmp_path / "g.####.exr")]) == 1
    assert "3" in capsys.readouterr().err


def test_eval_errors(tmp_path: Path) -> None:
    pred, gt, _ = _pair()
    _write(tmp_path / "p.exr", pred)
    _write(tmp_path / "g.exr", gt[:, :8])
    assert cli_main(["eval", str(tmp_path / "p.exr"), str(tmp_path / "g.exr")]) == 1  # size mismatch
    assert cli_main(["eval", str(tmp_path / "p.exr")]) == 2  # GT missing
    assert cli_main(["eval", str(tmp_path / "p.exr"), str(tmp_path / "p.exr"), "--metrics", "foo"]) == 2


def test_validation_verdict_logic() -> None:
    rows = []
    for kind, shm_mad in (("down4", 60.0), ("blur", 80.0)):
        for method, mad, grad in (("prior", 100.0, 10.0), ("guided", 90.0, 9.0), ("shm", shm_mad, 5.0)):
            rows.append({"kind": kind, "image": 0, "method": method, "mad_unk": mad, "grad_unk": grad})
    summary, verdict = summarise(rows, ("down4", "blur"))
    assert verdict["down4"]["pass"] and not verdict["blur"]["pass"]  # blur: only -20 % MAD
    assert verdict["blur"]["mad_reduction"] == pytest.approx(0.2)
    res = {"summary": summary, "verdict": verdict, "accepted": False,
           "setup": {"images": 1, "size": [1440, 2560], "seed": 1, "model": "x"}}
    md = format_markdown(res)
    assert "| down4 | 100.00 | 90.00 | 60.00 | -40 % |" in md and "**no**" in md


def test_validation_runs_the_engine_at_the_given_refine_strength() -> None:
    """``--refine-strength 0.5`` on the yardstick == the refiner with half its residual correction."""
    from sparsemat.builders import build_shm
    from sparsemat.evaluation.validation import validate

    halved = build_shm("lite")
    with torch.no_grad():
        halved.head[-1].weight.mul_(0.5)
    kw: dict[str, Any] = {"images": 1, "size": (288, 512), "kinds": ("down4",), "metrics": ("mad", "grad"),
                          "photos": [], "soft_edge_guard": 0.0}  # generated textures: no photo folder needed;
    # the guard off: this measures refine_strength alone (the guard's own tests are in test_soft_edge_guard.py)
    full = validate(build_shm("lite"), **kw)
    tempered = validate(build_shm("lite"), refine_strength=0.5, **kw)
    reference = validate(halved, **kw)
    assert tempered["setup"]["refine_strength"] == 0.5 and full["setup"]["refine_strength"] == 1.0
    assert "at refine_strength 0.5" in format_markdown(tempered) and "refine_strength" not in format_markdown(full)

    def shm_row(res: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in res["rows"] if r["method"] == "shm")

    assert shm_row(tempered)["mad_unk"] == pytest.approx(shm_row(reference)["mad_unk"], abs=1e-3)
    assert shm_row(tempered)["grad_unk"] == pytest.approx(shm_row(reference)["grad_unk"], abs=1e-3)
    assert abs(shm_row(full)["mad_unk"] - shm_row(tempered)["mad_unk"]) > 0.1


def test_rgba_trimap_reads_its_grey_levels_and_empty_unknown_is_an_error(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An RGBA trimap (grey levels in RGB, opaque A) is read from R, not A; a trimap without grey is refused."""
    pred, gt, tri = _pair()
    for name, a in (("p.exr", pred), ("g.exr", gt)):
        _write(tmp_path / name, a)
    for name, t in (("rgba.exr", tri), ("flat.exr", (tri >= 0.5).astype(np.float32))):
        spec = oiio.ImageSpec(10, 10, 4, oiio.FLOAT)
        spec.channelnames = ("R", "G", "B", "A")
        out = oiio.ImageOutput.create(str(tmp_path / name))
        assert out.open(str(tmp_path / name), spec)
        assert out.write_image(np.dstack([t, t, t, np.ones_like(t)]).astype(np.float32))
        out.close()
    args = ["eval", str(tmp_path / "p.exr"), str(tmp_path / "g.exr"), "--json", "--trimap"]
    assert cli_main([*args, str(tmp_path / "rgba.exr")]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["mad_unk"] == pytest.approx(100.0)
    assert cli_main([*args, str(tmp_path / "flat.exr")]) == 1
    assert "flat.exr has no unknown pixels" in capsys.readouterr().err


def test_validation_seed_draws_a_different_set_and_kinds_parse() -> None:
    """``--seed`` changes plates and priors (a selection set); the yardstick's own seed is the default."""
    from sparsemat.errors import SettingsError
    from sparsemat.evaluation.validation import (
        ACCEPT_KINDS,
        VALIDATION_SEED,
        _parse_kinds,
        degraded_matte,
        validation_plates,
    )

    yard = validation_plates(1, (72, 128), [])[0]
    same = validation_plates(1, (72, 128), [], VALIDATION_SEED)[0]
    other = validation_plates(1, (72, 128), [], 314159)[0]
    assert np.array_equal(yard.alpha, same.alpha) and not np.array_equal(yard.alpha, other.alpha)
    m0 = degraded_matte(yard.alpha, 0, "noise")
    assert np.array_equal(m0, degraded_matte(yard.alpha, 0, "noise", seed=VALIDATION_SEED))
    assert not np.array_equal(m0, degraded_matte(yard.alpha, 0, "noise", seed=314159))
    assert _parse_kinds("target") == ACCEPT_KINDS
    assert _parse_kinds("down4, holes,down4") == ("down4", "holes")
    with pytest.raises(SettingsError, match="'down5' is not a degradation"):
        _parse_kinds("down5")


def test_validation_subset_is_never_accepted_and_selection_seed_is_labelled() -> None:
    from sparsemat.builders import build_shm
    from sparsemat.evaluation.validation import validate

    res = validate(build_shm("lite"), images=1, size=(72, 128), kinds=("down4",), metrics=("mad", "grad"),
                   photos=[], seed=5)
    assert res["setup"]["seed"] == 5 and res["setup"]["kinds"] == ["down4"]
    assert res["accepted"] is False  # seven target kinds were not run
    assert "Seed 5 is a selection set, not the yardstick (seed 271828)." in format_markdown(res)


@pytest.mark.parametrize(("knob", "value", "kind"), [
    ("soft_edge_guard", 1.0, "blur"),  # at τ = 1 only edges steeper than 1 per prior pixel keep full refinement
    ("cascade_levels", 2, "down4"),  # a half-resolution pass first changes the refined matte
    ("kernel_size", 31, "erode"),  # a wider band reaches the choked prior's missing edge
])
def test_validation_passes_engine_knobs_to_the_engine(knob: str, value: float, kind: str) -> None:
    from sparsemat.builders import build_shm
    from sparsemat.evaluation.validation import validate

    kw: dict[str, Any] = {"images": 1, "size": (144, 256), "kinds": (kind,), "metrics": ("mad", "grad"),
                          "photos": []}
    plain = validate(build_shm("lite"), **kw)
    changed = validate(build_shm("lite"), **{knob: value}, **kw)
    assert changed["setup"][knob] == value and f"with {knob} {value:g}" in format_markdown(changed)
    assert f"with {knob} {value:g}" not in format_markdown(plain)
    shm = [next(r for r in res["rows"] if r["method"] == "shm")["mad_unk"] for res in (plain, changed)]
    assert abs(shm[0] - shm[1]) > 1e-3


def test_validation_passes_the_colour_bound_and_labels_it() -> None:
    from sparsemat.builders import build_shm
    from sparsemat.evaluation.validation import validate

    kw: dict[str, Any] = {"images": 1, "size": (144, 256), "kinds": ("dilate",), "metrics": ("mad", "grad"),
                          "photos": []}
    free = validate(build_shm("lite_cs4"), colour_bound=False, **kw)
    bound = validate(build_shm("lite_cs4"), colour_bound=True, **kw)
    assert (free["setup"]["colour_bound"], bound["setup"]["colour_bound"]) == (False, True)
    assert "with the colour bound" in format_markdown(bound) and "colour bound" not in format_markdown(free)
    shm = [next(r for r in res["rows"] if r["method"] == "shm")["mad_unk"] for res in (free, bound)]
    assert abs(shm[0] - shm[1]) > 1e-3


def test_validation_budget_does_not_depend_on_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The yardstick refines every plate in one pass whatever the machine's free memory; an explicit budget is
    passed to the engine (frames over it go through the cascade) and named in the report."""
    import sparsemat.engine.session as session_mod
    from sparsemat.builders import build_shm
    from sparsemat.errors import BudgetWarning
    from sparsemat.evaluation.validation import validate

    kw: dict[str, Any] = {"images": 1, "size": (144, 256), "kinds": ("down4",), "metrics": ("mad", "grad"),
                          "photos": []}
    plain = validate(build_shm("lite"), **kw)
    monkeypatch.setattr(session_mod, "default_budget", lambda *a, **k: 500)  # as if memory were nearly full
    starved = validate(build_shm("lite"), **kw)
    with pytest.warns(BudgetWarning, match="exceed the budget of 2,000"):
        capped = validate(build_shm("lite"), max_active_pixels=2000, **kw)
    assert plain["setup"]["max_active_pixels"] == starved["setup"]["max_active_pixels"] == 144 * 256
    assert [r["mad_unk"] for r in starved["rows"]] == [r["mad_unk"] for r in plain["rows"]]
    assert capped["setup"]["max_active_pixels"] == 2000 and "with max_active_pixels 2000" in format_markdown(capped)
    assert "max_active_pixels" not in format_markdown(plain)
    shm = [next(r for r in res["rows"] if r["method"] == "shm")["mad_unk"] for res in (plain, capped)]
    assert abs(shm[0] - shm[1]) > 1e-3  # over the budget: the cascade ran


def test_validation_runs_the_engine_defaults_and_labels_the_guard() -> None:
    """The yardstick measures what an artist gets: the soft-edge guard at its knob default unless told otherwise."""
    from sparsemat.builders import build_shm
    from sparsemat.evaluation.validation import validate
    from sparsemat.settings import Settings

    kw: dict[str, Any] = {"images": 1, "size": (144, 256), "kinds": ("blur",), "metrics": ("mad", "grad"),
                          "photos": []}
    default = validate(build_shm("lite"), **kw)
    assert default["setup"]["soft_edge_guard"] == Settings().soft_edge_guard == 0.1
    assert "with soft_edge_guard 0.1;" in format_markdown(default)
    off = validate(build_shm("lite"), soft_edge_guard=0.0, **kw)
    assert off["setup"]["soft_edge_guard"] == 0.0 and "with the soft-edge guard off;" in format_markdown(off)


def test_module_entry_point_runs_the_guard_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m sparsemat.evaluation.validation`` leaves the guard to the knob default, as ``sparsemat eval``
    does (it used to pass 0, turning the guard off)."""
    from sparsemat.evaluation import validation

    seen: dict[str, Any] = {}
    monkeypatch.setattr(validation, "main_from_args", lambda args: seen.update(vars(args)) or 0)
    assert validation.main(["--images", "1"]) == 0
    assert seen["soft_edge_guard"] is None
    validation.main(["--soft-edge-guard", "0"])
    assert seen["soft_edge_guard"] == 0.0


def test_eval_validation_flags_reach_the_engine_settings(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``sparsemat eval --validation`` hands its engine flags to the yardstick; unset flags leave the defaults."""
    from sparsemat.evaluation import validation

    seen: list[dict[str, Any]] = []

    def fake_validate(model: Any, images: int, size: tuple[int, int], **kw: Any) -> dict[str, Any]:
        seen.append({"model": model, "images": images, "size": size, **kw})
        return {"rows": [], "summary": [], "verdict": {}, "accepted": False,
                "setup": {"images": images, "size": list(size), "seed": kw["seed"], "kinds": [], "model": model,
                          "refine_strength": 1.0, "soft_edge_guard": 0.1, "cascade_levels": 1,
                          "max_active_pixels": 0, "kernel_size": kw["kernel_size"] or 15}}

    monkeypatch.setattr(validation, "validate", fake_validate)
    monkeypatch.setattr(validation, "format_markdown", lambda result: "table")
    assert cli_main(["eval", "--validation", "--kernel-size", "31", "--cascade-levels", "2",
                     "--max-active-pixels", "5000", "--size", "640x360", "--images", "2", "--colour-bound", "on"]) == 1
    assert cli_main(["eval", "--validation", "--images", "1"]) == 1
    capsys.readouterr()
    flags, plain = seen
    assert (flags["kernel_size"], flags["cascade_levels"], flags["max_active_pixels"]) == (31, 2, 5000)
    assert (flags["size"], flags["images"]) == ((360, 640), 2)
    assert (plain["kernel_size"], plain["cascade_levels"], plain["max_active_pixels"]) == (None, 1, 0)
    assert (flags["colour_bound"], plain["colour_bound"]) == (True, None)
