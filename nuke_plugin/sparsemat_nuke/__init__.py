"""Nuke adapter of SparseMat. Only this package (and init.py/menu.py) imports ``nuke``.

Modules:
    node: the gizmo's callbacks and buttons (Render, Cancel, Reset history, Purge cache, farm command).
    farm: the batch-mode before-render callback that fills missing cache frames before Writes run.
    precompute: ``nuke -t precompute.py script.nk NODE RANGE`` for a separate precompute farm job.
"""
