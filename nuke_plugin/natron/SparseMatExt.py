"""Hand-written additions to the SparseMat PyPlug: callbacks and the first refresh."""

import sparsemat_natron


def createInstanceExt(app, group):
    # The PyPlug's name is the prefix: SparseMat.py star-imports this module (groups.rst).
    group.onParamChanged.set("SparseMat.onParamChanged")
    group.onInputChanged.set("SparseMat.onInputChanged")
    sparsemat_natron.refresh(group, app)


def onParamChanged(thisParam, thisNode, thisGroup, app, userEdited):
    sparsemat_natron.on_param_changed(thisParam, thisNode, thisGroup, app, userEdited)


def onInputChanged(inputIndex, thisNode, thisGroup, app):
    # A new Source or Matte means other inputs: show their cache (or the "not rendered" slate), never the old one.
    sparsemat_natron.refresh(thisNode, app)
