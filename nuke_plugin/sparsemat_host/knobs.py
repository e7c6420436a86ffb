"""The SparseMat node's knobs, generated from :mod:`sparsemat.settings`, and their mapping.

:data:`NODE_KNOBS` lists every knob of the Nuke gizmo and every param of the Natron PyPlug in
panel order. Engine and output knobs are built from ``ENGINE_KNOBS``/``OUTPUT_KNOBS`` (names,
labels, ranges, defaults and tooltips are never redefined here); the rest are the node's own
controls (frame range, buttons, status). :func:`settings_from_values` turns knob values into the
engine's :class:`~sparsemat.settings.Settings` and :class:`~sparsemat.settings.OutputSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, KnobSpec, OutputSettings, Settings

HostKind = Literal["tab", "string", "file", "int", "enum", "bool", "double", "button", "text"]

# Nuke addUserKnob type ids (nuke.KnobType) per host kind.
NUKE_TYPE_IDS: dict[str, int] = {
    "string": 1, "file": 2, "int": 3, "enum": 4, "bool": 6, "double": 7, "tab": 20, "button": 22, "text": 26,
}
# Nuke knob class per host kind (what nuke.Node.knob(name).Class() returns).
NUKE_KNOB_CLASSES: dict[str, str] = {
    "string": "String_Knob", "file": "File_Knob", "int": "Int_Knob", "enum": "Enumeration_Knob",
    "bool": "Boolean_Knob", "double": "Double_Knob", "tab": "Tab_Knob", "button": "PyScript_Knob",
    "text": "Text_Knob",
}

# Host-only enumeration items that stand for a free-form engine value taken from a file knob.
PRIOR_ONNX_ITEM = "onnx"
MODEL_FILE_ITEM = "file"

# Names of the nodes inside the group (gizmo and PyPlug), read by the adapters.
SOURCE_INPUT = "Source"
MATTE_INPUT = "Matte"
WRITE_SOURCE = "SparseMatWriteSource"
WRITE_MATTE = "SparseMatWriteMatte"
READ_RESULT = "SparseMatRead"
SLATE_TEXT = "SparseMatSlate"
CACHE_SWITCH = "SparseMatCacheSwitch"
INTERNAL_NODES: tuple[str, ...] = (SOURCE_INPUT, MATTE_INPUT, WRITE_SOURCE, WRITE_MATTE, READ_RESULT, SLATE_TEXT,
                                   CACHE_SWITCH)

# The plate colour space knob and its value that stands for the host's working space.
PLATE_COLORSPACE_KNOB = "plate_colorspace"
AUTO_COLORSPACE = "auto"

# Marker knob identifying a SparseMat node even after "convert to group"; holds the plugin version.
MARKER_KNOB = "sparsemat_node"
PLUGIN_VERSION = "1"


@dataclass(frozen=True)
class NodeKnob:
    """One knob of the SparseMat node.

    Attributes:
        name: Knob/param script name (engine knobs keep their :mod:`sparsemat.settings` name).
        label: Label shown in the panel.
        kind: Host-neutral kind (see :data:`NUKE_TYPE_IDS`).
        default: Default value (a string item for ``enum``).
        tooltip: Artist-facing help.
        items: Items of an ``enum`` knob.
        minimum: Slider minimum of a ``double`` knob.
        maximum: Slider maximum of a ``double`` knob.
        hidden: Not shown in the panel.
        startline: False to put the knob on the previous knob's line.
        engine: Name of the engine/output setting this knob maps to, if any.
        command: Python run by a ``button`` (Nuke PyScript knob), with ``nuke`` imported.
    """

    name: str
    label: str
    kind: HostKind
    default: Any = None
    tooltip: str = ""
    items: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    hidden: bool = False
    startline: bool = True
    engine: str | None = None
    command: str = ""

    @property
    def nuke_type(self) -> int:
        """The ``addUserKnob`` type id."""
        return NUKE_TYPE_IDS[self.kind]

    @property
    def nuke_class(self) -> str:
        """The Nuke knob class name."""
        return NUKE_KNOB_CLASSES[self.kind]


def _from_spec(spec: KnobSpec) -> NodeKnob:
    if spec.kind == "bool":
        return NodeKnob(spec.name, spec.label, "bool", spec.default, spec.tooltip, engine=spec.name)
    if spec.kind == "int":
        return NodeKnob(spec.name, spec.label, "int", spec.default, spec.tooltip, minimum=spec.minimum,
                        maximum=spec.maximum, engine=spec.name)
    if spec.kind == "float":
        return NodeKnob(spec.name, spec.label, "double", spec.default, spec.tooltip, minimum=spec.minimum,
                        maximum=spec.maximum, engine=spec.name)
    if spec.kind == "choice":
        items = spec.choices
        if spec.name == "prior":
            items = items + (PRIOR_ONNX_ITEM,)
        elif spec.name == "model":
            items = items + (MODEL_FILE_ITEM,)
        return NodeKnob(spec.name, spec.label, "enum", spec.default, spec.tooltip, items=items, engine=spec.name)
    return NodeKnob(spec.name, spec.label, "string", spec.default, spec.tooltip, engine=spec.name)


def _button(name: str, label: str, func: str, tooltip: str, startline: bool = False) -> NodeKnob:
    return NodeKnob(name, label, "button", None, tooltip, startline=startline,
                    command=f"import sparsemat_nuke.node\nsparsemat_nuke.node.{func}(nuke.thisNode())")


def _build_node_knobs() -> tuple[NodeKnob, ...]:
    knobs: list[NodeKnob] = [NodeKnob("sparsemat", "SparseMat", "tab")]
    for spec in ENGINE_KNOBS:
        knobs.append(_from_spec(spec))
        if spec.name == "prior":
            knobs.append(NodeKnob("onnx_file", "ONNX model", "file", "",
                                  "Your own prior model (.onnx), used when Prior is set to onnx. It gets the "
                                  "plate at prior resolution and must return a rough alpha."))
        elif spec.name == "model":
            knobs.append(NodeKnob("model_file", "Checkpoint", "file", "",
                                  "Your own refiner weights (.pt), used when Refiner model is set to file."))
    knobs.append(NodeKnob(PLATE_COLORSPACE_KNOB, "Plate colour space", "string", AUTO_COLORSPACE,
                          "The colour space of the Source's pixels as the node receives them. auto: the project's "
                          "working space (Project Settings > Color; linear Rec.709 with Nuke's own colour management "
                          "or the nuke-default config, ACEScg in ACES configs). Otherwise a name or alias from "
                          "OpenColorIO's studio config: ACEScg, lin_rec709, ACES2065-1, 'ACES - ACEScg' … The "
                          "network sees the plate in display sRGB; rgba output keeps the plate's own values."))
    knobs.append(NodeKnob("output_divider", "", "text", ""))
    knobs.extend(_from_spec(spec) for spec in OUTPUT_KNOBS)
    knobs.append(NodeKnob("range_divider", "", "text", ""))
    knobs.append(NodeKnob("use_script_range", "Use script frame range", "bool", True,
                          "Render the script's frame range (Project Settings). Turn off to pick your own range."))
    knobs.append(NodeKnob("frame_first", "Frame range", "int", 1, "First frame to render.", hidden=False))
    knobs.append(NodeKnob("frame_last", "to", "int", 100, "Last frame to render.", startline=False))
    knobs.append(NodeKnob("cache_dir", "Cache folder", "file", "",
                          "Where rendered mattes are kept. Empty: a sparsemat_cache folder next to the saved "
                          "script, so farm machines find the same files."))
    knobs.append(_button("render", "Render", "render",
                         "Compute the mattes for the frame range in the background. Frames already in the "
                         "cache for these settings are not computed again.", startline=True))
    knobs.append(_button("cancel", "Cancel", "cancel",
                         "Stop the running render. Finished frames are kept; the frame being computed is "
                         "discarded."))
    knobs.append(_button("reset_history", "Reset history", "reset_history",
                         "Forget the frames rendered with the current settings, so the next Render starts "
                         "fresh from the first frame."))
    knobs.append(_button("purge_cache", "Purge cache", "purge_cache",
                         "Delete every cached frame of this node, for all settings, and its copies of the inputs."))
    knobs.append(_button("copy_farm_command", "Copy farm command", "copy_farm_command",
                         "Copy a 'sparsemat render' command line for this node, to run as a separate farm "
                         "job before the comp render."))
    knobs.append(_button("check_setup", "Check setup", "check_setup",
                         "Ask the engine what a render with these settings would use on this machine (device, "
                         "weights, prior, colour, threads, memory) and what is wrong ('sparsemat doctor')."))
    knobs.append(NodeKnob("status", "Status", "text", "not rendered yet",
                          "Last rendered frame: share of pixels refined, time, and cascade levels used."))
    knobs.append(NodeKnob("cache_key", "cache key", "string", "", hidden=True))
    knobs.append(NodeKnob(MARKER_KNOB, "SparseMat node", "string", PLUGIN_VERSION, hidden=True))
    return tuple(knobs)


NODE_KNOBS: tuple[NodeKnob, ...] = _build_node_knobs()
KNOBS_BY_NAME: dict[str, NodeKnob] = {k.name: k for k in NODE_KNOBS}
ENGINE_KNOB_NAMES: tuple[str, ...] = tuple(k.name for k in ENGINE_KNOBS)
OUTPUT_KNOB_NAMES: tuple[str, ...] = tuple(k.name for k in OUTPUT_KNOBS)
# Knobs whose change selects another cache key.
KEY_KNOBS: frozenset[str] = frozenset(ENGINE_KNOB_NAMES + ("onnx_file", "model_file", "cache_dir", PLATE_COLORSPACE_KNOB))


def plate_colorspace(value: Any, working_space: str) -> str:
    """The engine's ``--input-colorspace`` for the Plate colour space knob: the host's working space for
    ``auto`` (or an empty knob), else the knob's own text."""
    text = str(value or "").strip()
    return working_space if text in ("", AUTO_COLORSPACE) else text


def settings_from_values(values: Mapping[str, Any]) -> tuple[Settings, OutputSettings]:
    """Map knob values to the engine's settings.

    Args:
        values: knob name → value as the host returns it (enum items as strings, bools as bool
            or 0/1, numbers as int/float). Missing knobs take the engine default.

    Returns:
        ``(Settings, OutputSettings)``; raises :class:`~sparsemat.errors.SettingsError` with an
        artist-readable message when a value is out of range.
    """
    engine: dict[str, Any] = {}
    for spec in ENGINE_KNOBS:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.kind == "bool":
            value = bool(value)
        elif spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif spec.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        engine[spec.name] = value
    if engine.get("prior") == PRIOR_ONNX_ITEM:
        engine["prior"] = "onnx:" + str(values.get("onnx_file", "")).strip()
    if engine.get("model") == MODEL_FILE_ITEM:
        engine["model"] = str(values.get("model_file", "")).strip() or MODEL_FILE_ITEM
    output = {name: values[name] for name in OUTPUT_KNOB_NAMES if name in values}
    return Settings(**engine), OutputSettings(**output)


def default_values() -> dict[str, Any]:
    """Every valued knob's default (what a fresh node holds)."""
    return {k.name: k.default for k in NODE_KNOBS if k.kind not in ("tab", "button")}
