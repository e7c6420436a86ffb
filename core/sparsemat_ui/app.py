"""The standalone window of ``sparsemat ui``: viewer, knobs, frame slider, stats, range render.

Layout: the viewer (with its view mode, wipe, exposure/gamma and zoom controls) in the middle,
the frame slider and play button under it, the per-frame stats line and the error line always
visible at the bottom, and a dock on the right with the knob panel (generated from the settings)
and the range render (output pattern, frames, Render/Cancel, progress).

Every knob change re-renders the current frame on the worker thread (debounced; a newer change
supersedes an older one), so the window never freezes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from sparsemat.settings import ENGINE_KNOBS, OutputSettings, Settings

from sparsemat_ui import viewer as V
from sparsemat_ui.knob_panel import KnobPanel
from sparsemat_ui.range_render import RangeRender, render_argv
from sparsemat_ui.worker import DEBOUNCE_MS, PlateCache, RenderController

_ENGINE_NAMES = frozenset(s.name for s in ENGINE_KNOBS)


def format_stats(stats: Any, seconds: float | None = None) -> str:
    """One line of per-frame stats: active share, time per stage, cascade levels, history, prior."""
    st = stats.stage_seconds
    stages = " ".join(f"{k} {st[k]:.2f}s" for k in ("prior", "maps", "shm", "blend") if k in st)
    scales = "/".join(f"{s:g}" for s in stats.cascade_scales) or "none (prior only)"
    history = "keyframe" if stats.keyframe else ("temporal reuse" if stats.temporal_reused else "history")
    reused = [what for what, flag in (("prior", getattr(stats, "prior_reused", False)),
                                      ("refiner", stats.shm_reused)) if flag]
    if reused:
        stages += f" ({' and '.join(reused)} output reused)"
    text = (f"frame {stats.frame} | active {stats.active_share:.2%} ({stats.active_pixels:,} px) | "
            f"cascade {scales} ({len(stats.cascade_scales)} level{'s' if len(stats.cascade_scales) != 1 else ''}) | "
            f"{stages} | engine {stats.total_seconds:.2f}s")
    if seconds is not None:
        text += f", request {seconds:.2f}s"
    text += f" | {history} | prior: {stats.prior_name}"
    if stats.warnings:
        text += " | ⚠ " + " ".join(stats.warnings)
    return text


def default_output(plate: str) -> str:
    """A default output pattern for a plate: ``<folder>/sparsemat/<plate name as EXR>``."""
    path = Path(plate)
    stem = path.name
    for ext in (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return (path.parent / "sparsemat" / f"{stem}.exr").as_posix()


class MainWindow(QMainWindow):
    """The ``sparsemat ui`` window.

    Args:
        plate: plate image or sequence pattern (``plate.%04d.exr`` / ``plate.####.exr``).
        matte: external matte pattern (the ``input`` prior), or None.
        matte_channel: channel of ``matte`` to use.
        frames: frames to show (e.g. ``1001-1100``); default every frame on disk.
        settings: initial engine knobs (default: the engine's defaults).
        output: initial output knobs.
        view: initial view mode (:data:`sparsemat_ui.viewer.VIEW_MODES`).
        colorspace: OCIO colour space of the plate (default: by file type, as the CLI).
        refiner, prior: injected engine modules (tests).
        debounce_ms: knob-change debounce.

    Signals:
        frameShown(int): a refined frame is on screen (tests, ``--screenshot``).
        errorShown(str): an error is on screen.
    """

    frameShown = Signal(int)
    errorShown = Signal(str)

    def __init__(self, plate: str, matte: str | None = None, matte_channel: str | None = None,
                 frames: str | None = None, settings: Settings | None = None, output: OutputSettings | None = None,
                 view: str = "rgba", colorspace: str | None = None, refiner: Any = None, prior: Any = None,
                 debounce_ms: int = DEBOUNCE_MS, output_pattern: str | None = None,
                 pixel_aspect: float | None = None, eye: str | None = None, layer: str | None = None) -> None:
        super().__init__()
        self.t_open = time.perf_counter()
        from sparsemat.cli.render import FileSource
        from sparsemat.io import Sequence, parse_frame_range

        self.plate_pattern, self.matte, self.matte_channel, self.colorspace = plate, matte, matte_channel, colorspace
        self.pixel_aspect, self.eye, self.layer = pixel_aspect, eye, layer
        seq = Sequence(plate)
        on_disk = [] if seq.is_single_file else seq.frames()
        self.frames: list[int] = parse_frame_range(frames) if frames else (on_disk or [0])
        if seq.is_single_file:
            self.frames = self.frames[:1]
        self.frames_text = frames or (f"{self.frames[0]}-{self.frames[-1]}" if not seq.is_single_file else "")
        self.source = PlateCache(FileSource(plate, on_disk or list(self.frames), matte, matte_channel, colorspace,
                                                 pixel_aspect, eye, layer))
        self.source.prefetch(self.frames[0])  # read the first plate while the worker imports torch
        self.controller = RenderController(self.source, refiner, prior, debounce_ms)
        self.controller.resultReady.connect(self._on_result)
        self.controller.errorRaised.connect(self._on_error)
        self.controller.busyChanged.connect(self._on_busy)

        self.result: Any = None
        self.plate: Any = None
        self.shown_frame: int | None = None
        self.first_shown_seconds: float | None = None
        self.first_request_seconds: float | None = None
        self.first_display_seconds: float | None = None
        self.range_job: RangeRender | None = None
        self._display_cache: tuple[Any, float, float, np.ndarray] | None = None
        self._playing = False

        self.setWindowTitle(f"SparseMat — {os.path.basename(plate)}")
        self._build(view, output_pattern or default_output(plate))
        self.knobs.set_values((settings or Settings()).to_dict(), emit=False)
        self.knobs.set_values(vars(output or OutputSettings()), emit=False)
        self.knobs.changed.connect(self._on_knob)
        self.request_render(immediate=True)

    # ------------------------------------------------------------------ building
    def _build(self, view: str, output_pattern: str) -> None:
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(4, 4, 4, 4)

        bar = QHBoxLayout()
        self.view_combo = QComboBox()
        for mode in V.VIEW_MODES:
            self.view_combo.addItem(V.VIEW_LABELS[mode], mode)
        self.view_combo.setCurrentIndex(V.VIEW_MODES.index(view))
        self.view_combo.setToolTip("What the viewer shows. Sparsity overlay: red = refined this frame, "
                                   "blue = edge band reused from the previous frame, yellow = changed outside the band.")
        self.view_combo.currentIndexChanged.connect(self.refresh_view)
        self.wipe_box = QCheckBox("A/B wipe")
        self.wipe_box.setToolTip("Prior alpha on the left of the line, refined alpha on the right; drag the line.")
        self.wipe_box.toggled.connect(self._on_wipe)
        self.exposure = QDoubleSpinBox()
        self.exposure.setRange(-10.0, 10.0)
        self.exposure.setSingleStep(0.5)
        self.exposure.setPrefix("exposure ")
        self.exposure.setSuffix(" stops")
        self.exposure.setToolTip("Viewer exposure in scene-linear (through the plate's OCIO colour space).")
        self.gamma = QDoubleSpinBox()
        self.gamma.setRange(0.1, 4.0)
        self.gamma.setSingleStep(0.1)
        self.gamma.setValue(1.0)
        self.gamma.setPrefix("gamma ")
        self.gamma.setToolTip("Viewer gamma after the display transform.")
        self.exposure.valueChanged.connect(self.refresh_view)
        self.gamma.valueChanged.connect(self.refresh_view)
        fit, one = QPushButton("Fit"), QPushButton("1:1")
        fit.setToolTip("Fit the image in the viewer (F).")
        one.setToolTip("One image pixel per screen pixel (1 or H); wheel zooms, drag pans.")
        self.view = V.ImageView()
        fit.clicked.connect(self.view.fit)
        one.clicked.connect(lambda: self.view.one_to_one())
        self.view.wipeMoved.connect(lambda _pos: self.refresh_view())
        for w in (self.view_combo, self.wipe_box, self.exposure, self.gamma, fit, one):
            bar.addWidget(w)
        bar.addStretch(1)
        col.addLayout(bar)
        col.addWidget(self.view, 1)

        row = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play through the frames at render speed (each frame is refined, then shown).")
        self.play_button.toggled.connect(self._on_play)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(self.frames[0], self.frames[-1])
        self.slider.setTracking(True)
        self.frame_spin = QSpinBox()
        self.frame_spin.setRange(self.frames[0], self.frames[-1])
        self.slider.valueChanged.connect(self.frame_spin.setValue)
        self.frame_spin.valueChanged.connect(self.slider.setValue)
        self.frame_spin.valueChanged.connect(lambda _f: self.request_render())
        enabled = len(self.frames) > 1
        for w in (self.play_button, self.slider, self.frame_spin):
            w.setEnabled(enabled)
            row.addWidget(w, 1 if w is self.slider else 0)
        col.addLayout(row)

        self.stats_label = QLabel("rendering…")
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #ff6b6b; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        col.addWidget(self.stats_label)
        col.addWidget(self.error_label)
        self.setCentralWidget(central)

        side = QWidget()
        side_col = QVBoxLayout(side)
        self.knobs = KnobPanel()
        side_col.addWidget(self.knobs)
        side_col.addWidget(self._build_range(output_pattern))
        side_col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        dock = QDockWidget("Knobs", self)
        dock.setObjectName("sparsemat_knobs")
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.resize(1400, 860)

    def _build_range(self, output_pattern: str) -> QWidget:
        box = QGroupBox("Render range")
        form = QFormLayout(box)
        self.output_edit = QLineEdit(output_pattern)
        self.output_edit.setToolTip("Output image or sequence pattern (%04d or ####), as sparsemat render -o.")
        self.range_edit = QLineEdit(self.frames_text)
        self.range_edit.setToolTip("Frames to render, e.g. 1001-1100, 1-10x2, 1,5,9-12.")
        self.render_button = QPushButton("Render")
        self.render_button.setToolTip("Render the range with these knobs through the same code as sparsemat render.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the frame being computed; frames already written are complete.")
        self.cancel_button.setEnabled(False)
        self.render_button.clicked.connect(self.start_range_render)
        self.cancel_button.clicked.connect(self.cancel_range_render)
        self.range_progress = QProgressBar()
        self.range_progress.setRange(0, 1)
        self.range_progress.setValue(0)
        self.range_status = QLabel("")
        self.range_status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.render_button)
        buttons.addWidget(self.cancel_button)
        form.addRow("Output", self.output_edit)
        form.addRow("Frames", self.range_edit)
        form.addRow(buttons)
        form.addRow(self.range_progress)
        form.addRow(self.range_status)
        return box

    # ------------------------------------------------------------------ rendering the current frame
    @property
    def frame(self) -> int:
        """The frame on the slider."""
        return int(self.frame_spin.value()) if len(self.frames) > 1 else self.frames[0]

    def set_frame(self, frame: int) -> None:
        """Move the slider (re-renders)."""
        self.frame_spin.setValue(frame)

    def request_render(self, immediate: bool = False) -> int | None:
        """Re-render the current frame with the panel's knobs (debounced unless ``immediate``)."""
        from sparsemat.errors import SettingsError

        try:
            settings = self.knobs.settings()
        except SettingsError as exc:
            self._on_error(self.frame, str(exc))
            return None
        return self.controller.request(self.frame, settings, immediate=immediate)

    def _on_knob(self, name: str) -> None:
        if name in _ENGINE_NAMES:
            self.request_render()

    def _on_busy(self, busy: bool) -> None:
        self.statusBar().showMessage("rendering…" if busy else "ready")

    def _on_result(self, frame: int, result: Any, plate: Any, seconds: float) -> None:
        t_arrived = time.perf_counter()
        self.result, self.plate, self.shown_frame = result, plate, frame
        self.view.set_pixel_aspect(self.pixel_aspect or plate.window.pixel_aspect)
        self.error_label.hide()
        self.error_label.setText("")
        self.stats_label.setText(format_stats(result.stats, seconds))
        self.refresh_view()
        if self.first_shown_seconds is None:
            QApplication.processEvents()
            self.first_shown_seconds = time.perf_counter() - self.t_open
            self.first_request_seconds = seconds
            self.first_display_seconds = time.perf_counter() - t_arrived
        self.frameShown.emit(frame)
        if self._playing:
            QTimer.singleShot(0, self._advance)

    def _on_error(self, frame: int, message: str) -> None:
        self.error_label.setText(f"Frame {frame}: {message}" if not message.startswith(f"Frame {frame}") else message)
        self.error_label.show()
        self.errorShown.emit(message)
        if self._playing:
            self.play_button.setChecked(False)

    # ------------------------------------------------------------------ the view
    def _plate_rgb(self) -> np.ndarray:
        e, g = float(self.exposure.value()), float(self.gamma.value())
        c = self._display_cache
        if c is not None and c[0] is self.plate and c[1] == e and c[2] == g:
            return c[3]
        rgb = V.display_plate(self.plate, e, g)
        self._display_cache = (self.plate, e, g, rgb)
        return rgb

    def composed(self) -> np.ndarray:
        """The current view as ``[H, W, 3]`` uint8 sRGB (before zoom/pan)."""
        mode = self.view_combo.currentData()
        rgb = self._plate_rgb()
        r = self.result
        if self.wipe_box.isChecked():
            wmode = mode if mode in ("alpha", "rgba") else "alpha"
            left = V.compose(wmode, rgb, r.prior, r)
            right = V.compose(wmode, rgb, r.alpha, r)
            return V.to_uint8(V.wipe(left, right, self.view.wipe_position))
        alpha = r.prior if mode == "prior" else r.alpha
        return V.to_uint8(V.compose(mode, rgb, alpha, r))

    def refresh_view(self, *_: Any) -> None:
        """Recomposite the view from the last result (mode, wipe, exposure/gamma changed)."""
        if self.result is None or self.plate is None:
            return
        self.view.set_image(V.to_qimage(self.composed()))

    def _on_wipe(self, on: bool) -> None:
        self.view.wipe_on = on
        self.refresh_view()

    # ------------------------------------------------------------------ play
    def _on_play(self, on: bool) -> None:
        self._playing = on
        self.play_button.setText("Stop" if on else "Play")
        if on:
            self._advance()

    def _advance(self) -> None:
        if not self._playing:
            return
        i = self.frames.index(self.frame) if self.frame in self.frames else -1
        self.set_frame(self.frames[(i + 1) % len(self.frames)])

    # ------------------------------------------------------------------ range render
    def start_range_render(self) -> RangeRender | None:
        """Render the range to the output pattern on a thread (same code path as ``sparsemat render``)."""
        from sparsemat.errors import SettingsError

        if self.range_job is not None and self.range_job.isRunning():
            return self.range_job
        try:
            settings, out = self.knobs.settings(), self.knobs.output_settings()
        except SettingsError as exc:
            self.range_status.setText(str(exc))
            return None
        frames = self.range_edit.text().strip() or None
        argv = render_argv(self.plate_pattern, self.output_edit.text().strip(), settings, out, frames,
                           self.matte, self.matte_channel, self.colorspace, self.pixel_aspect, self.eye,
                           self.layer)
        try:
            from sparsemat.io import parse_frame_range

            total = len(parse_frame_range(frames)) if frames else len(self.frames)
        except ValueError as exc:
            self.range_status.setText(str(exc))
            return None
        job = RangeRender(argv, total)
        job.progress.connect(self._on_range_progress)
        job.finished_with.connect(self._on_range_done)
        self.range_progress.setRange(0, max(total, 1))
        self.range_progress.setValue(0)
        self.range_status.setText("rendering…")
        self.render_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.range_job = job
        job.start()
        return job

    def cancel_range_render(self) -> None:
        """Stop the range render after the frame being computed."""
        if self.range_job is not None:
            self.range_job.cancel()
            self.range_status.setText("cancelling after this frame…")
            self.cancel_button.setEnabled(False)

    def _on_range_progress(self, record: dict) -> None:
        self.range_progress.setValue(self.range_progress.value() + 1)
        if record.get("status") == "failed":
            self.range_status.setText(f"frame {record.get('frame')} failed: {record.get('message')}")
        else:
            self.range_status.setText(f"frame {record.get('frame')} {record.get('status')}")

    def _on_range_done(self, status: int, summary: str) -> None:
        self.range_status.setText(summary)
        self.render_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # ------------------------------------------------------------------ closing
    def shutdown(self) -> None:
        """Stop the worker threads (waits for frames being computed)."""
        self._playing = False
        if self.range_job is not None:
            self.range_job.cancel()
            self.range_job.wait(120_000)
        self.controller.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Stop the threads before the window goes."""
        self.shutdown()
        super().closeEvent(event)

    def screenshot(self, path: str) -> QImage:
        """Grab the whole window into a PNG at ``path`` (works offscreen)."""
        image = self.grab().toImage()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not image.save(path, "PNG"):
            raise OSError(f"could not write the screenshot {path}")
        return image


def application() -> QApplication:
    """The running QApplication, created when there is none."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("SparseMat")
    assert isinstance(app, QApplication)
    return app


def run_app(args: Any) -> int:
    """Open the window for parsed ``sparsemat ui`` arguments; returns the exit status.

    With ``args.screenshot`` the window is rendered offscreen-capable into that PNG once the first
    refined frame (or its error) is shown, and the application exits (1 if the frame failed).
    """
    from sparsemat.cli.knobs import output_settings_from_args, settings_from_args

    t0 = time.perf_counter()
    app = application()
    settings = settings_from_args(args)
    out = output_settings_from_args(args)
    win = MainWindow(args.plate, matte=args.matte, matte_channel=args.prior_channel, frames=args.frames,
                     settings=settings, output=out, view=args.view, colorspace=args.input_colorspace,
                     output_pattern=args.output, pixel_aspect=getattr(args, "pixel_aspect", None),
                     eye=getattr(args, "eye", None), layer=getattr(args, "layer", None))
    win.t_open = t0
    status = {"code": 0}
    if args.screenshot:
        def shoot(code: int) -> None:
            if "shot" in status:
                return
            status["shot"] = 1
            status["code"] = code
            QApplication.processEvents()
            win.screenshot(args.screenshot)
            if not args.quiet and win.result is not None and win.first_shown_seconds is not None:
                st = win.result.stats
                print(f"sparsemat ui: first refined matte shown {win.first_shown_seconds:.2f}s after opening "
                      f"(engine stages {st.total_seconds:.2f}s: " +
                      ", ".join(f"{k} {v:.2f}s" for k, v in st.stage_seconds.items()) +
                      f"; whole request incl. reading and model load {win.first_request_seconds:.2f}s; "
                      f"compositing and painting {win.first_display_seconds:.2f}s); "
                      f"screenshot {args.screenshot}", file=sys.stderr)
            win.close()
            app.exit(code)

        win.frameShown.connect(lambda _f: QTimer.singleShot(0, lambda: shoot(0)))
        win.errorShown.connect(lambda _m: QTimer.singleShot(0, lambda: shoot(1)))
    win.show()
    code = app.exec()
    win.shutdown()
    return int(status["code"] if args.screenshot else code)
