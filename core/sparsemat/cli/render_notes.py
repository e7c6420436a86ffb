"""What the render log says about a plate, once per render: its colour space, pixel aspect and stereo view when the
file decided them, and a log DPX about to be read as sRGB. Each function returns "" when there is nothing to say."""

from __future__ import annotations

from typing import Any


def eye_note(plate: Any, asked: str | None) -> str:
    """``; stereo plate (views left, right): view 'left' (the hero view; --eye right for the other)`` for stereo."""
    if len(plate.views) < 2:
        return ""
    others = ", ".join(v for v in plate.views if v != plate.view)
    how = "--eye" if asked is not None else "the hero view; --eye " + others + " for the other"
    return f"; stereo plate (views {', '.join(plate.views)}): view '{plate.view}' ({how})"


def log_file_read_as_display(plate: Any) -> str:
    """A warning for a DPX/Cineon plate whose header says its pixels are log but which is read with the default
    (sRGB) because no ``--input-colorspace`` was given; "" otherwise. Said once per render, not per frame."""
    transfer = str(plate.attributes.get("dpx:Transfer", ""))
    if not plate.colorspace_source.startswith("default") or transfer.lower() not in ("printing density", "logarithmic"):
        return ""
    return (f"{plate.path} says its pixels are log (DPX transfer: {transfer}) but is read as {plate.colorspace}, "
            "so the network sees flat, washed-out colour. Pass --input-colorspace with its log space: ADX10 for "
            "ADX film scans, or the camera's ('ARRI LogC3 (EI800)', 'S-Log3 S-Gamut3' …).")


def colour_note(plate: Any) -> str:
    """``; plate colour space ACEScg (the header's chromaticities: AP1 primaries)`` when the file named it, else ``""``."""
    if plate.colorspace_source.startswith(("default", "--")):
        return ""
    return f"; plate colour space {plate.colorspace} ({plate.colorspace_source})"


def aspect_note(plate: Any, override: float | None, prior_size: int) -> str:
    """``; pixel aspect 2 (…): the prior sees the plate desqueezed at W x H`` for non-square plates, else ``""``."""
    from sparsemat.priors.base import prior_input_size

    aspect = plate.window.pixel_aspect if override is None else override
    if aspect == 1.0:
        return ""
    where = "--pixel-aspect" if override is not None else "the plate's header"
    h, w = prior_input_size(plate.height, plate.width, prior_size, aspect)
    return f"; pixel aspect {aspect:g} ({where}): the prior sees the plate desqueezed, at {w}x{h}"
