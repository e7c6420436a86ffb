"""The SparseMat Nuke node against the ``nuke`` test double: knobs, mapping, render, cancel, cache keys, farm."""

from __future__ import annotations

import json
import os
import runpy
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
from harness import REPO, NukeSession, configure_engine  # noqa: E402
from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, Settings  # noqa: E402
from sparsemat_host import cache  # noqa: E402
from sparsemat_host import knobs as K  # noqa: E402


@pytest.fixture
def session(tmp_path: Path) -> NukeSession:
    return NukeSession(tmp_path)


def _complete_frames(pattern: str) -> dict[int, bytes]:
    folder = Path(pattern).parent
    out = {}
    for p in sorted(folder.iterdir()):
        if p.name == "key.json":
            continue
        frame = int(p.name.split(".")[1])
        out[frame] = p.read_bytes()
    return out


def test_init_builds_no_ui_and_registers_callbacks(tmp_path: Path) -> None:
    s = NukeSession(tmp_path, gui=False)  # menu()/toolbar() raise without the GUI
    registries = s.nuke._callbacks
    assert any(entry[3] == "Group" for entry in registries["knobChangeds"])
    assert any(entry[3] == "Group" for entry in registries["onCreates"])
    assert any(entry[3] == "Write" for entry in registries["beforeRenders"])
    assert str(REPO / "gizmos") in s.nuke.pluginPath()
    with pytest.raises(RuntimeError):
        runpy.run_path(str(REPO / "nuke_plugin" / "menu.py"))


def test_menu_adds_toolbar_entry_with_icon(session: NukeSession) -> None:
    runpy.run_path(str(REPO / "nuke_plugin" / "menu.py"))
    item = session.nuke.toolbar("Nodes").findItem("SparseMat/SparseMat")
    assert item is not None and item.icon == "SparseMat.png"
    assert (REPO / "icons" / "SparseMat.png").is_file() and (REPO / "icons" / "SparseMat@2x.png").is_file()
    item.invoke()
    created = [n for n in session.nuke.root().nodes() if n.knob(K.MARKER_KNOB) is not None]
    assert len(created) == 1


def test_node_has_every_knob_with_its_default_and_tooltip(session: NukeSession) -> None:
    node = session.make_node()
    assert node.Class() == "Group"
    for spec in K.NODE_KNOBS:
        knob = node[spec.name]
        assert knob.Class() == spec.nuke_class, spec.name
        assert knob.tooltip() == spec.tooltip, spec.name
        if spec.kind in ("int", "double", "bool", "enum") or spec.kind in ("string", "file") and spec.default:
            assert knob.value() == spec.default, spec.name
        if spec.kind == "enum":
            assert knob.values() == list(spec.items)
    for spec in ENGINE_KNOBS + OUTPUT_KNOBS:  # every engine knob is on the node, with the engine's words
        assert node[spec.name].label() == spec.label
        assert node[spec.name].tooltip() == spec.tooltip
    assert node["threshold"].min() == 0.0 and node["threshold"].max() == 1.0
    assert not node["cache_key"].visible() and not node[K.MARKER_KNOB].visible()
    for name in ("render", "cancel", "reset_history", "purge_cache", "copy_farm_command", "check_setup"):
        assert "sparsemat_nuke.node" in node[name].command()
    for name in K.INTERNAL_NODES:
        assert node.node(name) is not None, name


def test_check_setup_shows_the_engines_report(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    """Check setup runs 'sparsemat doctor' with the node's knobs in the engine's own environment."""
    configure_engine(monkeypatch, tmp_path, fake=False)
    node = session.make_node()
    node["device"].setValue("cpu")
    node["prior"].setValue("input")
    node["check_setup"].execute()
    assert node["status"].value() == "setup checked: no problems"
    report = session.nuke.messages[-1]
    assert "ok  device: cpu (knob: cpu)" in report and "PROBLEM" not in report
    assert "ok  plate colour space: lin_rec709 = Linear Rec.709 (sRGB)" in report  # Nuke colour management
    cache_folder = tmp_path / "shots" / "sparsemat_cache"  # next to the saved script, not created by a check
    assert f"ok  output folder: {cache_folder} (will be created), " in report
    node["model"].setValue("file")
    node["model_file"].setValue(str(tmp_path / "missing.pt"))
    node["check_setup"].execute()
    missing = f"SHM checkpoint '{tmp_path / 'missing.pt'}' does not exist."
    assert node["status"].value() == f"setup problem: refiner: {missing}"
    assert f"PROBLEM  refiner: {tmp_path / 'missing.pt'}  ({missing})" in session.nuke.messages[-1]


def test_double_rejects_what_nuke_rejects(session: NukeSession) -> None:
    node = session.make_node()
    with pytest.raises(TypeError):
        node["kernel_size"].setValue("fifteen")
    with pytest.raises(ValueError):
        node["prior"].setValue("magic")
    with pytest.raises(NameError):
        node["no_such_knob"]
    with pytest.raises(RuntimeError):
        session.nuke.executeInMainThread(print)
    with pytest.raises(RuntimeError):
        session.nuke.execute(node.node(K.READ_RESULT), 1, 1)


NON_DEFAULT = {"prior": "lpn", "threshold": 0.2, "temporal": True, "kernel_size": 21, "refine_strength": 0.5, "soft_edge_guard": 0.25, "colour_bound": True,
               "cascade_levels": 3, "max_active_pixels": 1000, "keyframe_interval": 4, "model": "paper", "backend": "dense",
               "device": "cpu", "prior_size": 256, "output_mode": "premult", "overlay": "tint"}


@pytest.mark.parametrize("name", [s.name for s in ENGINE_KNOBS + OUTPUT_KNOBS])
def test_each_knob_maps_to_its_engine_setting(session: NukeSession, name: str) -> None:
    from sparsemat_nuke import node as sm_node

    node = session.make_node()
    before = sm_node.node_settings(node)
    node[name].setValue(NON_DEFAULT[name])
    settings, output = sm_node.node_settings(node)
    target = output if name in K.OUTPUT_KNOB_NAMES else settings
    assert getattr(target, name) == NON_DEFAULT[name]
    # nothing else moved
    others = {k: v for k, v in {**settings.to_dict(), **vars(output)}.items() if k != name}
    base = {k: v for k, v in {**before[0].to_dict(), **vars(before[1])}.items() if k != name}
    assert others == base


def test_file_choices_and_invalid_values(session: NukeSession, tmp_path: Path) -> None:
    from sparsemat_nuke import node as sm_node

    node = session.make_node()
    node["prior"].setValue("onnx")
    assert node["onnx_file"].visible()
    node["onnx_file"].setValue("/models/prior.onnx")
    node["model"].setValue("file")
    node["model_file"].setValue("/models/shm.pt")
    settings, _ = sm_node.node_settings(node)
    assert settings.prior == "onnx:/models/prior.onnx" and settings.model == "/models/shm.pt"
    node["kernel_size"].setValue(14)  # even: the engine refuses it, the artist is told why
    assert "kernel_size" in node["status"].value()
    assert sm_node.render(node) is None
    assert any("kernel_size" in m for m in session.nuke.messages)


def test_render_three_frames_with_the_real_engine(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=False)
    session.nuke.root()["last_frame"].setValue(3)
    node = session.make_node()
    node["model"].setValue("lite")
    node["device"].setValue("cpu")
    job = sm_node.render(node)
    assert job is not None and job.cmd[1:4] == ["-m", "sparsemat", "render"]
    outcome = session.finish(job, timeout=55)
    assert outcome.error == "" and outcome.failed == {}, outcome.summary()
    assert sorted(outcome.done) == [1, 2, 3]
    read = node.node(K.READ_RESULT)
    pattern = read["file"].value()
    assert pattern == job.state.output_pattern and node["cache_key"].value() in pattern
    import OpenImageIO as oiio

    for f in (1, 2, 3):
        spec = oiio.ImageInput.open(cache.frame_path(pattern, f)).spec()
        assert (spec.width, spec.height) == (64, 48)
        assert "A" in list(spec.channelnames)
    assert read._executed_buttons == ["reload"]
    assert "refined" in node["status"].value()
    assert session.nuke.progress_tasks[-1].progress[-1] == 100


def test_an_anamorphic_input_gives_a_matte_in_the_same_format(tmp_path: Path, monkeypatch) -> None:
    """The internal Write stores the format's pixel aspect (the double copies the plate, as Nuke writes the format);
    the engine reads it, and the cached matte the internal Read shows carries it too."""
    import OpenImageIO as oiio
    from sparsemat_nuke import node as sm_node

    session = NukeSession(tmp_path, frames=range(1, 2), pixel_aspect=2.0)
    configure_engine(monkeypatch, tmp_path, fake=False)
    node = session.make_node()
    node["model"].setValue("lite")
    node["device"].setValue("cpu")
    job = sm_node.render(node)
    assert job is not None
    outcome = session.finish(job, timeout=55)
    assert outcome.error == "" and sorted(outcome.done) == [1], outcome.summary()
    spec = oiio.ImageInput.open(cache.frame_path(node.node(K.READ_RESULT)["file"].value(), 1)).spec()
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0


def test_cancel_mid_range_leaves_only_complete_frames(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_DELAY="0.3")
    node = session.make_node()
    job = sm_node.render(node)
    assert job is not None
    deadline = time.monotonic() + 20
    while not node["status"].value().startswith("frame 1:"):
        session.nuke._process_main_thread()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    node["cancel"].execute()  # the artist presses Cancel while frame 2 is being written
    outcome = session.finish(job)
    assert outcome.cancelled
    frames = _complete_frames(job.state.output_pattern)
    assert 1 in frames and len(frames) < 6
    plate = Path(session.plate % 1).read_bytes()
    assert all(data == Path(session.plate % f).read_bytes() for f, data in frames.items()), "partial frame left"
    assert frames[1] == plate
    assert "cancelled" in node["status"].value()


def test_failed_frame_is_shown_with_the_engine_message(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_FAIL="2")
    session.nuke.root()["last_frame"].setValue(3)
    node = session.make_node()
    outcome = session.finish(sm_node.render(node))
    assert outcome.failed == {2: "frame 2: model exploded"}
    assert any("model exploded" in m for m in session.nuke.messages)
    assert sorted(_complete_frames(node.node(K.READ_RESULT)["file"].value())) == [1, 3]


def test_missing_engine_configuration_is_reported(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    monkeypatch.setenv("SPARSEMAT_CONFIG", str(tmp_path / "nowhere.json"))
    monkeypatch.delenv("SPARSEMAT_PYTHON", raising=False)
    monkeypatch.delenv("SPARSEMAT_ENGINE", raising=False)
    node = session.make_node()
    assert sm_node.render(node) is None
    assert any("install.py" in m for m in session.nuke.messages)


def test_knob_change_selects_a_new_key_and_keeps_the_old(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True)
    session.nuke.root()["last_frame"].setValue(2)
    node = session.make_node()
    session.finish(sm_node.render(node))
    key1, pattern1 = node["cache_key"].value(), node.node(K.READ_RESULT)["file"].value()
    assert sorted(_complete_frames(pattern1)) == [1, 2]

    node["threshold"].setValue(0.3)  # knobChanged → new key, the Read follows
    key2, pattern2 = node["cache_key"].value(), node.node(K.READ_RESULT)["file"].value()
    assert key2 != key1 and pattern2 != pattern1 and key2 in pattern2
    assert "not rendered yet" in node["status"].value()
    assert sorted(_complete_frames(pattern1)) == [1, 2]  # old results kept

    node["output_mode"].setValue("alpha")  # view-side knobs do not change the key
    assert node["cache_key"].value() == key2

    node["threshold"].setValue(Settings().threshold)  # toggling back is instant: same key, frames there
    assert node["cache_key"].value() == key1
    assert node.node(K.READ_RESULT)["file"].value() == pattern1
    assert sm_node.render(node) is None and "already rendered" in node["status"].value()

    upstream = node.input(0)
    upstream["file"].setValue(session.plate.replace("plate.", "other."))  # another plate: another key
    session.nuke._fire_knob_changed(node, session.nuke.Knob("showPanel"))  # as on opening the panel or Render
    assert node["cache_key"].value() not in (key1, key2)


def test_reset_history_and_purge(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True)
    session.nuke.root()["last_frame"].setValue(2)
    node = session.make_node()
    session.finish(sm_node.render(node))
    pattern = node.node(K.READ_RESULT)["file"].value()
    node["reset_history"].execute()
    assert not os.path.exists(cache.frame_path(pattern, 1))
    session.finish(sm_node.render(node))
    node["purge_cache"].execute()
    assert not (Path(pattern).parent.parent).exists()


def test_farm_command_is_built_from_the_knobs(session: NukeSession) -> None:
    from sparsemat_nuke import node as sm_node

    node = session.make_node()
    node["kernel_size"].setValue(31)
    inputs_cmd, engine_cmd = sm_node.farm_commands(node)
    assert "precompute.py" in inputs_cmd and "--inputs-only" in inputs_cmd
    assert engine_cmd.startswith("sparsemat render ") and "--kernel-size 31" in engine_cmd
    assert node["cache_key"].value() in engine_cmd and "--frames 1-6" in engine_cmd


@pytest.mark.parametrize(("management", "config", "working", "expected"), [
    ("Nuke", "nuke-default", "linear", "lin_rec709"),  # Nuke's own colour management
    ("OCIO", "nuke-default", "scene_linear", "lin_rec709"),  # nuke-default's scene_linear is linear Rec.709
    ("OCIO", "aces_1.2", "ACES - ACEScg", "ACES - ACEScg"),  # the engine resolves the ACES 1.x name
    ("OCIO", "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1", "scene_linear", "scene_linear"),  # -> ACEScg
])
def test_the_plate_colour_space_follows_the_projects_working_space(
        session: NukeSession, management: str, config: str, working: str, expected: str) -> None:
    from sparsemat_nuke import node as sm_node

    root = session.nuke.root()
    root["colorManagement"].setValue(management)
    root["OCIO_config"].setValue(config)
    root["workingSpaceLUT"].setValue(working)
    node = session.make_node()
    assert node.node(K.WRITE_SOURCE)["raw"].value()  # the cache holds the working space's values as they are
    _, engine_cmd = sm_node.farm_commands(node)
    assert f"--input-colorspace {shlex.quote(expected)}" in engine_cmd
    key = node["cache_key"].value()
    node[K.PLATE_COLORSPACE_KNOB].setValue("ACES2065-1")  # the artist knows better: the knob wins, a new key
    _, engine_cmd = sm_node.farm_commands(node)
    assert "--input-colorspace ACES2065-1" in engine_cmd and node["cache_key"].value() != key


def test_a_project_working_space_change_selects_another_cache_key(session: NukeSession) -> None:
    from sparsemat_nuke import node as sm_node

    node = session.make_node()
    linear = sm_node.node_state(node)
    session.nuke.root()["colorManagement"].setValue("OCIO")
    session.nuke.root()["OCIO_config"].setValue("aces_1.2")
    session.nuke.root()["workingSpaceLUT"].setValue("ACES - ACEScg")
    aces = sm_node.node_state(node)
    assert aces.colorspace == "ACES - ACEScg" and linear.colorspace == "lin_rec709"
    assert aces.key != linear.key and aces.source != linear.source  # the cached plate copies differ too


def _farm_session(tmp_path: Path, monkeypatch, **env: str) -> tuple[NukeSession, object, object, Path]:
    log = tmp_path / "engine.log"
    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(log), **env)
    s = NukeSession(tmp_path, gui=False)
    node = s.make_node()
    write = s.nuke.nodes.Write(file=(tmp_path / "comp" / "comp.%04d.exr").as_posix())
    write.setInput(0, node)
    return s, node, write, log


def test_batch_callback_fills_exactly_the_missing_frames(tmp_path: Path, monkeypatch) -> None:
    from sparsemat_nuke import node as sm_node

    s, node, write, log = _farm_session(tmp_path, monkeypatch)
    state = sm_node.refresh(node)
    assert state is not None
    Path(state.output_pattern).parent.mkdir(parents=True)
    for f in (1, 2, 4):  # rendered earlier (e.g. by the artist)
        Path(cache.frame_path(state.output_pattern, f)).write_bytes(b"earlier")

    for chunk in ("1-3", "4-6"):  # two farm tasks: nuke -F A-B -X Write1 -x shot.nk
        s.nuke.rawArgs = ["nuke", "-F", chunk, "-X", write.name(), "-x", "shot.nk"]
        a, b = (int(x) for x in chunk.split("-"))
        s.nuke.execute(write, a, b)

    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["rendered"] for r in runs] == [[3], [5, 6]]
    for f in (1, 2, 4):
        assert Path(cache.frame_path(state.output_pattern, f)).read_bytes() == b"earlier"
    assert s.user_writes == [(write.name(), f) for f in range(1, 7)]
    # the input copies cover each chunk's keyframe pre-roll (keyframe interval 8 → from frame 1)
    assert cache.existing_frames(state.source, range(1, 7)) == [1, 2, 3, 4, 5, 6]

    s.nuke.rawArgs = ["nuke", "-F", "1-6", "-X", write.name(), "-x", "shot.nk"]
    s.nuke.execute(write, 1, 6)  # everything cached: the engine is not started again
    assert len(log.read_text().splitlines()) == 2


def test_inputs_are_pre_rolled_only_when_the_render_reads_earlier_frames(tmp_path: Path, monkeypatch) -> None:
    """With a matte connected and Temporal reuse off (the default) each frame stands alone: only the asked frames
    are copied to the input cache. With Temporal reuse on, a chunk also needs the frames back to its keyframe."""
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(tmp_path / "engine.log"))
    s = NukeSession(tmp_path, gui=False)
    node = s.make_node(matte=True)
    write = s.nuke.nodes.Write(file=(tmp_path / "comp" / "comp.%04d.exr").as_posix())
    write.setInput(0, node)
    s.nuke.rawArgs = ["nuke", "-F", "5-6", "-X", write.name(), "-x", "shot.nk"]
    s.nuke.execute(write, 5, 6)
    state = sm_node.refresh(node)
    assert state is not None and state.matte
    assert cache.existing_frames(state.source, range(1, 9)) == [5, 6]
    assert cache.existing_frames(state.matte, range(1, 9)) == [5, 6]

    node["temporal"].setValue(True)
    state = sm_node.refresh(node)
    assert state is not None
    s.nuke.execute(write, 5, 6)
    assert cache.existing_frames(state.source, range(1, 9)) == [1, 2, 3, 4, 5, 6]  # keyframe interval 8: from 1


def test_batch_failure_stops_the_render_with_the_engine_message(tmp_path: Path, monkeypatch) -> None:
    s, node, write, log = _farm_session(tmp_path, monkeypatch, FAKE_ENGINE_FAIL="2")
    s.nuke.rawArgs = ["nuke", "-F", "1-3", "-X", write.name(), "-x", "shot.nk"]
    with pytest.raises(RuntimeError, match="model exploded"):
        s.nuke.execute(write, 1, 3)
    assert s.user_writes == []  # no comp frames written over missing mattes


def test_a_stereo_script_is_refused_not_matted_from_one_eye(tmp_path: Path, monkeypatch) -> None:
    """The internal Writes would put both views in one EXR and the engine would matte one eye for both: the node
    refuses with what to do, and a farm task fails instead of writing comp frames over that matte."""
    s, node, write, log = _farm_session(tmp_path, monkeypatch)
    s.nuke.root().knob("views").fromScript("\n".join(("left #ff0000", "right #00ff00")))
    s.nuke.rawArgs = ["nuke", "-F", "1-3", "-X", write.name(), "-x", "shot.nk"]
    with pytest.raises(RuntimeError, match=r"mattes one view, and this script has 2 \(left, right\)"):
        s.nuke.execute(write, 1, 3)
    assert s.user_writes == [] and not log.exists()  # the engine never started
    s.nuke.root().knob("views").fromScript("main #ffffff")
    s.nuke.execute(write, 1, 3)
    assert [json.loads(line)["rendered"] for line in log.read_text().splitlines()] == [[1, 2, 3]]


def test_batch_callback_finds_a_sparsemat_inside_a_group(tmp_path: Path, monkeypatch) -> None:
    """Read → Group{Input → SparseMat → Output} → Write: the farm fill walks into the group."""
    log = tmp_path / "engine.log"
    configure_engine(monkeypatch, tmp_path, fake=True, FAKE_ENGINE_LOG=str(log))
    s = NukeSession(tmp_path, gui=False)
    read = s.nuke.nodes.Read(file=s.plate)
    group = s.nuke.nodes.Group()
    with group:
        inp = s.nuke.nodes.Input()
        inner = s.nuke.createNode("SparseMat")
        inner.setInput(0, inp)
        out = s.nuke.nodes.Output()
        out.setInput(0, inner)
    group.setInput(0, read)
    write = s.nuke.nodes.Write(file=(tmp_path / "comp" / "comp.%04d.exr").as_posix())
    write.setInput(0, group)
    from sparsemat_nuke import farm

    assert farm.upstream_sparsemat_nodes(write) == [inner]


def test_cancelled_input_write_is_reported_not_raised(session: NukeSession, tmp_path: Path, monkeypatch) -> None:
    """Cancelling Nuke's progress bar while the inputs are written raises in nuke.execute: the artist gets a
    message and the status, never a traceback from the Render button."""
    from sparsemat_nuke import node as sm_node

    configure_engine(monkeypatch, tmp_path, fake=True)
    node = session.make_node()

    def cancelled(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Cancelled")

    monkeypatch.setattr(session.nuke, "execute", cancelled)
    assert sm_node.render(node) is None
    assert node["status"].value().startswith("Writing the inputs for the engine stopped: Cancelled")
    assert any("Cancelled" in m for m in session.nuke.messages)
