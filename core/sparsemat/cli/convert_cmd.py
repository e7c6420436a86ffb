"""``sparsemat convert-official [LPN.pth] [SparseMat.pth] -o DIR``: convert the official SparseMat checkpoints
(spconv 1.x) with :func:`sparsemat.convert.convert_official`.

The converted SHM (``DIR/shm_official.pt``) was trained on the official LPN's context features, so it is run
with the LPN prior: ``sparsemat render ... --model DIR/shm_official.pt --prior lpn`` after copying
``DIR/lpn.pt`` to ``sparsemat/weights/lpn.pt`` (or passing it where the LPN prior takes its weights).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``convert-official`` flags."""
    parser.add_argument("checkpoints", nargs="+", metavar="PTH",
                        help="official lpn.pth and/or SparseMat.pth (the whole network, lpn.* + shm.*)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for lpn.pt and shm_official.pt")
    parser.add_argument("--lpn", default=None, metavar="PTH", help="the LPN file, when the order is ambiguous")


def _classify(paths: list[str], lpn: str | None) -> tuple[str | None, str | None]:
    """``(lpn_pth, shm_pth)``: a file whose name contains ``lpn`` is the LPN, the other the whole network."""
    from sparsemat.errors import SettingsError

    if len(paths) > 2:
        raise SettingsError("checkpoints", paths, "give at most two files: lpn.pth and SparseMat.pth")
    lpn_pth = lpn
    rest = [p for p in paths if p != lpn]
    if lpn_pth is None:
        named = [p for p in rest if "lpn" in Path(p).name.lower()]
        if len(rest) == 2:
            lpn_pth = named[0] if len(named) == 1 else rest[0]
            rest = [p for p in rest if p != lpn_pth]
        elif len(rest) == 1 and named:
            lpn_pth, rest = rest[0], []
    if len(rest) > 1:
        raise SettingsError("checkpoints", paths, "name the LPN file with --lpn")
    return lpn_pth, (rest[0] if rest else None)


def run(args: argparse.Namespace) -> int:
    """Convert and print what was written; 0 on success (errors surface as ModelError → exit 1)."""
    from sparsemat.convert import convert_official

    lpn_pth, shm_pth = _classify(list(args.checkpoints), args.lpn)
    written = convert_official(lpn_pth, shm_pth, args.out)
    for part, path in written.items():
        print(f"{part}: {path}")
    if "shm" in written:
        print("The converted SHM uses the LPN's context: render it with the LPN prior "
              f"(--model {written['shm']} --prior lpn, LPN weights from {written.get('lpn', 'sparsemat/weights/lpn.pt')}).",
              file=sys.stderr)
    return 0
