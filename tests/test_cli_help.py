"""Every command's ``--help`` prints its usage (a ``%`` in a knob tooltip once crashed argparse's formatter)."""

from __future__ import annotations

import argparse

import pytest
from sparsemat.cli.main import build_parser
from sparsemat.settings import ENGINE_KNOBS


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {prefix.strip() or "sparsemat": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_subparsers(sub, f"{prefix} {name}"))
    return found


COMMANDS = _subparsers(build_parser())


def test_every_documented_command_is_found() -> None:
    assert {"render", "ui", "eval", "train", "bench", "demo", "convert-official"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_prints_usage(command: str) -> None:
    text = COMMANDS[command].format_help()
    assert text.startswith("usage: ")


def test_render_help_shows_tooltips_with_percent_signs_and_defaults() -> None:
    text = " ".join(COMMANDS["render"].format_help().split())
    cascade = next(k for k in ENGINE_KNOBS if k.name == "cascade_levels")
    assert "%" in cascade.tooltip
    assert "matte error 8-31 % lower" in text  # argparse must not choke on the % signs
    assert "--soft-edge-guard" in text and "(default: 0.1)" in text


@pytest.mark.parametrize("argv", [["--help"], ["render", "--help"], ["-q", "ui", "--help"]])
def test_help_and_a_render_import_nothing_they_do_not_run(argv: list[str]) -> None:
    """The module docstring's promise: sub-commands are imported only when used, so ``--help`` and a farm wrapper
    that parses a render's flags do not load torch (which ``train`` alone pulls in at import)."""
    import subprocess
    import sys

    code = ("import sys\nfrom sparsemat.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n"
            "    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr
    assert "usage: sparsemat" in done.stdout


def test_the_command_is_found_after_global_flags() -> None:
    from sparsemat.cli.main import _command_in

    assert _command_in(["-q", "--debug", "render", "train.####.exr"]) == "render"
    assert _command_in(["--help"]) == ""
