"""The SparseMat Natron PyPlug against the NatronEngine test double."""

from __future__ import annotations

import ast
import json
import runpy
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
from harness import REPO, configure_engine, write_plates  # noqa: E402
from sparsemat_host import cache  # noqa: E402
from sparsemat_host import knobs as K  # noqa: E402

NATRON_DIR = REPO / "nuke_plugin" / "natron"
NON_DEFAULT = {"prior": "lpn", "threshold": 0.2, "temporal": True, "kernel_size": 21, "refine_strength": 0.5, "soft_edge_guard": 0.25, "colour_bound": True,
               "cascade_levels": 3, "max_active_pixels": 1000, "keyframe_interval": 4, "model": "paper", "backend": "dense",
               "device": "cpu", "prior_size": 256, "output_mode": "premult", "overlay": "tint"}


class Natron:
    def __init__(self, tmp_path: Path, background: bool = False) -> None:
        import NatronEngine

        self.engine = NatronEngine
        self.app = NatronEngine._reset(background)
        runpy.run_path(str(NATRON_DIR / "init.py"))
        NatronEngine.natron.appendToNatronPath(str(NATRON_DIR))
        self.plate = write_plates(tmp_path / "plates", range(1, 7))
        self.app.getProjectParam("projectPath").set((tmp_path / "project").as_posix())
        self.app.getProjectParam("frameRange").setValue(1, 0)
        self.app.getProjectParam("frameRange").setValue(3, 1)
        NatronEngine._render_hook = self._render

    def _render(self, writer: Any, frame: int) -> None:
        path = Path(cache.frame_path(writer.getParam("filename").get(), frame))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.plate % frame, path)

    def make(self) -> Any:
        read = self.app.createNode("fr.inria.openfx.ReadOIIO")
        read.getParam("filename").set(self.plate)
        node = self.app.createNode("fr.sparsemat.SparseMat")
        node.connectInput(0, read)
        return node


@pytest.fixture
def natron(tmp_path: Path) -> Natron:
    return Natron(tmp_path)


def test_pyplug_declares_itself_and_never_imports_natrongui() -> None:
    text = (NATRON_DIR / "SparseMat.py").read_text()
    assert "# Natron PyPlug" in text.splitlines()
    tree = ast.parse(text)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"getLabel", "getGrouping", "getPluginID", "createInstance", "getIconPath"} <= functions
    for path in NATRON_DIR.glob("*.py"):
        assert "NatronGui" not in path.read_text(), path.name


def test_instance_has_every_param_with_its_default(natron: Natron) -> None:
    node = natron.make()
    assert node._user_params_refreshed
    for knob in K.NODE_KNOBS:
        if knob.kind == "tab" or knob.kind == "text" and knob.name != "status":
            continue
        param = node.getParam(knob.name)
        assert param is not None, knob.name
        assert param.getHelp() == knob.tooltip
        if knob.kind == "enum":
            assert [param.getOption(i) for i in range(param.getNumOptions())] == list(knob.items)
            assert param.getOption(param.get()) == knob.default
        elif knob.kind in ("int", "double", "bool"):
            assert param.get() == knob.default, knob.name
    for name in K.INTERNAL_NODES:
        assert node.getNode(name) is not None, name
    assert node.onParamChanged.get() == "SparseMat.onParamChanged"  # the PyPlug's name as prefix (groups.rst)
    assert node.onInputChanged.get() == "SparseMat.onInputChanged"
    with pytest.raises(TypeError):
        node.getParam("kernel_size").set("wide")


@pytest.mark.parametrize("name", list(NON_DEFAULT))
def test_each_param_maps_to_its_engine_setting(natron: Natron, name: str) -> None:
    import sparsemat_natron

    node = natron.make()
    node.getParam(name).set(NON_DEFAULT[name])
    settings, output = K.settings_from_values(sparsemat_natron.knob_values(node))
    target = output if name in K.OUTPUT_KNOB_NAMES else settings
    assert getattr(target, name) == NON_DEFAULT[name]


def _rendered(natron: Natron, tmp_path: Path, monkeypatch: Any) -> tuple[Any, Any, str]:
    """A SparseMat node after Render (fake engine): ``(node, its cache Reader, the Reader's pattern)``."""
    configure_engine(monkeypatch, tmp_path, fake=True)
    node = natron.make()
    node.getParam("render").trigger()
    read = node.getNode(K.READ_RESULT)
    return node, read, read.getParam("filename").get()


def test_render_button_and_new_key_on_param_change(natron: Natron, tmp_path: Path, monkeypatch) -> None:
    node, read, pattern = _rendered(natron, tmp_path, monkeypatch)
    assert node.getParam("cache_key").get() in pattern
    assert cache.existing_frames(pattern, range(1, 4)) == [1, 2, 3]
    assert "refined" in node.getParam("status").get()
    switch = node.getNode(K.CACHE_SWITCH).getParam("which")
    assert switch._evaluate(2) == 0 and switch._evaluate(5) == 1  # frame 5 shows the slate

    node.getParam("kernel_size").set(31)
    assert read.getParam("filename").get() != pattern
    assert cache.existing_frames(pattern, range(1, 4)) == [1, 2, 3]  # old key kept
    node.getParam("kernel_size").set(15)
    assert read.getParam("filename").get() == pattern


def test_check_setup_prints_the_engines_report(natron: Natron, tmp_path: Path, monkeypatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    configure_engine(monkeypatch, tmp_path, fake=False)
    node = natron.make()
    node.getParam("device").set("cpu")
    node.getParam("prior").set("input")
    node.getParam("check_setup").trigger()
    assert node.getParam("status").get() == "setup checked: no problems"
    out = capsys.readouterr().out
    assert "ok  device: cpu (knob: cpu)" in out
    assert "ok  plate colour space: lin_rec709 = Linear Rec.709 (sRGB)" in out  # auto: Natron's linear Rec.709
    node.getParam(K.PLATE_COLORSPACE_KNOB).set("show_linear")
    node.getParam("check_setup").trigger()
    assert node.getParam("status").get().startswith(
        "setup problem: plate colour space: Knob 'Plate colour space (--input-colorspace)' cannot be 'show_linear'")
    node.getParam(K.PLATE_COLORSPACE_KNOB).set("auto")
    node.getParam("model").set("file")
    node.getParam("model_file").set(str(tmp_path / "missing.pt"))
    node.getParam("check_setup").trigger()
    missing = f"SHM checkpoint '{tmp_path / 'missing.pt'}' does not exist."
    assert node.getParam("status").get() == f"setup problem: refiner: {missing}"
    assert f"PROBLEM  refiner: {tmp_path / 'missing.pt'}  ({missing})" in capsys.readouterr().out


def test_natronrenderer_onload_script_fills_missing_frames(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "engine.log"
    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(log))
    n = Natron(tmp_path, background=True)
    node = n.make()
    import sparsemat_natron

    state = sparsemat_natron.refresh(node, n.app)
    Path(state["output_pattern"]).parent.mkdir(parents=True, exist_ok=True)
    Path(cache.frame_path(state["output_pattern"], 2)).write_bytes(b"earlier")
    monkeypatch.setattr(sys, "argv", ["NatronRenderer", "-w", "Write1", "1-4", "shot.ntp"])
    runpy.run_path(str(NATRON_DIR / "sparsemat_fill.py"), init_globals={"app": n.app})
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["rendered"] for r in runs] == [[1, 3, 4]]

    monkeypatch.setenv("FAKE_ENGINE_FAIL", "6")
    monkeypatch.setenv("SPARSEMAT_FRAMES", "5-6")
    with pytest.raises(RuntimeError, match="model exploded"):
        runpy.run_path(str(NATRON_DIR / "sparsemat_fill.py"), init_globals={"app": n.app})


def test_reconnected_source_shows_its_own_cache_not_the_old_one(natron: Natron, tmp_path: Path, monkeypatch) -> None:
    """onInputChanged (registered with the PyPlug's prefix) re-keys the node when Source changes."""
    node, read, rendered = _rendered(natron, tmp_path, monkeypatch)
    other = natron.app.createNode("fr.inria.openfx.ReadOIIO")
    other.getParam("filename").set(write_plates(tmp_path / "other", range(1, 4)))
    node.connectInput(0, other)
    assert read.getParam("filename").get() != rendered
    assert node.getNode(K.CACHE_SWITCH).getParam("which")._evaluate(2) == 1  # not rendered for this plate: slate


def test_farm_fill_finds_sparsemat_inside_a_group(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "engine.log"
    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(log))
    n = Natron(tmp_path, background=True)
    outer = n.app.createNode("fr.inria.built-in.Group")
    read = n.app.createNode("fr.inria.openfx.ReadOIIO", group=outer)
    read.getParam("filename").set(n.plate)
    node = n.app.createNode("fr.sparsemat.SparseMat", group=outer)
    node.connectInput(0, read)
    import sparsemat_natron

    assert sparsemat_natron.sparsemat_nodes(n.app) == [node]
    monkeypatch.setattr(sys, "argv", ["NatronRenderer", "-w", "Write1", "1-2", "shot.ntp"])
    runpy.run_path(str(NATRON_DIR / "sparsemat_fill.py"), init_globals={"app": n.app})
    assert [json.loads(line)["rendered"] for line in log.read_text().splitlines()] == [[1, 2]]


def test_callbacks_resolve_only_through_the_pyplug_module(natron: Natron) -> None:
    """The double evaluates callback strings as Natron does: an extension-module prefix is not a known name."""
    node = natron.make()
    with pytest.raises(NameError, match="SparseMatExt"):
        node.onParamChanged.set("SparseMatExt.onParamChanged")  # the next param change calls it: this one
        node.getParam("kernel_size").set(21)


def test_output_mode_and_overlay_reach_the_rendered_output(natron: Natron, tmp_path: Path, monkeypatch) -> None:
    """Natron's inner graph reads the cache back as is, so the engine writes the output the params ask for, and a
    change of output mode or overlay is a new cache key (the slate, until Render)."""
    log = tmp_path / "engine.log"
    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(log))
    node = natron.make()
    read = node.getNode(K.READ_RESULT)
    node.getParam("output_mode").set("alpha")
    node.getParam("overlay").set("tint")
    node.getParam("render").trigger()
    argv = json.loads(log.read_text().splitlines()[-1])["argv"]
    assert argv[argv.index("--output-mode") + 1] == "alpha" and argv[argv.index("--overlay") + 1] == "tint"
    shown = read.getParam("filename").get()
    node.getParam("overlay").set("off")
    assert read.getParam("filename").get() != shown
    assert node.getNode(K.CACHE_SWITCH).getParam("which")._evaluate(2) == 1
    node.getParam("overlay").set("tint")
    assert read.getParam("filename").get() == shown
