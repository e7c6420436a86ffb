"""NatronRenderer onload script: fill missing SparseMat cache frames before the Writers render.

    NatronRenderer -l /path/to/nuke_plugin/natron/sparsemat_fill.py -w Write1 101-150 shot.ntp

The frames come from SPARSEMAT_FRAMES (e.g. "101-150"), else from the ``-w Writer A-B`` range on the
command line, else from the project's frame range. A failed frame raises, which fails the task
with the engine's message.
"""

import os
import sys

import NatronEngine
import sparsemat_natron
from sparsemat_host import cache


def _frames(app, argv):
    if os.environ.get("SPARSEMAT_FRAMES"):
        return cache.parse_frame_ranges(os.environ["SPARSEMAT_FRAMES"])
    for i, arg in enumerate(argv):
        if arg in ("-w", "--writer") and i + 2 < len(argv) and argv[i + 2][:1].isdigit():
            return cache.parse_frame_ranges(argv[i + 2])
    project = app.getProjectParam("frameRange")
    return list(range(int(project.getValue(0)), int(project.getValue(1)) + 1))


def run(app, argv):
    return sparsemat_natron.fill_missing(app, _frames(app, argv))


_app = globals().get("app") or globals().get("app1") or NatronEngine.natron.getInstance(0)
run(_app, list(getattr(sys, "argv", [])))
