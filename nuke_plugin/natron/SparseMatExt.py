"""Hand-written additions to the SparseMat PyPlug: callbacks and the first refresh."""

import sparsemat_natron


def createInstanceExt(app, group):
    group.onParamChanged.set("SparseMatExt.onParamChanged")
    sparsemat_natron.refresh(group, app)


def onParamChanged(thisParam, thisNode, thisGroup, app, userEdited):
    sparsemat_natron.on_param_changed(thisParam, thisNode, thisGroup, app, userEdited)
