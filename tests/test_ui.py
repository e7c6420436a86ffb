"""``sparsemat ui`` (PySide6, offscreen): knobs from the settings, live re-render, errors, range render + cancel.

Plain Qt (no pytest-qt): a QApplication on the ``offscreen`` platform and :func:`wait_until`, which
spins the event loop. Plates are tiny (128×96) and the prior is the plate's own alpha (``input``),
so no prior network runs.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
from harness import REPO, write_plates  # noqa: E402
from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, Settings  # noqa: E402
from sparsemat_ui import viewer as V  # noqa: E402
from sparsemat_ui.app import MainWindow  # noqa: E402
from sparsemat_ui.range_render import RangeRender, render_argv  # noqa: E402


@pytest.fixture(scope="module")
def qapp() -> QApplication:
    app = QApplication.instance() or QApplication(["sparsemat-test"])
    assert isinstance(app, QApplication)
    return app


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_plates(tmp_path_factory.mktemp("ui_plates"), range(1, 5), width=128, height=96)


def wait_until(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    """Spin the Qt event loop until ``pred()`` (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not pred():
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        time.sleep(0.002)


@pytest.fixture
def window(qapp: QApplication, plates: str) -> Iterator[MainWindow]:
    win = MainWindow(plates, matte=plates, settings=Settings(prior="input"), view="overlay", debounce_ms=30)
    shown: list[int] = []
    errors: list[str] = []
    win.frameShown.connect(shown.append)
    win.errorShown.connect(errors.append)
    win.shown, win.errors = shown, errors  # type: ignore[attr-defined]
    win.resize(900, 600)
    win.show()
    wait_until(lambda: bool(shown) or bool(errors))
    yield win
    win.close()
    win.deleteLater()
    QApplication.processEvents()


def _viewer_pixels(win: MainWindow, path: Path) -> np.ndarray:
    """Screenshot the whole window to ``path`` and return the viewer's top-left image area (1:1, no offset)."""
    win.screenshot(str(path))
    shot = V.qimage_to_array(QImage(str(path)))
    origin = win.view.mapTo(win, QPoint(0, 0))
    h, w = win.result.alpha.shape
    return shot[origin.y(): origin.y() + h, origin.x(): origin.x() + w].astype(np.int16)


# ---------------------------------------------------------------------------------------------
def test_window_builds_with_every_knob_from_the_settings(window: MainWindow) -> None:
    specs = {s.name: s for s in ENGINE_KNOBS + OUTPUT_KNOBS}
    assert set(window.knobs.widgets) == set(specs)
    values = window.knobs.values()
    for name, spec in specs.items():
        assert window.knobs.widgets[name].toolTip() == spec.tooltip
        assert values[name] == ("input" if name == "prior" else spec.default), name
    assert window.knobs.settings() == Settings(prior="input")
    assert window.shown == [1] and not window.errors
    stats = window.stats_label.text()
    assert "active" in stats and "cascade 1 (1 level)" in stats and "shm" in stats and "frame 1" in stats


def test_knob_change_rerenders_and_the_overlay_pixels_change(window: MainWindow, tmp_path: Path) -> None:
    window.view.zoom, window.view.offset = 1.0, QPointF(0, 0)
    before_result = window.result
    before = _viewer_pixels(window, tmp_path / "before.png")
    renders = window.controller.worker.renders

    # three quick edits inside the debounce: only the last one is rendered
    for k in (7, 9, 5):
        window.knobs.widgets["kernel_size"].setValue(k)
    wait_until(lambda: len(window.shown) == 2)
    assert window.controller.worker.renders == renders + 1
    assert window.controller.worker._session.settings.kernel_size == 5
    after_result = window.result
    after = _viewer_pixels(window, tmp_path / "after.png")

    layers_b = V.overlay_layers(before_result.spatial, before_result.temporal, before_result.active)
    layers_a = V.overlay_layers(after_result.spatial, after_result.temporal, after_result.active)
    overlay_changed = np.zeros_like(after_result.active)
    for name in layers_b:
        overlay_changed |= layers_b[name] != layers_a[name]
    pixel_changed = np.abs(after - before).max(axis=2) > 8
    assert overlay_changed.sum() > 200  # a narrower band: many pixels lose their tint
    assert pixel_changed[overlay_changed].mean() > 0.95
    untouched = ~overlay_changed & ~layers_a["active"] & ~layers_a["reused"]
    assert pixel_changed[untouched].mean() < 0.01  # plain plate where the overlay did not change


def test_a_knob_after_the_refiner_reuses_its_output(window: MainWindow) -> None:
    before = window.result
    window.knobs.widgets["refine_strength"].setValue(0.5)
    wait_until(lambda: len(window.shown) == 2)
    after = window.result
    assert after.stats.shm_reused == 1 and after.stats.shm_gmacs == 0.0
    assert "refiner output reused" in window.stats_label.text()
    assert not np.array_equal(after.alpha, before.alpha)
    window.knobs.widgets["kernel_size"].setValue(9)  # the band changes: the refiner runs
    wait_until(lambda: len(window.shown) == 3)
    assert window.result.stats.shm_reused == 0 and window.result.stats.shm_gmacs > 0
    assert "refiner output reused" not in window.stats_label.text()


def test_newer_request_supersedes_an_older_one(window: MainWindow) -> None:
    ctl = window.controller
    s = window.knobs.settings().replace(temporal=False)  # no pre-roll: one engine pass per request
    ctl.request(2, s.replace(kernel_size=11), immediate=True)
    last = ctl.request(3, s.replace(kernel_size=21), immediate=True)
    wait_until(lambda: len(window.shown) == 2)
    QApplication.processEvents()
    time.sleep(0.2)
    QApplication.processEvents()
    assert window.shown == [1, 3] and ctl.generation == last
    assert window.result.stats.frame == 3


def test_failing_frame_shows_the_engine_message(window: MainWindow, plates: str) -> None:
    bad = Path(plates.replace("%04d", "0004"))
    original = bad.read_bytes()
    try:
        bad.write_bytes(b"not an exr at all")
        window.source.clear()
        window.set_frame(4)
        wait_until(lambda: bool(window.errors))
        text = window.error_label.text()
        assert "0004" in text and text.startswith("Frame 4") and window.error_label.isVisible()
        assert window.errors[-1] in text
    finally:
        bad.write_bytes(original)
    window.source.clear()
    window.set_frame(2)
    wait_until(lambda: window.shown[-1] == 2)
    assert not window.error_label.isVisible()


def test_missing_matte_error_names_the_knob(qapp: QApplication, plates: str) -> None:
    win = MainWindow(plates, settings=Settings(prior="input"), debounce_ms=10)
    errors: list[str] = []
    win.errorShown.connect(errors.append)
    try:
        wait_until(lambda: bool(errors))
        assert "no matte was given" in win.error_label.text()
    finally:
        win.close()


def test_range_cancel_stops_and_leaves_only_complete_frames(qapp: QApplication, plates: str, tmp_path: Path) -> None:
    from sparsemat.io import is_complete, read_metadata

    out = (tmp_path / "out" / "matte.%04d.exr").as_posix()
    job = RangeRender(render_argv(plates, out, Settings(prior="input"), frames="1-4", matte=plates), total=4)
    job.progress.connect(lambda _rec: job.cancel(), Qt.ConnectionType.DirectConnection)  # cancel during frame 1
    job.start()
    assert job.wait(60_000)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["matte.0001.exr"]  # frame 1 finished, nothing after it, no temp files
    assert is_complete(out.replace("%04d", "0001"))
    assert job.status == 1 and job.records[0]["status"] == "done"
    assert read_metadata(out.replace("%04d", "0001"))  # written by the CLI path, with its metadata


def test_window_range_render_writes_every_frame(window: MainWindow, tmp_path: Path) -> None:
    window.output_edit.setText((tmp_path / "r" / "m.####.exr").as_posix())
    window.range_edit.setText("1-3")
    job = window.start_range_render()
    assert job is not None
    wait_until(lambda: job.status is not None and window.render_button.isEnabled(), timeout=30)
    assert job.status == 0 and sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "m.0001.exr", "m.0002.exr", "m.0003.exr"]
    assert window.range_progress.value() == 3 and "3 frame(s) written" in window.range_status.text()


def test_screenshot_command_writes_png(qapp: QApplication, plates: str, tmp_path: Path) -> None:
    from sparsemat.cli.main import main

    png = tmp_path / "ui.png"
    rc = main(["-q", "ui", plates, "--prior", plates, "--prior-model", "input", "--view", "overlay",
               "--screenshot", str(png)])
    assert rc == 0 and png.is_file()
    assert QImage(str(png)).width() > 300


def test_ui_command_without_pyside6_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from sparsemat.cli import ui_cmd

    monkeypatch.setitem(sys.modules, "PySide6.QtWidgets", None)
    assert ui_cmd.run(types.SimpleNamespace()) == 2  # type: ignore[arg-type]
    assert "pip install" in capsys.readouterr().err
    assert ui_cmd.VIEW_MODES == V.VIEW_MODES


# ---------------------------------------------------------------------------------------------
def test_compose_modes_wipe_and_qimage_round_trip() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((8, 10, 3)).astype(np.float32)
    alpha = np.zeros((8, 10), np.float32)
    alpha[:, 5:] = 1.0
    res = types.SimpleNamespace(spatial=np.zeros((8, 10), bool), temporal=None, active=np.zeros((8, 10), bool))
    res.spatial[2:4] = True
    res.active[2] = True
    assert np.array_equal(V.compose("plate", rgb, alpha), rgb)
    assert np.array_equal(V.compose("alpha", rgb, alpha)[..., 1], alpha)
    rgba = V.compose("rgba", rgb, alpha)
    assert np.allclose(rgba[:, 5:], rgb[:, 5:]) and np.allclose(rgba[:, :5], V.checkerboard(8, 10)[:, :5])
    over = V.compose("overlay", rgb, alpha, res)
    assert np.array_equal(over[5:], rgb[5:])  # untouched outside the maps
    assert (over[2, :, 0] > over[3, :, 0]).all() or not np.allclose(over[2], over[3])  # active ≠ reused tint
    w = V.wipe(np.zeros_like(rgb), np.ones_like(rgb), 0.3)
    assert w[:, :3].max() == 0 and w[:, 3:].min() == 1
    u8 = V.to_uint8(rgb)
    assert np.array_equal(V.qimage_to_array(V.to_qimage(u8)), u8)


def test_viewer_shows_anamorphic_pixels_desqueezed(qapp: QApplication) -> None:
    view = V.ImageView()
    view.resize(400, 200)
    view.set_image(V.to_qimage(np.zeros((50, 100, 3), np.uint8)))
    view.set_pixel_aspect(2.0)  # refits: the 100 x 50 image shows as 200 x 50
    assert view.zoom == pytest.approx(2.0)  # min(400 / 200, 200 / 50)
    assert (view.offset.x(), view.offset.y()) == pytest.approx((0.0, 50.0))
    pt = view.to_image(QPointF(view.offset.x() + 200.0, view.offset.y() + 50.0))
    assert (pt.x(), pt.y()) == pytest.approx((50.0, 25.0))  # 4 screen px per image px across, 2 down
    view.set_zoom(4.0, QPointF(100.0, 100.0))  # zooming keeps the image point under the cursor
    after = view.to_image(QPointF(100.0, 100.0))
    before = (100.0 / 4.0, 25.0)
    assert (after.x(), after.y()) == pytest.approx(before)


def test_window_takes_the_pixel_aspect_override_to_the_view_and_the_range_render(qapp: QApplication,
                                                                                  plates: str) -> None:
    win = MainWindow(plates, matte=plates, settings=Settings(prior="input"), debounce_ms=10, pixel_aspect=2.0)
    shown: list[int] = []
    win.frameShown.connect(shown.append)
    win.show()
    try:
        wait_until(lambda: bool(shown))
        assert win.view.pixel_aspect == 2.0
        assert win.source.source.pixel_aspect == 2.0
    finally:
        win.close()
        win.deleteLater()
        QApplication.processEvents()
    argv = render_argv(plates, "o.####.exr", Settings(), pixel_aspect=2.0)
    assert argv[argv.index("--pixel-aspect") + 1] == "2.0"
    assert "--pixel-aspect" not in render_argv(plates, "o.####.exr", Settings())


def test_exposure_goes_through_the_ocio_path() -> None:
    from sparsemat.io import DISPLAY_SRGB, convert

    src = np.full((4, 4, 3), 0.18, np.float32)
    plate = types.SimpleNamespace(rgb=convert(src, "lin_rec709", DISPLAY_SRGB), source_rgb=src, colorspace="lin_rec709")
    assert V.display_plate(plate) is plate.rgb or np.array_equal(V.display_plate(plate), plate.rgb)
    up = V.display_plate(plate, exposure=1.0)
    assert np.allclose(up, convert(src * 2, "lin_rec709", DISPLAY_SRGB), atol=1e-6)
    assert (V.display_plate(plate, gamma=2.0) > plate.rgb).all()


# ---------------------------------------------------------------------------------------------
def test_nuke_panel_follows_the_selected_node(qapp: QApplication, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    from harness import NukeSession

    calls: list[tuple[Any, ...]] = []
    panels = types.SimpleNamespace(registerWidgetAsPanel=lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "nukescripts", types.SimpleNamespace(panels=panels))
    monkeypatch.setitem(sys.modules, "nukescripts.panels", panels)
    session = NukeSession(tmp_path)
    runpy.run_path(str(REPO / "nuke_plugin" / "menu.py"))
    assert calls and calls[0][0] == "sparsemat_ui.nuke_panel.SparseMatPanel"

    from sparsemat_ui.nuke_panel import SparseMatPanel

    other = session.make_node()
    node = session.make_node()
    node["selected"].setValue(True)
    panel = SparseMatPanel()
    try:
        assert panel.node is node and panel.knobs.isEnabled()
        assert panel.knobs.values()["threshold"] == pytest.approx(node["threshold"].value())
        node["kernel_size"].setValue(31)  # edited in the Properties bin → the panel follows
        assert panel.knobs.values()["kernel_size"] == 31
        panel.knobs.widgets["cascade_levels"].setValue(2)  # edited in the panel → the node's knob
        assert node["cascade_levels"].value() == 2 and other["cascade_levels"].value() == 1
        panel.knobs.widgets["prior"].setCurrentText("onnx:/models/mine.onnx")
        assert node["prior"].value() == "onnx" and node["onnx_file"].value() == "/models/mine.onnx"
        node["selected"].setValue(False)
        other["selected"].setValue(True)
        panel.poll_selection()
        assert panel.node is other and panel.knobs.values()["kernel_size"] == 15
    finally:
        panel.close_panel()


def test_nuke_panel_edit_rekeys_the_node_without_programmatic_knobchanged(
        qapp: QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before Nuke 17.1 knobChanged does not fire for programmatic changes: a dock-panel edit must still select
    the new cache key itself. A closed panel's widget must not be called again (one dispatcher, weakly held)."""
    import nuke
    from harness import NukeSession
    from sparsemat_ui.nuke_panel import SparseMatPanel

    session = NukeSession(tmp_path)
    node = session.make_node()
    node["selected"].setValue(True)
    first = SparseMatPanel()
    second = SparseMatPanel()
    assert sum(1 for entry in nuke._callbacks.get("knobChangeds", []) if "dispatch" in repr(entry[0])) == 1
    key = node["cache_key"].value()
    monkeypatch.setattr(nuke, "_fire_knob_changed", lambda *a: None)  # Nuke <= 16: programmatic edits are silent
    second.knobs.widgets["threshold"].setValue(0.4)
    assert node["threshold"].value() == pytest.approx(0.4) and node["cache_key"].value() != key
    monkeypatch.undo()
    first.deleteLater()
    qapp.processEvents()
    from PySide6.QtCore import QCoreApplication, QEvent
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    node["kernel_size"].setValue(31)  # must not reach the deleted panel (RuntimeError) and still reach the live one
    assert second.knobs.values()["kernel_size"] == 31
    second.close_panel()
