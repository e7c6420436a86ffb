"""CLI flags generated from the one knob definition in :mod:`sparsemat.settings`."""

from __future__ import annotations

import argparse
from typing import Any

from sparsemat.settings import ENGINE_KNOBS, OUTPUT_KNOBS, KnobSpec, OutputSettings, Settings


def _add(group: argparse._ArgumentGroup, spec: KnobSpec) -> None:
    # argparse %-formats help strings: a tooltip's "8 %" must reach it as "8 %%"
    help_text = f"{spec.tooltip} (default: {spec.default})".replace("%", "%%")
    if spec.kind == "bool":
        group.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        return
    kind: Any = {"int": int, "float": float}.get(spec.kind, str)
    metavar = "|".join(spec.choices) if spec.choices and not spec.open_choice_prefixes else spec.name.upper()
    group.add_argument(spec.flag, dest=spec.name, type=kind, default=None, metavar=metavar, help=help_text)


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per engine knob (``--threshold``, ``--kernel-size``, …); unset flags stay None."""
    group = parser.add_argument_group("engine knobs")
    for spec in ENGINE_KNOBS:
        _add(group, spec)


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """Build :class:`Settings` from the flags the user set; defaults live only in the settings module."""
    given = {s.name: getattr(args, s.name) for s in ENGINE_KNOBS if getattr(args, s.name, None) is not None}
    return (base or Settings()).replace(**given)


def output_settings_from_args(args: argparse.Namespace) -> OutputSettings:
    """Build :class:`OutputSettings` from ``--output-mode`` and ``--overlay``."""
    given: dict[str, Any] = {}
    if getattr(args, "output_mode", None) is not None:
        given["output_mode"] = args.output_mode
    overlay = getattr(args, "overlay", None)
    if overlay is not None:
        given["overlay"] = "sparsity" if overlay is True else overlay
    return OutputSettings(**given)


def knob_choices(name: str) -> tuple[str, ...]:
    """Allowed values of an output knob, for argparse ``choices``."""
    return next(s.choices for s in OUTPUT_KNOBS if s.name == name)


def pixel_aspect_arg(text: str) -> float:
    """``--pixel-aspect`` value: a pixel's width over its height, 0.1-10 (2 for a 2x anamorphic squeeze)."""
    from sparsemat.io.window import PIXEL_ASPECT_RANGE, valid_pixel_aspect

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number (e.g. 2 for a 2x anamorphic plate)") from None
    if not valid_pixel_aspect(value):
        low, high = PIXEL_ASPECT_RANGE
        raise argparse.ArgumentTypeError(f"{text} is outside {low:g}-{high:g} (e.g. 2 for a 2x anamorphic plate)")
    return value


def add_plate_flags(parser: argparse.ArgumentParser) -> None:
    """How to read the plate (``render`` and ``ui``): colour space, pixel aspect, stereo eye, layer."""
    parser.add_argument(
        "--input-colorspace", metavar="NAME",
        help="colour space of the plate, any name or alias of OpenColorIO's studio config (ACEScg, lin_rec709, "
             "'ARRI LogC3 (EI800)', 'S-Log3 S-Gamut3' …); default: what an EXR's header names (ACES container, "
             "chromaticities), else lin_rec709 for EXR and sRGB for PNG/JPEG/TIFF",
    )
    parser.add_argument(
        "--pixel-aspect", type=pixel_aspect_arg, metavar="RATIO",
        help="pixel width / height of the plate (2 for 2x anamorphic); the prior sees the plate desqueezed "
             "(default: the plate file's own, e.g. the EXR header's pixelAspectRatio; square for most files)",
    )
    parser.add_argument(
        "--eye", metavar="VIEW",
        help="view (eye) of a stereo, multi-view EXR to matte, e.g. left or right (default: its hero view, the "
             "first); render each eye to its own output",
    )
    parser.add_argument(
        "--layer", metavar="NAME",
        help="layer of a multi-layer EXR that holds the plate's colour, e.g. plate for plate.R/G/B (default: "
             "R, G, B, then rgba, beauty, then the first layer with all three)",
    )
