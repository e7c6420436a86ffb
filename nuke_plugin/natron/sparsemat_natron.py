"""Natron adapter of SparseMat: params from the knob table, the same cache and sidecar as Nuke.

The PyPlug (``SparseMat.py``) builds a group: Input ``Source`` → WriteOIIO (cache in), Input
``Matte`` → WriteOIIO, ReadOIIO ``SparseMatRead`` (cache out) and a Text slate, chosen per frame by
a Switch whose Python expression checks that the frame's file exists, → Output. Buttons and param
changes arrive in :func:`on_param_changed`. Natron offers no main-thread hand-off to Python, so a
render runs blocking (in the GUI and in NatronRenderer alike) and reports to the status param.

Farm: ``NatronRenderer -l <this folder>/sparsemat_fill.py -w Write1 1-100 project.ntp`` fills the
missing cache frames of every SparseMat node before the Writers render (see docs/hosts.md).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _p in (_HERE, _HERE.parent, _HERE.parent.parent / "core"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from sparsemat.errors import SettingsError  # noqa: E402
from sparsemat.version import __version__ as ENGINE_VERSION  # noqa: E402
from sparsemat_host import cache, sidecar  # noqa: E402
from sparsemat_host import knobs as K  # noqa: E402

PLUGIN_ID = "fr.sparsemat.SparseMat"
INPUT_ID = "fr.inria.built-in.Input"
OUTPUT_ID = "fr.inria.built-in.Output"
READ_ID = "fr.inria.openfx.ReadOIIO"
WRITE_ID = "fr.inria.openfx.WriteOIIO"
SWITCH_ID = "net.sf.openfx.switchPlugin"
TEXT_ID = "net.fxarena.openfx.Text"
# What the Plate colour space knob's 'auto' means here: Natron composites in linear Rec.709 (its default
# nuke-default OCIO config) and its WriteOIIO writes EXR in that linear space.
WORKING_SPACE = "lin_rec709"
_CANCEL: dict[str, bool] = {}


def create_params(group: Any) -> None:
    """Create every SparseMat param on ``group`` (one page), from :data:`sparsemat_host.knobs.NODE_KNOBS`."""
    page = None
    for knob in K.NODE_KNOBS:
        if knob.kind == "tab":
            page = group.createPageParam(knob.name, knob.label)
            continue
        if knob.kind == "text" and knob.name != "status":
            continue  # dividers: Natron pages need none
        if knob.kind == "int":
            param = group.createIntParam(knob.name, knob.label)
            if knob.minimum is not None:
                param.setMinimum(int(knob.minimum))
            if knob.maximum is not None:
                param.setMaximum(int(knob.maximum))
            param.setDefaultValue(int(knob.default))
        elif knob.kind == "double":
            param = group.createDoubleParam(knob.name, knob.label)
            param.setMinimum(float(knob.minimum or 0.0))
            param.setMaximum(float(knob.maximum if knob.maximum is not None else 1.0))
            param.setDefaultValue(float(knob.default))
        elif knob.kind == "bool":
            param = group.createBooleanParam(knob.name, knob.label)
            param.setDefaultValue(bool(knob.default))
        elif knob.kind == "enum":
            param = group.createChoiceParam(knob.name, knob.label)
            for item in knob.items:
                param.addOption(item, "")
            param.setDefaultValue(knob.items.index(knob.default))
        elif knob.kind == "button":
            param = group.createButtonParam(knob.name, knob.label)
        elif knob.kind == "file":
            param = group.createFileParam(knob.name, knob.label)
        else:  # string, and the status line
            param = group.createStringParam(knob.name, knob.label)
            param.setDefaultValue(str(knob.default or ""))
            if knob.name == "status":
                param.setEnabled(False)
        param.setHelp(knob.tooltip)
        if knob.hidden:
            param.setVisible(False)
        if not knob.startline:
            param.setAddNewLine(False)
        if knob.kind in ("button", "string", "file", "text"):
            param.setAnimationEnabled(False) if hasattr(param, "setAnimationEnabled") else None
        if page is not None:
            page.addParam(param)
    group.refreshUserParamsGUI()


def create_nodes(app: Any, group: Any) -> None:
    """The inner graph: inputs → cache Writers, cache Reader / slate → Switch → Output."""
    def make(plugin: str, name: str) -> Any:
        node = app.createNode(plugin, -1, group)
        node.setScriptName(name)
        node.setLabel(name)
        return node

    source = make(INPUT_ID, K.SOURCE_INPUT)
    matte = make(INPUT_ID, K.MATTE_INPUT)
    write_source = make(WRITE_ID, K.WRITE_SOURCE)
    write_source.connectInput(0, source)
    write_matte = make(WRITE_ID, K.WRITE_MATTE)
    write_matte.connectInput(0, matte)
    read = make(READ_ID, K.READ_RESULT)
    slate = make(TEXT_ID, K.SLATE_TEXT)
    slate.getParam("text").set("SparseMat: this frame is not rendered yet for these settings. Press Render.")
    slate.connectInput(0, source)
    switch = make(SWITCH_ID, K.CACHE_SWITCH)
    switch.connectInput(0, read)
    switch.connectInput(1, slate)
    output = make(OUTPUT_ID, "Output")
    output.connectInput(0, switch)


def _param(group: Any, name: str) -> Any:
    if name not in K.KNOBS_BY_NAME:
        raise KeyError(f"{name} is not a SparseMat param")
    return group.getParam(name)


def _value(group: Any, knob: K.NodeKnob) -> Any:
    param = _param(group, knob.name)
    if knob.kind == "enum":
        return param.getOption(param.get())
    return param.get()


def knob_values(group: Any) -> dict[str, Any]:
    return {k.name: _value(group, k) for k in K.NODE_KNOBS if k.kind not in ("tab", "button", "text")}


def frame_range(group: Any, app: Any) -> tuple[int, int]:
    if _param(group, "use_script_range").get():
        project = app.getProjectParam("frameRange")
        return int(project.getValue(0)), int(project.getValue(1))
    a, b = int(_param(group, "frame_first").get()), int(_param(group, "frame_last").get())
    return min(a, b), max(a, b)


def cache_root(group: Any, app: Any) -> Path:
    """Where this node's cache lives (param, then ``SPARSEMAT_CACHE``, then next to the project)."""
    project = app.getProjectParam("projectPath")
    folder = str(project.get()) if project is not None else ""
    return cache.cache_root(str(_param(group, "cache_dir").get()), folder)


def _describe(node: Any, seen: set[int]) -> list[str]:
    if node is None or id(node) in seen:
        return ["-"]
    seen.add(id(node))
    lines = [node.getPluginID()]
    for param in node.getParams():
        name = param.getScriptName()
        if name in ("onParamChanged",) or not hasattr(param, "getValue"):
            continue
        lines.append(f"{name} {param.getValue()!r}")
    for i in range(4):
        if node.getInput(i) is not None:
            lines.append(f"input {i}:")
            lines += _describe(node.getInput(i), seen)
    return lines


def state_of(group: Any, app: Any) -> dict[str, Any]:
    """The group's settings, cache key and paths (SettingsError when a param is invalid)."""
    settings, output = K.settings_from_values(knob_values(group))
    node_cache = cache.NodeCache(cache_root(group, app), group.getScriptName())
    colorspace = K.plate_colorspace(_param(group, K.PLATE_COLORSPACE_KNOB).get(), WORKING_SPACE)
    input_id = cache.input_identity(["source:"] + _describe(group.getInput(0), set()) + ["matte:"]
                                    + _describe(group.getInput(1), set()) + ["colorspace:", colorspace])
    # The cache holds the final output (the inner graph only reads it back), so output mode and overlay
    # are part of the key: changing them shows the "not rendered" slate until Render is pressed again.
    key = cache.cache_key(settings, input_id, ENGINE_VERSION, dataclasses.asdict(output))
    first, last = frame_range(group, app)
    matte = node_cache.matte_pattern(input_id) if group.getInput(1) is not None else None
    return {"settings": settings, "output": output, "cache": node_cache, "input_id": input_id, "key": key,
            "source": node_cache.source_pattern(input_id), "matte": matte,
            "output_pattern": node_cache.output_pattern(key), "first": first, "last": last, "colorspace": colorspace}


def _inner(group: Any, name: str) -> Any:
    if name not in K.INTERNAL_NODES:
        raise KeyError(name)
    return group.getNode(name)


def _status(group: Any, text: str) -> None:
    _param(group, "status").set(text)


def refresh(group: Any, app: Any) -> dict[str, Any] | None:
    """Point the inner Writers/Reader and the slate Switch at the current key's files."""
    try:
        state = state_of(group, app)
    except SettingsError as exc:
        _status(group, f"invalid setting: {exc}")
        return None
    _inner(group, K.WRITE_SOURCE).getParam("filename").set(state["source"])
    _inner(group, K.WRITE_MATTE).getParam("filename").set(state["matte"] or state["cache"].matte_pattern(
        state["input_id"]))
    read = _inner(group, K.READ_RESULT)
    read.getParam("filename").set(state["output_pattern"])
    read.getParam("firstFrame").set(state["first"])
    read.getParam("lastFrame").set(state["last"])
    # slate for frames not rendered yet: Natron evaluates this per frame
    _inner(group, K.CACHE_SWITCH).getParam("which").setExpression(
        f"import os\nret = 0 if os.path.isfile({state['output_pattern']!r} % int(frame)) else 1", True)
    if _param(group, "cache_key").get() != state["key"]:
        _param(group, "cache_key").set(state["key"])
        done = cache.existing_frames(state["output_pattern"], range(state["first"], state["last"] + 1))
        _status(group, f"{len(done)} of {state['last'] - state['first'] + 1} frames rendered for these settings"
                if done else "not rendered yet for these settings: press Render")
    return state


def _render_writer(app: Any, writer: Any, first: int, last: int) -> None:
    blocking = getattr(app, "renderBlocking", None)  # GuiApp: app.render would return at once
    (blocking or app.render)(writer, first, last)


def render(group: Any, app: Any, frames: list[int] | None = None) -> sidecar.RenderOutcome | None:
    """Render the group's missing frames (blocking); returns the outcome, None if nothing ran."""
    state = refresh(group, app)
    if state is None:
        return None
    if group.getInput(0) is None:
        _status(group, "connect a plate to the Source input first")
        return None
    wanted, missing = cache.frames_to_render(state["output_pattern"], state["first"], state["last"], frames)
    if not missing:
        _status(group, f"all {len(wanted)} frame(s) already rendered for these settings")
        return None
    try:
        engine = sidecar.engine_command()
    except sidecar.EngineNotFoundError as exc:
        _status(group, str(exc))
        return None
    settings = state["settings"]
    writers = [(K.WRITE_SOURCE, state["source"])] + ([(K.WRITE_MATTE, state["matte"])] if state["matte"] else [])
    preroll = settings.reads_earlier_frames(has_matte=bool(state["matte"]))
    todo = cache.input_spans(missing, state["first"], settings.keyframe_interval, [p for _, p in writers], preroll)
    for (name, pattern), spans in zip(writers, todo, strict=True):
        Path(pattern).parent.mkdir(parents=True, exist_ok=True)
        for a, b in spans:
            _render_writer(app, _inner(group, name), a, b)
    state["cache"].write_manifest(state["key"], settings, state["input_id"], state["source"], state["matte"])
    cmd = sidecar.render_command(engine, state["source"], state["output_pattern"], missing[0], missing[-1],
                                 settings, state["output"], matte=state["matte"], resume=True, cache_mode=False,
                                 colorspace=state["colorspace"])
    name = group.getScriptName()
    _CANCEL[name] = False

    def on_event(event: sidecar.ProgressEvent) -> None:
        print(f"SparseMat {name}: {sidecar.status_text(event)}", flush=True)

    outcome = sidecar.run_render(cmd, on_event=on_event, should_cancel=lambda: _CANCEL.get(name, False))
    if outcome.cancelled or not outcome.ok:
        cache.remove_partial_files(state["output_pattern"])
    if outcome.error or outcome.failed:
        _status(group, outcome.summary().replace("\n", " | "))
    elif outcome.last is not None:
        _status(group, sidecar.status_text(outcome.last))
    read = _inner(group, K.READ_RESULT)
    read.getParam("filename").set(state["output_pattern"])  # re-set: the Reader rescans the sequence
    return outcome


def on_param_changed(thisParam: Any, thisNode: Any, thisGroup: Any, app: Any, userEdited: bool) -> None:
    """Natron's param-changed callback for SparseMat groups."""
    name = thisParam.getScriptName()
    if name == "render":
        render(thisNode, app)
    elif name == "cancel":
        _CANCEL[thisNode.getScriptName()] = True
        _status(thisNode, "cancelling…")
    elif name == "reset_history":
        state = refresh(thisNode, app)
        if state is not None:
            count = state["cache"].clear_key(state["key"])
            _status(thisNode, f"history reset: {count} file(s) removed for these settings")
    elif name == "purge_cache":
        count = cache.NodeCache(cache_root(thisNode, app), thisNode.getScriptName()).purge()
        _status(thisNode, f"cache purged: {count} file(s) removed")
    elif name == "copy_farm_command":
        state = refresh(thisNode, app)
        if state is not None:
            cmd = sidecar.render_command(["sparsemat"], state["source"], state["output_pattern"], state["first"],
                                         state["last"], state["settings"], state["output"], matte=state["matte"],
                                         cache_mode=False, colorspace=state["colorspace"])
            print(sidecar.farm_command_line(cmd), flush=True)
            _status(thisNode, "farm command printed to the script editor")
    elif name == "check_setup":
        try:
            colorspace = K.plate_colorspace(_param(thisNode, K.PLATE_COLORSPACE_KNOB).get(), WORKING_SPACE)
            report = sidecar.check_setup(sidecar.engine_command(), K.settings_from_values(knob_values(thisNode))[0],
                                         colorspace=colorspace, output=str(cache_root(thisNode, app)) + os.sep)
        except (SettingsError, sidecar.EngineNotFoundError) as exc:
            report = sidecar.SetupReport(False, [str(exc)], str(exc))
        print(report.text, flush=True)  # the script editor
        _status(thisNode, report.status)
    elif name in ("prior", "model", "use_script_range"):
        _update_visibility(thisNode)
        refresh(thisNode, app)
    elif name in K.KEY_KNOBS or name in K.OUTPUT_KNOB_NAMES or name in ("frame_first", "frame_last"):
        refresh(thisNode, app)  # output mode and overlay are part of Natron's cache key


def _update_visibility(group: Any) -> None:
    _param(group, "onnx_file").setVisible(_value(group, K.KNOBS_BY_NAME["prior"]) == K.PRIOR_ONNX_ITEM)
    _param(group, "model_file").setVisible(_value(group, K.KNOBS_BY_NAME["model"]) == K.MODEL_FILE_ITEM)
    custom = not _param(group, "use_script_range").get()
    _param(group, "frame_first").setEnabled(custom)
    _param(group, "frame_last").setEnabled(custom)


def sparsemat_nodes(app: Any) -> list[Any]:
    """Every SparseMat node of the project, also inside groups (``App`` is a ``Group``: ``getChildren()``)."""
    found: list[Any] = []
    pending = list(app.getChildren())
    while pending:
        node = pending.pop(0)
        if node.getPluginID() == PLUGIN_ID:
            found.append(node)  # its own inner nodes are the plug-in's, not the user's
        elif hasattr(node, "getChildren"):
            pending.extend(node.getChildren())
    return found


def fill_missing(app: Any, frames: list[int]) -> list[str]:
    """Render every SparseMat node's missing frames of ``frames`` (farm); raises on failure."""
    problems = []
    nodes = sparsemat_nodes(app)
    for group in nodes:
        outcome = render(group, app, frames)
        if outcome is not None and not outcome.ok:
            problems.append(f"SparseMat {group.getScriptName()}: {outcome.summary()}")
    if problems:
        raise RuntimeError("\n".join(problems))
    return [g.getScriptName() for g in nodes]


def register() -> None:
    """Called by init.py: nothing to register at start-up beyond the import paths (kept for symmetry)."""
