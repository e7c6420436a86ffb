"""One definition of every SparseMat knob: name, type, range, default and tooltip.

The CLI flags, the Nuke/Natron knobs and the Qt panel are all generated from
:data:`ENGINE_KNOBS` and :data:`OUTPUT_KNOBS`, so names, ranges, defaults and tooltips
cannot drift apart between front ends.

:class:`Settings` holds what changes the engine's pixels; :class:`OutputSettings` holds what
only changes how a result is written or shown (output mode, overlay).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sparsemat.errors import SettingsError

DEFAULT_MODEL = "lite_cs4"
"""The SHM the engine, the CLI, the demo and the yardstick use unless told otherwise (core/sparsemat/weights)."""

KnobKind = Literal["float", "int", "bool", "choice", "string"]


@dataclass(frozen=True)
class KnobSpec:
    """Describes one knob for every front end.

    Attributes:
        name: Python/CLI/host name (snake_case; the CLI flag is ``--name-with-dashes``).
        label: Short label shown next to the knob in a host or the UI.
        kind: Value type.
        default: Default value (the engine's default; front ends never redefine it).
        tooltip: One or two sentences in an artist's words.
        minimum: Lowest allowed value for numeric knobs (inclusive).
        maximum: Highest allowed value for numeric knobs (inclusive).
        choices: Allowed values for ``choice`` knobs.
        open_choice_prefixes: Prefixes that make a free-form value valid for a ``choice`` knob
            (e.g. ``"onnx:"`` for a user model path).
        cli_flag: CLI flag when it is not ``--`` + the name with dashes.
    """

    name: str
    label: str
    kind: KnobKind
    default: Any
    tooltip: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    open_choice_prefixes: tuple[str, ...] = ()
    cli_flag: str = ""

    @property
    def flag(self) -> str:
        """The CLI flag for this knob, e.g. ``--kernel-size`` (``--prior-model`` for ``prior``)."""
        return self.cli_flag or "--" + self.name.replace("_", "-")


ENGINE_KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec(
        "prior", "Prior", "choice", "auto",
        "Where the rough matte comes from. auto uses the Matte input when one is connected, "
        "else RVM when installed, else the built-in LPN. onnx:/path/model.onnx runs your own model.",
        choices=("auto", "input", "rvm", "lpn"), open_choice_prefixes=("onnx:",),
        cli_flag="--prior-model",  # --prior names the external matte files
    ),
    KnobSpec(
        "threshold", "Temporal threshold", "float", 0.05,
        "With Temporal reuse on: how much a pixel's colour must change from the previous frame (0-1, "
        "display-referred) before it is refined again. Higher reuses more of the previous frame; 0 refines "
        "every band pixel on every frame.",
        minimum=0.0, maximum=1.0,
    ),
    KnobSpec(
        "temporal", "Temporal reuse", "bool", False,
        "Reuse the previous frame's matte where the plate did not change, and refine only the rest: "
        "a speed option for long renders. In our tests it saved 13-69 % of the refiner's work and cost "
        "matte accuracy (up to 20 % more error) and steadiness (up to 50 % more flicker), because pixels "
        "refined next to reused ones see less of the edge. Off (default) refines every frame on its own.",
    ),
    KnobSpec(
        "kernel_size", "Edge width (kernel)", "int", 15,
        "Width in pixels of the band around the input matte's edge that gets refined (odd number). "
        "15 is what the shipped refiners were trained with; wider bands cost time and, in our validation, "
        "quality (grown mattes were trimmed less), so widen it only where strands reach farther than the "
        "band and check the result.",
        minimum=1, maximum=63,
    ),
    KnobSpec(
        "refine_strength", "Refine strength", "float", 1.0,
        "How far the refiner may move the matte away from the prior it was given. 1 uses the refined "
        "edge as it is; lower values blend towards the prior's edge (0 = no refinement). Lower it when "
        "soft, defocused or motion-blurred edges come out too hard or with a halo.",
        minimum=0.0, maximum=1.0,
    ),
    KnobSpec(
        "soft_edge_guard", "Soft-edge guard", "float", 0.1,
        "Keeps wide, soft transitions (defocus, smoke, motion blur) as the prior has them instead of "
        "refining them: refinement fades out where the prior's edge is wider than about 1/value prior "
        "pixels (0.1: about 10), except where the plate itself shows fine structure such as hair strands. "
        "0 turns the guard off, which keeps the most detail in dense fine hair; raise it when soft edges "
        "come out hardened or with a halo.",
        minimum=0.0, maximum=1.0,
    ),
    KnobSpec(
        "colour_bound", "Colour bound", "bool", False,
        "Keeps every refined value between the two estimates the refiner reads: the prior's edge and the "
        "alpha implied by the foreground and background colours next to it. Try it when a noisy matte's "
        "edge comes out harder than the plate or the matte spills onto background-coloured pixels; in our "
        "tests it lowered the error on noisy mattes and raised it slightly on choked (too tight) ones, so "
        "it is off by default. Only refiners that read those colours (lite_cs4 and the other lite_cs "
        "models) are affected.",
    ),
    KnobSpec(
        "cascade_levels", "Cascade levels", "int", 1,
        "1 refines once at full resolution. 2 refines at half, then full resolution, 3 at a quarter, "
        "half and full resolution; each pass hands its matte to the next as that pass's prior. Measured "
        "on synthetic plates, 2 repairs a grown, choked or broken matte better (matte error 8-31 % "
        "lower) but softens one that was already close (up to 34 % higher); 3 costs about 12 % on "
        "average at 2.5K and is on par at 4K. Keep 1 for a good prior, try 2 for a roto or keyer "
        "matte that is too big, too small or has holes; frames over the Active-pixel budget go through "
        "all 3.",
        minimum=1, maximum=3,
    ),
    KnobSpec(
        "max_active_pixels", "Active-pixel budget", "int", 0,
        "Most pixels refined in one pass. 0 picks a budget from this machine's free memory, within the memory "
        "limit of a container or farm slot. "
        "Frames over budget go through the cascade instead of running out of memory, at some cost in edge "
        "quality (see Cascade levels).",
        minimum=0, maximum=200_000_000,
    ),
    KnobSpec(
        "keyframe_interval", "Keyframe interval", "int", 8,
        "With Temporal reuse on or a recurrent prior (RVM): every N-th frame (by frame number) is computed "
        "from scratch, so farm chunks give the same pixels as one long render. 0 never restarts (chunks "
        "pre-roll from the first frame, at most 10,000 frames back).",
        minimum=0, maximum=10_000,
    ),
    KnobSpec(
        "model", "Refiner model", "choice", DEFAULT_MODEL,
        "Refinement network. lite_cs4 (default) reads the colours on either side of the edge and suits "
        "most mattes, including grown, coarse or noisy ones; lite_cs3 and lite_cs2 are previous defaults, "
        "kept so that older comps can render as before; lite_cs is the earlier version, best when the "
        "input matte is choked (eroded); lite ignores those colours and keeps a clean, sharp low-res "
        "matte closest to itself; lite_csw is lite_cs4 made 1.5 times wider: lower error on most "
        "mattes, most of all choked ones, but about 40 % slower and harder on the soft edges of noisy "
        "mattes; paper is the full-size network from the paper. A path to a .pt checkpoint loads your "
        "own weights.",
        choices=(DEFAULT_MODEL, "lite_csw", "lite_cs3", "lite_cs2", "lite_cs", "lite", "paper"), open_choice_prefixes=("/", "./", "~", "file:"),
    ),
    KnobSpec(
        "backend", "Backend", "choice", "auto",
        "How the sparse network runs. auto uses spconv on a CUDA GPU and the built-in sparse "
        "backend on CPU; dense runs the same network on every pixel (reference, slow).",
        choices=("auto", "torch", "spconv", "dense"),
    ),
    KnobSpec(
        "device", "Device", "choice", "auto",
        "Where to compute. auto uses a CUDA GPU when one is available.",
        choices=("auto", "cpu", "cuda"),
    ),
    KnobSpec(
        "prior_size", "Prior resolution", "int", 512,
        "Short side in pixels at which the prior network sees the plate.",
        minimum=128, maximum=2048,
    ),
)

OUTPUT_KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec(
        "output_mode", "Output", "choice", "rgba",
        "alpha writes only the matte; rgba keeps the plate's colour with the matte in alpha; "
        "premult multiplies the plate's colour by the matte.",
        choices=("alpha", "rgba", "premult"),
    ),
    KnobSpec(
        "overlay", "Overlay", "choice", "off",
        "Show which pixels were refined: 'sparsity' adds the map as a channel, 'tint' also "
        "tints refined pixels over the plate for viewing.",
        choices=("off", "sparsity", "tint"),
    ),
)

_SPECS: dict[str, KnobSpec] = {k.name: k for k in ENGINE_KNOBS + OUTPUT_KNOBS}


def knob(name: str) -> KnobSpec:
    """Return the :class:`KnobSpec` called ``name`` (KeyError if there is none)."""
    return _SPECS[name]


def _validate(spec: KnobSpec, value: Any) -> None:
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise SettingsError(spec.name, value, "use true or false")
        return
    if spec.kind in ("int", "float"):
        ok_types: tuple[type, ...] = (int,) if spec.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            raise SettingsError(spec.name, value, f"it must be a{'n integer' if spec.kind == 'int' else ' number'}")
        if value != value:  # NaN
            raise SettingsError(spec.name, value, "it must be a number")
        lo, hi, num = spec.minimum, spec.maximum, float(cast(float, value))
        if (lo is not None and num < lo) or (hi is not None and num > hi):
            raise SettingsError(spec.name, value, f"allowed range is {lo:g} to {hi:g}")
        return
    if not isinstance(value, str):
        raise SettingsError(spec.name, value, "it must be text")
    if spec.kind != "choice" or value in spec.choices:
        return
    if any(value.startswith(p) for p in spec.open_choice_prefixes):
        return
    if spec.name == "model" and value.endswith((".pt", ".pth")):
        return
    extra = f" or {', '.join(p + '…' for p in spec.open_choice_prefixes)}" if spec.open_choice_prefixes else ""
    raise SettingsError(spec.name, value, f"choose one of {', '.join(spec.choices)}{extra}")


@dataclass(frozen=True)
class Settings:
    """Engine settings: everything that changes the refined matte's pixels.

    Validated on construction; an invalid value raises :class:`~sparsemat.errors.SettingsError`
    naming the knob, the value and the allowed range. See :data:`ENGINE_KNOBS` for meanings.
    """

    prior: str = field(default=knob("prior").default)
    threshold: float = field(default=knob("threshold").default)
    temporal: bool = field(default=knob("temporal").default)
    kernel_size: int = field(default=knob("kernel_size").default)
    refine_strength: float = field(default=knob("refine_strength").default)
    soft_edge_guard: float = field(default=knob("soft_edge_guard").default)
    colour_bound: bool = field(default=knob("colour_bound").default)
    cascade_levels: int = field(default=knob("cascade_levels").default)
    max_active_pixels: int = field(default=knob("max_active_pixels").default)
    keyframe_interval: int = field(default=knob("keyframe_interval").default)
    model: str = field(default=knob("model").default)
    backend: str = field(default=knob("backend").default)
    device: str = field(default=knob("device").default)
    prior_size: int = field(default=knob("prior_size").default)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _validate(_SPECS[f.name], getattr(self, f.name))
        if self.kernel_size % 2 == 0:
            raise SettingsError("kernel_size", self.kernel_size, "it must be odd (1, 3, 5, … 63)")

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every knob, for metadata and JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        """Build from a dict, rejecting unknown knob names with a clear message."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise SettingsError(unknown[0], values[unknown[0]], f"unknown knob; known knobs are {', '.join(sorted(names))}")
        return cls(**values)

    def reads_earlier_frames(self, has_matte: bool) -> bool:
        """Whether rendering a frame may read the frames before it (pre-roll from its keyframe).

        True with Temporal reuse on, and with a prior that may keep state from frame to frame: ``rvm``, a user
        ``onnx:`` model (recurrent when it has ``r1i``… inputs), and ``auto`` without a matte (it may pick RVM).
        The engine decides exactly per frame (:class:`sparsemat.engine.Session`); hosts use this, without
        loading any model, to write only the input frames a render can read.

        Args:
            has_matte: whether a matte (Matte input, ``--prior`` files) is connected.
        """
        if self.temporal:
            return True
        return self.prior == "rvm" or self.prior.startswith("onnx:") or (self.prior == "auto" and not has_matte)

    def pixel_key(self) -> str:
        """Stable short hash of every setting that changes pixels (for caches and history)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class OutputSettings:
    """How a result is written or shown; never changes the matte itself."""

    output_mode: str = field(default=knob("output_mode").default)
    overlay: str = field(default=knob("overlay").default)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _validate(_SPECS[f.name], getattr(self, f.name))
