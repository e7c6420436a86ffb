"""Precompute a SparseMat node's cache as its own farm job.

    nuke -t precompute.py SCRIPT.nk NODE FIRST-LAST [--inputs-only]

Loads the script, then renders NODE's missing frames (the same as the batch-mode callback does
inside a comp render). With ``--inputs-only`` it only writes the input copies, for farms that
run the engine step (``sparsemat render ...``, from the node's "Copy farm command") as a
separate dependent job. Exit status: 0 ok, 1 failed frames, 2 bad usage.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import nuke
    from sparsemat_host import cache

    from sparsemat_nuke import farm
    from sparsemat_nuke import node as sm_node

    args = [a for a in argv if a != "--inputs-only"]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    script, name, frames_text = args
    nuke.scriptOpen(script)
    node = nuke.toNode(name)
    if not sm_node.is_sparsemat(node):
        print(f"precompute: {name} is not a SparseMat node in {script}", file=sys.stderr)
        return 2
    frames = cache.parse_frame_ranges(frames_text)
    if "--inputs-only" in argv:
        state = sm_node.refresh(node)
        if state is None:
            print(f"precompute: {node['status'].value()}", file=sys.stderr)
            return 2
        sm_node.write_inputs(node, state, frames)
        return 0
    try:
        farm.fill_missing(node, frames)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
