# Natron PyPlug
"""SparseMat PyPlug for Natron: ultrahigh-resolution matte refinement (engine run as a sidecar)."""

import contextlib
import os

import sparsemat_natron

# Hand-written callbacks live in SparseMatExt.py. Natron evaluates callback strings such as
# "SparseMat.onParamChanged" against this PyPlug's module, so the extension is star-imported here
# (groups.rst, "Adding hand-written code").
with contextlib.suppress(ImportError):
    from SparseMatExt import *  # noqa: F403


def getPluginID():
    return sparsemat_natron.PLUGIN_ID


def getLabel():
    return "SparseMat"


def getVersion():
    return 1


def getIconPath():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "icons", "SparseMat.png")


def getGrouping():
    return "Keyer"


def getDescription():
    return ("Refines a rough matte into a full-resolution alpha, computing only the pixels that need it. "
            "Source: the plate; Matte (optional): a rough matte. Press Render to fill the cache.")


def createInstance(app, group):
    sparsemat_natron.create_params(group)
    sparsemat_natron.create_nodes(app, group)
    extension = globals().get("createInstanceExt")
    if extension is not None:
        extension(app, group)
