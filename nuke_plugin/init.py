"""SparseMat for Nuke: registers paths and callbacks (runs in every mode; builds no UI).

Added to Nuke's plugin path by install.py (``nuke.pluginAddPath`` in ~/.nuke/init.py), or put
this folder on ``NUKE_PATH``. The toolbar entry is in menu.py (GUI only).
"""

import os
import sys

import nuke

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)

# The engine's pure-Python settings module (no torch) is read from the repository's core/.
for _path in (_HERE, os.path.join(_REPO, "core")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

nuke.pluginAddPath(os.path.join(_REPO, "gizmos").replace("\\", "/"))
nuke.pluginAddPath(os.path.join(_REPO, "icons").replace("\\", "/"))

import sparsemat_nuke.farm  # noqa: E402
import sparsemat_nuke.node  # noqa: E402

# SparseMat.gizmo holds a Group, so the node is a Group (self-contained in scripts); the callbacks
# check for the SparseMat marker knob and return at once for other groups.
nuke.addOnCreate(sparsemat_nuke.node.on_create, nodeClass="Group")
nuke.addKnobChanged(sparsemat_nuke.node.knob_changed, nodeClass="Group")
nuke.addBeforeRender(sparsemat_nuke.farm.before_render, nodeClass="Write")
