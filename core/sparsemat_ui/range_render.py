"""Render a frame range from the UI through the CLI's own code path (``sparsemat render``), cancellable.

The panel's knobs become ``sparsemat render`` arguments, parsed by the render sub-command's own
parser and run by :func:`sparsemat.cli.render.run` with JSON progress and a cancel callback. So a
range rendered from the UI has the same pixels, metadata, atomic writes and failure handling as the
farm. Cancel is polled between frames: the frame being computed is finished and written atomically,
then the run stops, leaving only complete frames on disk.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from sparsemat.settings import ENGINE_KNOBS, OutputSettings, Settings


def render_argv(plate: str, output: str, settings: Settings, out: OutputSettings | None = None,
                frames: str | None = None, matte: str | None = None, matte_channel: str | None = None,
                colorspace: str | None = None, pixel_aspect: float | None = None,
                eye: str | None = None, layer: str | None = None) -> list[str]:
    """``sparsemat render`` arguments for these knobs (every engine knob spelled out, JSON progress)."""
    argv = [plate, "-o", output, "--progress", "json"]
    if frames:
        argv += ["--frames", frames]
    if matte:
        argv += ["--prior", matte]
    if matte_channel:
        argv += ["--prior-channel", matte_channel]
    if colorspace:
        argv += ["--input-colorspace", colorspace]
    if pixel_aspect is not None:
        argv += ["--pixel-aspect", repr(float(pixel_aspect))]
    if eye:
        argv += ["--eye", eye]
    if layer:
        argv += ["--layer", layer]
    values = settings.to_dict()
    for spec in ENGINE_KNOBS:
        value = values[spec.name]
        if spec.kind == "bool":
            argv.append(spec.flag if value else "--no-" + spec.flag[2:])
        else:
            argv += [spec.flag, str(value)]
    if out is not None:
        argv += ["--output-mode", out.output_mode]
        if out.overlay != "off":
            argv += ["--overlay", out.overlay]
    return argv


def parse_render_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with the render sub-command's own parser (plus the global ``--quiet``/``--debug``)."""
    from sparsemat.cli import render

    parser = argparse.ArgumentParser(prog="sparsemat render")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    render.add_parser(parser)
    return parser.parse_args(argv)


class _LineStream(io.TextIOBase):
    """A text stream calling ``on_line`` for every complete line written (the JSON progress)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        super().__init__()
        self._on_line = on_line
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self._on_line(line)
        return len(text)


class RangeRender(QThread):
    """Runs :func:`sparsemat.cli.render.run` on a thread.

    Signals:
        progress(dict): one record per finished frame (``frame``, ``status`` done/skipped/failed,
            ``path``, ``active_share``, ``seconds`` or ``message``), emitted from the render thread.
        finished_with(int, str): exit status (0 all written, 1 failures or cancelled, 2 bad usage)
            and a one-line summary.
    """

    progress = Signal(dict)
    finished_with = Signal(int, str)

    def __init__(self, argv: list[str], total: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.argv = list(argv)
        self.total = total
        self.records: list[dict[str, Any]] = []
        self._cancel = threading.Event()
        self.status: int | None = None

    def cancel(self) -> None:
        """Stop after the frame being computed (it is still written completely)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def _on_line(self, line: str) -> None:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return
        self.records.append(record)
        self.progress.emit(record)

    def run(self) -> None:
        """Parse the arguments and render; never raises (errors become the summary)."""
        from sparsemat.cli import render
        from sparsemat.errors import SparseMatError

        try:
            args = parse_render_args(self.argv)
            status = render.run(args, progress_stream=_LineStream(self._on_line), cancel=self._cancel.is_set)
            summary = self._summary(status)
        except SystemExit as exc:  # argparse rejected an argument
            status, summary = 2, f"bad render arguments ({exc})"
        except SparseMatError as exc:
            status, summary = 1, str(exc)
        except Exception as exc:  # keep the UI alive; report the bug
            status, summary = 1, f"internal error: {type(exc).__name__}: {exc}"
        self.status = status
        self.finished_with.emit(status, summary)

    def _summary(self, status: int) -> str:
        done = sum(r.get("status") == "done" for r in self.records)
        skipped = sum(r.get("status") == "skipped" for r in self.records)
        failed = [r for r in self.records if r.get("status") == "failed"]
        text = f"{done} frame(s) written" + (f", {skipped} skipped" if skipped else "")
        if self.cancelled:
            text += "; cancelled (frames written are complete)"
        if failed:
            text += f"; {len(failed)} failed: " + "; ".join(f"frame {r.get('frame')}: {r.get('message')}" for r in failed)
        elif status == 2:
            text += "; the render could not start (see the terminal)"
        return text
