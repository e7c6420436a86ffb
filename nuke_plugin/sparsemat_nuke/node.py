"""Nuke adapter for the SparseMat gizmo: knobs → settings, cache paths, Render/Cancel/Reset/Purge.

Thin by design: knob values become :class:`~sparsemat.settings.Settings` through
:mod:`sparsemat_host.knobs`, cache paths and keys come from :mod:`sparsemat_host.cache`, and
the engine runs as a separate process through :mod:`sparsemat_host.sidecar`. Pixels move through
the gizmo's internal Writes (inputs → cache) and its internal Read (cache → output).

Threading: Render writes the inputs with ``nuke.execute`` on the main thread, then follows the
engine from a worker thread; every knob, progress-bar and message update goes back through
``nuke.executeInMainThread``. In batch mode (``nuke -x``/``-t``) the same code runs blocking.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nuke
from sparsemat.errors import SettingsError
from sparsemat.settings import OutputSettings, Settings
from sparsemat.version import __version__ as ENGINE_VERSION
from sparsemat_host import cache, sidecar
from sparsemat_host import knobs as K

_JOBS: dict[str, RenderJob] = {}

# Knobs that never change an upstream node's pixels (left out of the input identity).
_UI_KNOBS = frozenset({
    "name", "xpos", "ypos", "selected", "label", "note_font", "note_font_size", "note_font_color", "tile_color",
    "gl_color", "hide_input", "postage_stamp", "postage_stamp_frame", "dope_sheet", "icon", "bookmark",
    "cached", "help", "onCreate", "knobChanged", "updateUI", "autolabel", "panel", "indicators", "lifetimeStart",
    "lifetimeEnd", "useLifetime", "lock_connections", "process_mask", "reload", "status", "cache_key",
})


def is_sparsemat(node: Any) -> bool:
    """True for a SparseMat node (gizmo or converted group)."""
    return node is not None and node.knob(K.MARKER_KNOB) is not None


def _knob(node: Any, name: str) -> Any:
    """The node's knob ``name``; only knobs of :data:`sparsemat_host.knobs.NODE_KNOBS` are read."""
    if name not in K.KNOBS_BY_NAME:
        raise KeyError(f"{name} is not a SparseMat knob")
    return node[name]


def _inner(node: Any, name: str) -> Any:
    """A node inside the SparseMat group (one of :data:`sparsemat_host.knobs.INTERNAL_NODES`)."""
    if name not in K.INTERNAL_NODES:
        raise KeyError(f"{name} is not a SparseMat internal node")
    child = node.node(name)
    if child is None:
        raise RuntimeError(f"{node.name()}: the internal node {name} is missing; recreate the SparseMat node.")
    return child


def knob_values(node: Any) -> dict[str, Any]:
    """Every valued knob of the node (enumerations as item strings)."""
    return {k.name: _knob(node, k.name).value() for k in K.NODE_KNOBS if k.kind not in ("tab", "button", "text")}


def node_settings(node: Any) -> tuple[Settings, OutputSettings]:
    """The engine settings the node's knobs stand for (SettingsError when a value is invalid)."""
    return K.settings_from_values(knob_values(node))


def frame_range(node: Any) -> tuple[int, int]:
    """The node's frame range: the script's, or its own when *Use script frame range* is off."""
    if _knob(node, "use_script_range").value():
        return int(nuke.root().firstFrame()), int(nuke.root().lastFrame())
    first, last = int(_knob(node, "frame_first").value()), int(_knob(node, "frame_last").value())
    return min(first, last), max(first, last)


def cache_root(node: Any) -> Path:
    """Where this node's cache lives (knob, then ``SPARSEMAT_CACHE``, then next to the script)."""
    script = str(nuke.root()["name"].value())
    return cache.cache_root(str(_knob(node, "cache_dir").value()), str(Path(script).parent) if script else "")


def _describe(node: Any, seen: set[int]) -> list[str]:
    if node is None or id(node) in seen:
        return ["-"]
    seen.add(id(node))
    lines = [node.Class()]
    for line in node.writeKnobs(nuke.WRITE_NON_DEFAULT_ONLY | nuke.TO_SCRIPT | nuke.TO_VALUE).splitlines():
        if line.split(" ", 1)[0] not in _UI_KNOBS:
            lines.append(line)
    for i in range(node.inputs()):
        lines.append(f"input {i}:")
        lines += _describe(node.input(i), seen)
    return lines


def input_identity(node: Any, colorspace: str = "") -> str:
    """Hash of everything upstream of the Source and Matte inputs (classes and knob values) and of the colour space
    their pixels are written in (the cached copies hold the working space's values)."""
    parts = ["source:"] + _describe(node.input(0), set()) + ["matte:"] + _describe(node.input(1), set())
    return cache.input_identity([*parts, "colorspace:", colorspace])


def working_space() -> str:
    """The colour space the script holds pixels in, which the internal Writes (``raw``) put in the cache.

    Nuke's own colour management and the ``nuke-default`` OCIO config work in linear Rec.709; other OCIO configs in
    Project Settings ▸ Color ▸ working space (``workingSpaceLUT``: ``scene_linear``, ``ACES - ACEScg`` …), a name
    the engine resolves through OpenColorIO's studio config and its aliases.
    """
    root = nuke.root()
    management, config, space = (root.knob(n) for n in ("colorManagement", "OCIO_config", "workingSpaceLUT"))
    if space is None or management is None or str(management.value()) == "Nuke":
        return "lin_rec709"
    if config is not None and str(config.value()).startswith("nuke-default"):
        return "lin_rec709"
    return str(space.value()) or "lin_rec709"


def plate_colorspace(node: Any) -> str:
    """The engine's ``--input-colorspace`` for this node: its Plate colour space knob, ``auto`` = :func:`working_space`."""
    return K.plate_colorspace(_knob(node, K.PLATE_COLORSPACE_KNOB).value(), working_space())


def has_matte(node: Any) -> bool:
    return node.input(1) is not None


@dataclass
class NodeState:
    """Everything a render of the node's current state needs."""

    settings: Settings
    output: OutputSettings
    cache: cache.NodeCache
    input_id: str
    key: str
    source: str
    matte: str | None
    output_pattern: str
    first: int
    last: int
    colorspace: str = "lin_rec709"


def node_state(node: Any) -> NodeState:
    """The node's current cache key and paths (SettingsError when a knob is invalid)."""
    settings, output = node_settings(node)
    node_cache = cache.NodeCache(cache_root(node), node.fullName())
    colorspace = plate_colorspace(node)
    input_id = input_identity(node, colorspace)
    key = cache.cache_key(settings, input_id, ENGINE_VERSION)
    first, last = frame_range(node)
    return NodeState(settings, output, node_cache, input_id, key, node_cache.source_pattern(input_id),
                     node_cache.matte_pattern(input_id) if has_matte(node) else None,
                     node_cache.output_pattern(key), first, last, colorspace)


def _set_status(node: Any, text: str) -> None:
    _knob(node, "status").setValue(text)


def refresh(node: Any) -> NodeState | None:
    """Point the internal Writes and Read at the current key's files; None if a knob is invalid."""
    try:
        state = node_state(node)
    except SettingsError as exc:
        _set_status(node, f"invalid setting: {exc}")
        return None
    _inner(node, K.WRITE_SOURCE)["file"].setValue(state.source)
    _inner(node, K.WRITE_MATTE)["file"].setValue(state.matte or node_cache_matte(state))
    read = _inner(node, K.READ_RESULT)
    read["file"].setValue(state.output_pattern)
    for name, value in (("first", state.first), ("last", state.last), ("origfirst", state.first),
                        ("origlast", state.last)):
        read[name].setValue(value)
    if _knob(node, "cache_key").value() != state.key:
        _knob(node, "cache_key").setValue(state.key)
        done = cache.existing_frames(state.output_pattern, range(state.first, state.last + 1))
        _set_status(node, f"{len(done)} of {state.last - state.first + 1} frames rendered for these settings"
                    if done else "not rendered yet for these settings: press Render")
    return state


def node_cache_matte(state: NodeState) -> str:
    return state.cache.matte_pattern(state.input_id)


def _update_visibility(node: Any) -> None:
    _knob(node, "onnx_file").setVisible(_knob(node, "prior").value() == K.PRIOR_ONNX_ITEM)
    _knob(node, "model_file").setVisible(_knob(node, "model").value() == K.MODEL_FILE_ITEM)
    custom = not _knob(node, "use_script_range").value()
    _knob(node, "frame_first").setEnabled(custom)
    _knob(node, "frame_last").setEnabled(custom)


def on_create() -> None:
    """``onCreate`` callback (registered for the SparseMat class in init.py)."""
    node = nuke.thisNode()
    if is_sparsemat(node):
        _update_visibility(node)
        refresh(node)


_REFRESH_ON = K.KEY_KNOBS | {"inputChange", "showPanel", "use_script_range", "frame_first", "frame_last"}


def knob_changed() -> None:
    """``knobChanged`` callback: a knob or input change selects the matching cache key."""
    node, knob = nuke.thisNode(), nuke.thisKnob()
    if not is_sparsemat(node) or knob is None:
        return
    knob_edited(node, knob.name())


def knob_edited(node: Any, name: str) -> None:
    """What a change of knob ``name`` implies: visibility of dependent knobs, the matching cache key.

    Called by :func:`knob_changed` and directly by code that sets knobs (the dock panel): before Nuke 17.1
    ``knobChanged`` does not fire for programmatic changes.
    """
    if name in ("prior", "model", "use_script_range", "showPanel"):
        _update_visibility(node)
    if name in _REFRESH_ON:
        refresh(node)


# ---------------------------------------------------------------------------------------------
# rendering


def write_inputs(node: Any, state: NodeState, frames: list[int]) -> None:
    """Write the Source (and Matte) frames the engine needs for ``frames``, pre-roll included when it reads one.

    Runs the internal Writes with ``nuke.execute`` on the main thread, proxy off; frames already
    in the input cache are not written again.
    """
    jobs = [(K.WRITE_SOURCE, state.source)] + ([(K.WRITE_MATTE, state.matte)] if state.matte else [])
    preroll = state.settings.reads_earlier_frames(has_matte=bool(state.matte))
    todo = cache.input_spans(frames, state.first, state.settings.keyframe_interval, [p for _, p in jobs], preroll)
    root = nuke.root()
    proxy = bool(root["proxy"].value())
    if proxy:
        root["proxy"].setValue(False)
    try:
        for (write_name, pattern), spans in zip(jobs, todo, strict=True):
            write = _inner(node, write_name)
            write["file"].setValue(pattern)
            Path(pattern).parent.mkdir(parents=True, exist_ok=True)
            for a, b in spans:
                nuke.execute(write, a, b, 1)
    finally:
        if proxy:
            root["proxy"].setValue(True)


class RenderJob:
    """One engine run for one node, followed from a worker thread (GUI) or inline (batch)."""

    def __init__(self, node: Any, cmd: list[str], frames: list[int], state: NodeState) -> None:
        self.node = node
        self.name = node.fullName()
        self.cmd = cmd
        self.frames = frames
        self.state = state
        self.cancel_event = threading.Event()
        self.finished = threading.Event()
        self.task: Any = None
        self.thread: threading.Thread | None = None
        self.outcome: sidecar.RenderOutcome | None = None
        self._count = 0

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    # GUI: worker thread + ProgressTask -----------------------------------------------------
    def start(self) -> None:
        self.task = nuke.ProgressTask(f"SparseMat {self.name}")
        self.task.setMessage(f"starting the engine for frames {self.frames[0]}-{self.frames[-1]}")
        self.thread = threading.Thread(target=self._work, name=f"SparseMat {self.name}", daemon=True)
        self.thread.start()

    def _should_cancel(self) -> bool:
        return self.cancel_event.is_set() or (self.task is not None and self.task.isCancelled())

    def _work(self) -> None:
        outcome = sidecar.RenderOutcome()
        try:
            outcome = sidecar.run_render(self.cmd, on_event=self._on_event_threaded, should_cancel=self._should_cancel)
        except Exception as exc:  # shown to the artist, never swallowed
            outcome.error = f"SparseMat render failed: {exc}"
        finally:
            _clean_after(self.state, outcome)
            nuke.executeInMainThread(self._finish, (outcome,))

    def _on_event_threaded(self, event: sidecar.ProgressEvent) -> None:
        self._count += 1
        percent = int(100 * self._count / max(1, len(self.frames)))
        nuke.executeInMainThread(self._progress, (percent, sidecar.status_text(event)))

    def _progress(self, percent: int, text: str) -> None:
        if self.task is not None:
            self.task.setProgress(min(100, percent))
            self.task.setMessage(text)
        _safe(lambda: _set_status(self.node, text))

    # batch: inline --------------------------------------------------------------------------
    def run_blocking(self) -> sidecar.RenderOutcome:
        def report(event: sidecar.ProgressEvent) -> None:
            print(f"SparseMat {self.name}: {sidecar.status_text(event)}", flush=True)

        outcome = sidecar.run_render(self.cmd, on_event=report, should_cancel=self.cancel_event.is_set)
        _clean_after(self.state, outcome)
        self._finish(outcome)
        return outcome

    def _finish(self, outcome: sidecar.RenderOutcome) -> None:
        self.outcome = outcome
        self.task = None  # closes Nuke's progress bar (del task)
        if outcome.last is not None and not outcome.error:
            status = sidecar.status_text(outcome.last)
        else:
            status = outcome.summary().splitlines()[0]
        if outcome.cancelled:
            status = f"cancelled; {len(outcome.done)} frame(s) kept. Last: {status}"
        _safe(lambda: _set_status(self.node, status))
        _safe(lambda: _inner(self.node, K.READ_RESULT)["reload"].execute())
        _JOBS.pop(self.name, None)
        self.finished.set()
        if (outcome.error or outcome.failed) and nuke.GUI:
            nuke.message(f"SparseMat {self.name}:\n{outcome.summary()}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker thread ends (the finish step still needs the main thread)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.thread is None or not self.thread.is_alive()


def _safe(call: Any) -> None:
    with contextlib.suppress(ValueError, RuntimeError, NameError):  # the node was deleted while rendering
        call()


def _clean_after(state: NodeState, outcome: sidecar.RenderOutcome) -> None:
    """After a cancelled or failed run, remove engine temp files so only complete frames remain."""
    if outcome.cancelled or outcome.failed or outcome.error or outcome.returncode not in (0, None):
        cache.remove_partial_files(state.output_pattern)


def _show_error(node: Any, text: str) -> None:
    _set_status(node, text.splitlines()[0])
    if nuke.GUI:
        nuke.message(f"SparseMat {node.name()}:\n{text}")


def render(node: Any, frames: list[int] | None = None, wait: bool | None = None) -> RenderJob | None:
    """Render the node's missing frames (its frame range unless ``frames`` is given).

    In the GUI the engine is followed from a worker thread with a progress bar and the call
    returns at once; with ``wait`` (or in batch mode) it returns after the engine exits.
    Returns the job, or None when there was nothing to do or the render could not start.
    """
    name = node.fullName()
    if name in _JOBS and _JOBS[name].running:
        _show_error(node, "A render of this node is already running; press Cancel to stop it first.")
        return None
    state = refresh(node)
    if state is None:
        _show_error(node, _knob(node, "status").value())
        return None
    if node.input(0) is None:
        _show_error(node, "Connect a plate to the Source input first.")
        return None
    views = nuke.views()
    if len(views) > 1:  # the internal Writes would put every view in one file and the engine would matte one eye
        _show_error(node, f"SparseMat mattes one view, and this script has {len(views)} ({', '.join(views)}). "
                          "Nothing was rendered. Matte each eye in a one-view script (Project Settings > Views), "
                          "or render them with 'sparsemat render --eye left' (and --eye right) from a stereo EXR "
                          "and read the mattes back.")
        return None
    wanted, missing = cache.frames_to_render(state.output_pattern, state.first, state.last, frames)
    if not missing:
        _set_status(node, f"all {len(wanted)} frame(s) already rendered for these settings")
        return None
    try:
        engine = sidecar.engine_command()
    except sidecar.EngineNotFoundError as exc:
        _show_error(node, str(exc))
        return None
    try:
        write_inputs(node, state, missing)
    except RuntimeError as exc:  # nuke.execute: cancelled progress bar, or an upstream Read error
        _show_error(node, f"Writing the inputs for the engine stopped: {exc}. Nothing was rendered; "
                          "fix the upstream error (or press Render again) to continue.")
        return None
    state.cache.write_manifest(state.key, state.settings, state.input_id, state.source, state.matte)
    cmd = sidecar.render_command(engine, state.source, state.output_pattern, missing[0], missing[-1],
                                 state.settings, state.output, matte=state.matte, resume=True,
                                 colorspace=state.colorspace)
    job = RenderJob(node, cmd, missing, state)
    _JOBS[name] = job
    blocking = (not nuke.GUI) if wait is None else wait
    if blocking:
        job.run_blocking()
    else:
        job.start()
    return job


def cancel(node: Any) -> None:
    """Stop the node's running render (finished frames stay in the cache)."""
    job = _JOBS.get(node.fullName())
    if job is None or not job.running:
        _set_status(node, "nothing to cancel")
        return
    job.cancel_event.set()
    _set_status(node, "cancelling…")


def _refuse_while_running(node: Any) -> bool:
    job = _JOBS.get(node.fullName())
    if job is not None and job.running:
        _show_error(node, "Cancel the running render first.")
        return True
    return False


def reset_history(node: Any) -> None:
    """Forget the frames rendered with the current settings (the next Render starts fresh)."""
    if _refuse_while_running(node):
        return
    state = refresh(node)
    if state is None:
        return
    count = state.cache.clear_key(state.key)
    _set_status(node, f"history reset: {count} file(s) removed for these settings")
    _safe(lambda: _inner(node, K.READ_RESULT)["reload"].execute())


def purge_cache(node: Any) -> None:
    """Delete every cached frame of this node (all settings) and its input copies."""
    if _refuse_while_running(node):
        return
    node_cache = cache.NodeCache(cache_root(node), node.fullName())
    if nuke.GUI and not nuke.ask(f"Delete every cached SparseMat frame of {node.name()} in {node_cache.node_dir}?"):
        return
    count = node_cache.purge()
    _set_status(node, f"cache purged: {count} file(s) removed")
    _safe(lambda: _inner(node, K.READ_RESULT)["reload"].execute())


def farm_commands(node: Any, plugin_dir: str | None = None) -> list[str]:
    """Command lines for a separate precompute job (see docs/hosts.md).

    The first (Nuke, one task) writes the inputs the engine needs; the second (engine, one task)
    renders the mattes into the cache the comp render reads.
    """
    state = node_state(node)
    plugin_dir = plugin_dir or str(Path(__file__).resolve().parent)
    script = str(nuke.root()["name"].value()) or "<save the script first>"
    inputs = ["nuke", "-t", str(Path(plugin_dir) / "precompute.py"), script, node.fullName(),
              f"{state.first}-{state.last}", "--inputs-only"]
    engine = sidecar.render_command(["sparsemat"], state.source, state.output_pattern, state.first, state.last,
                                    state.settings, state.output, matte=state.matte, resume=True,
                                    colorspace=state.colorspace)
    return [sidecar.farm_command_line(inputs), sidecar.farm_command_line(engine)]


def check_setup(node: Any) -> bool:
    """Show what a render with the node's settings would use on this machine, and what is wrong."""
    try:
        settings, _ = node_settings(node)
        engine = sidecar.engine_command()
    except (SettingsError, sidecar.EngineNotFoundError) as exc:
        _show_error(node, str(exc))
        return False
    report = sidecar.check_setup(engine, settings, colorspace=plate_colorspace(node),
                                 output=str(cache_root(node)) + os.sep)
    _set_status(node, report.status)
    if nuke.GUI:
        nuke.message(f"SparseMat {node.name()}: setup\n\n{report.text}")
    return report.ok


def copy_farm_command(node: Any) -> str:
    """Put the precompute commands on the clipboard (and show them)."""
    try:
        text = "\n".join(farm_commands(node))
    except SettingsError as exc:
        _show_error(node, str(exc))
        return ""
    copied = False
    try:
        from PySide6 import QtWidgets  # type: ignore[import-not-found]
    except ImportError:
        try:
            from PySide2 import QtWidgets  # type: ignore[import-not-found,no-redef]
        except ImportError:
            QtWidgets = None  # type: ignore[assignment]
    if QtWidgets is not None and QtWidgets.QApplication.instance() is not None:
        QtWidgets.QApplication.clipboard().setText(text)
        copied = True
    _set_status(node, "farm command copied to the clipboard" if copied else "farm command shown")
    if nuke.GUI:
        nuke.message(("Copied to the clipboard:\n\n" if copied else "") + text)
    return text
