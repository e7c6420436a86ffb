"""SparseMat for Nuke: the Nodes toolbar entry (GUI only)."""

import nuke

_toolbar = nuke.toolbar("Nodes")
_menu = _toolbar.addMenu("SparseMat", icon="SparseMat.png")
_menu.addCommand(
    "SparseMat",
    "nuke.createNode('SparseMat')",
    icon="SparseMat.png",
    tooltip="Ultrahigh-resolution matte refinement: plate in Source, optional rough matte in Matte.",
)

try:  # dockable SparseMat panel (Windows > Custom > SparseMat); needs PySide6, shipped with Nuke 16
    import sparsemat_ui.nuke_panel

    sparsemat_ui.nuke_panel.register()
except ImportError:
    pass
