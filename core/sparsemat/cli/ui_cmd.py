"""``sparsemat ui``: the interactive viewer and knob panel (PySide6), for tweaking knobs live.

The window lives in the separate :mod:`sparsemat_ui` package, imported only here and only when the
command runs, so the engine never imports Qt. Without PySide6 the command says how to install it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sparsemat.cli.knobs import add_engine_flags, add_plate_flags, knob_choices

#: View modes of the viewer (kept here so ``--help`` works without Qt; checked against the UI's list).
VIEW_MODES: tuple[str, ...] = ("plate", "alpha", "rgba", "overlay", "prior")

INSTALL_HINT = (
    "sparsemat ui needs PySide6, which is not installed in this Python ({python}). "
    "Install it with: pip install 'sparsemat[ui]' (or pip install PySide6-Essentials). "
    "Inside Nuke 16 use the SparseMat panel (Windows ▸ Custom ▸ SparseMat) instead."
)


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``ui`` flags."""
    parser.add_argument("plate", help="plate image or sequence (plate.%%04d.exr or plate.####.exr)")
    parser.add_argument(
        "--prior", "--matte", dest="matte", metavar="PATTERN",
        help="external matte per frame (roto, keyer, another model) for the 'input' prior",
    )
    parser.add_argument("--prior-channel", metavar="NAME", help="channel of --prior to use as the matte")
    parser.add_argument("--frames", help="frames to show, e.g. 1001-1100 (default: all on disk)")
    add_plate_flags(parser)
    parser.add_argument("-o", "--output", metavar="PATTERN",
                        help="output pattern for Render range (default: a sparsemat/ folder beside the plate)")
    parser.add_argument("--view", choices=VIEW_MODES, default="rgba",
                        help="initial view: plate, alpha, rgba (over a checkerboard), overlay (sparsity), prior")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="render the window offscreen into this PNG once the first frame is shown, then exit")
    out = parser.add_argument_group("output")
    out.add_argument("--output-mode", choices=knob_choices("output_mode"), default=None,
                     help="output mode used by Render range (alpha, rgba, premult)")
    out.add_argument("--overlay", choices=knob_choices("overlay"), default=None,
                     help="overlay channels written by Render range (off, sparsity, tint)")
    add_engine_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Open the window; returns the exit status (2 when PySide6 is missing)."""
    try:
        importlib.import_module("PySide6.QtWidgets")
    except ImportError:
        print("sparsemat ui: error: " + INSTALL_HINT.format(python=sys.executable), file=sys.stderr)
        return 2
    app = importlib.import_module("sparsemat_ui.app")
    return int(app.run_app(args))


__all__ = ["INSTALL_HINT", "VIEW_MODES", "add_parser", "run"]
