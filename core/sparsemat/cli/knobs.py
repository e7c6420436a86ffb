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
