"""Render worker: one engine :class:`~sparsemat.engine.Session` on a thread, fed by a debounced controller.

The UI thread never renders. :class:`RenderController` (UI thread) numbers every request with a
generation counter and starts a single-shot debounce timer; when it fires, the newest request goes
to :class:`RenderWorker` (a :class:`QThread`), which keeps only the latest pending request. A frame
already being computed cannot be interrupted, but its result is dropped when a newer generation
exists, so the view only ever shows the newest knobs. Errors come back as the engine's own message.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal
from sparsemat.settings import Settings

DEBOUNCE_MS = 150


class PlateCache:
    """A :class:`~sparsemat.engine.FrameSource` over a :class:`~sparsemat.cli.render.FileSource` that
    keeps the last few frames read (plate and engine input), so knob tweaks do not re-read the file.

    Args:
        source: the CLI's ``FileSource`` (plates, optional mattes, colour space).
        keep: frames kept (a 4K float plate is about 150 MB with its source pixels).
    """

    def __init__(self, source: Any, keep: int = 3) -> None:
        self.source = source
        self.keep = keep
        self._frames: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()  # one file read at a time (a prefetch and the worker)

    @property
    def first_frame(self) -> int:
        """First frame on disk (pre-roll never goes before it)."""
        return int(self.source.first_frame)

    @property
    def last_frame(self) -> int:
        """Last frame on disk."""
        return int(self.source.last_frame)

    def __call__(self, frame: int) -> Any:
        """The engine's :class:`~sparsemat.engine.FrameInput` for ``frame`` (read once, then cached)."""
        return self.read(frame)[0]

    def read(self, frame: int) -> tuple[Any, Any]:
        """``(FrameInput, Plate)`` of ``frame``."""
        with self._read_lock:
            with self._lock:
                if frame in self._frames:
                    self._frames.move_to_end(frame)
                    return self._frames[frame]
            inp = self.source(frame)
            item = (inp, self.source.last_plate)
            with self._lock:
                self._frames[frame] = item
                while len(self._frames) > self.keep:
                    self._frames.popitem(last=False)
            return item

    def prefetch(self, frame: int) -> threading.Thread:
        """Read ``frame`` on a background thread (while the engine imports torch at start-up).

        Errors are left for the render to raise with the engine's message.
        """

        def read() -> None:
            with contextlib.suppress(Exception):  # the render reports the error
                self.read(frame)

        thread = threading.Thread(target=read, name=f"sparsemat-prefetch-{frame}", daemon=True)
        thread.start()
        return thread

    def clear(self) -> None:
        """Forget every cached frame (after the files changed on disk)."""
        with self._lock:
            self._frames.clear()


@dataclass(frozen=True)
class RenderRequest:
    """One render of one frame with one set of knobs."""

    generation: int
    frame: int
    settings: Settings


class RenderWorker(QThread):
    """Runs the engine on its own thread; only the latest submitted request is ever started.

    Signals:
        rendered(generation, frame, result, plate, seconds): a frame finished; ``seconds`` is the wall
            time of the whole request (reading, pre-roll and engine).
        failed(generation, frame, message): the engine (or the reader) raised; ``message`` is its text.
        busy(bool): a request started (True) or the queue ran dry (False).
    """

    rendered = Signal(int, int, object, object, float)
    failed = Signal(int, int, str)
    busy = Signal(bool)

    def __init__(self, source: PlateCache, refiner: Any = None, prior: Any = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self._refiner = refiner
        self._prior = prior
        self._session: Any = None
        self._pending: RenderRequest | None = None
        self._stop = False
        self._cond = threading.Condition()
        self.renders = 0  # requests actually computed (tests: superseded requests are skipped)

    def submit(self, request: RenderRequest) -> None:
        """Queue ``request``, replacing any request not started yet."""
        with self._cond:
            self._pending = request
            self._cond.notify()

    def stop(self, wait_ms: int = 60_000) -> None:
        """Ask the thread to finish after the current frame and wait for it."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify()
        self.wait(wait_ms)

    def run(self) -> None:
        """The thread's loop: take the newest request, render it, report, repeat."""
        import sparsemat.engine  # noqa: F401  (import torch while the window is being built)

        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                request, self._pending = self._pending, None
            assert request is not None
            self.busy.emit(True)
            self._render(request)
            with self._cond:
                idle = self._pending is None
            if idle:
                self.busy.emit(False)

    def _render(self, req: RenderRequest) -> None:
        from sparsemat.engine import Session
        from sparsemat.errors import SparseMatError

        t0 = time.perf_counter()
        try:
            if self._session is None:
                # the viewer asks for a frame again after every knob change: keep the refiner's output, so knobs
                # that act after it (strength, guard, colour bound) do not run the network again
                self._session = Session(req.settings, refiner=self._refiner, prior=self._prior,
                                        reuse_refinement=True)
            else:
                self._session.update(req.settings)
            self.renders += 1
            result = self._session.render(req.frame, self.source)
            plate = self.source.read(req.frame)[1]
        except SparseMatError as exc:
            self.failed.emit(req.generation, req.frame, str(exc))
            return
        except Exception as exc:  # a bug: show it rather than kill the thread
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.failed.emit(req.generation, req.frame, f"Internal error while rendering frame {req.frame}: {detail}")
            return
        self.rendered.emit(req.generation, req.frame, result, plate, time.perf_counter() - t0)


class RenderController(QObject):
    """UI-thread side of rendering: debounce, generation counter, dropping superseded results.

    Signals:
        resultReady(frame, result, plate, seconds): the newest request's result.
        errorRaised(frame, message): the newest request failed.
        busyChanged(bool): rendering or idle.
    """

    resultReady = Signal(int, object, object, float)
    errorRaised = Signal(int, str)
    busyChanged = Signal(bool)

    def __init__(self, source: PlateCache, refiner: Any = None, prior: Any = None, debounce_ms: int = DEBOUNCE_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self.dropped = 0  # results thrown away because a newer request existed
        self._next: RenderRequest | None = None
        self.worker = RenderWorker(source, refiner, prior)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.failed.connect(self._on_failed)
        self.worker.busy.connect(self.busyChanged)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(debounce_ms)
        self.timer.timeout.connect(self.flush)
        self.worker.start()

    def request(self, frame: int, settings: Settings, immediate: bool = False) -> int:
        """Ask for ``frame`` with ``settings``; supersedes every earlier request. Returns its generation."""
        self.generation += 1
        self._next = RenderRequest(self.generation, int(frame), settings)
        if immediate:
            self.timer.stop()
            self.flush()
        else:
            self.timer.start()
        return self.generation

    def flush(self) -> None:
        """Send the pending request to the worker now."""
        if self._next is not None:
            self.worker.submit(self._next)
            self._next = None

    def _on_rendered(self, generation: int, frame: int, result: Any, plate: Any, seconds: float) -> None:
        if generation != self.generation:
            self.dropped += 1
            return
        self.resultReady.emit(frame, result, plate, seconds)

    def _on_failed(self, generation: int, frame: int, message: str) -> None:
        if generation != self.generation:
            self.dropped += 1
            return
        self.errorRaised.emit(frame, message)

    def shutdown(self) -> None:
        """Stop the worker thread (waits for the frame being computed)."""
        self.timer.stop()
        self.worker.stop()
