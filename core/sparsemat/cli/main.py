"""Entry point of the ``sparsemat`` command.

Sub-commands live in their own modules and are imported only when used, so ``sparsemat --help``
and farm wrappers start fast. Every :class:`~sparsemat.errors.SparseMatError` becomes a one-line
message (no traceback); ``--debug`` shows tracebacks for bug reports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from sparsemat.errors import SettingsError, SparseMatError
from sparsemat.version import __version__

#: sub-command → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("sparsemat.cli.render", "refine mattes for an image or a frame sequence"),
    "demo": ("sparsemat.cli.demo", "generate a 4K plate sequence in code, render it and report the error"),
    "eval": ("sparsemat.cli.eval_cmd", "compare predicted mattes with ground truth (MAD, MSE, SAD, Grad, Conn, dtSSD)"),
    "train": ("sparsemat.cli.train_cmd", "train the SHM or the LPN"),
    "convert-official": ("sparsemat.cli.convert_cmd", "convert the official SparseMat checkpoints"),
    "bench": ("sparsemat.cli.bench_cmd", "measure speed, memory and quality against dense and patch baselines"),
    "ui": ("sparsemat.cli.ui_cmd", "open the interactive viewer and knob panel (PySide6)"),
    "doctor": ("sparsemat.cli.doctor", "report what a render would use on this machine (device, weights, prior, "
                                       "colour, threads, memory budget) and what is wrong"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every sub-command registers its own flags.

    ``only`` names the one sub-command whose module is imported and whose flags are registered (the others are
    listed by name and help only), so ``sparsemat --help`` and a farm task's ``sparsemat render`` never import
    modules they do not run (``train`` alone pulls in torch); ``""`` registers none, None all.
    """
    parser = argparse.ArgumentParser(prog="sparsemat", description="Ultrahigh-resolution alpha matting with sparsity.")
    parser.add_argument("--version", action="version", version=f"sparsemat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (for bug reports)")
    parser.add_argument("--quiet", "-q", action="store_true", help="only print warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("sparsemat"):
                continue  # sub-command not part of this build
            raise
        module.add_parser(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The sub-command named in ``argv`` (the first word that is one), or "" when there is none (``--help``)."""
    return next((word for word in argv if word in COMMANDS), "")


#: Flags whose value may start with "-" (negative frame numbers: ``--frames -5--1``).
_NEGATIVE_VALUE_FLAGS = ("--frames",)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--frames -5--1`` → ``--frames=-5--1``: argparse would read ``-5--1`` as an unknown flag."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _NEGATIVE_VALUE_FLAGS and i + 1 < len(argv) and re.match(r"-?\d", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


class Terminated(KeyboardInterrupt):
    """SIGTERM (a farm cancelling or pre-empting a task, Nuke's Cancel) raised in the main thread, so the command
    stops the way Ctrl-C stops it: the frame being written is finished and no temp file is left behind."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def _sigterm_stops_cleanly() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only; the old handler comes back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status (0 ok, 1 failures, 2 bad usage)."""
    words = _join_negative_values(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command_in(words))
    args = parser.parse_args(words)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        with _sigterm_stops_cleanly():
            status = int(module.run(args))
        sys.stdout.flush()  # a closed pipe raises here, in the handler below, not at interpreter exit
        return status
    except SettingsError as exc:
        print(f"sparsemat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except SparseMatError as exc:
        if args.debug:
            raise
        print(f"sparsemat {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"sparsemat {args.command}: terminated (SIGTERM); frames already written are complete.", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"sparsemat {args.command}: interrupted; frames already written are complete.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (``| head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 1
