"""SparseMat's Qt front end: viewer, knob panel, render worker, range render and the Nuke panel.

A separate package so the engine (:mod:`sparsemat`) never imports Qt. Everything here uses
PySide6 (Nuke 16 ships PySide6); the knob panel is generated from
:data:`sparsemat.settings.ENGINE_KNOBS` and :data:`sparsemat.settings.OUTPUT_KNOBS`.

Modules:
    app: the standalone window of ``sparsemat ui``.
    viewer: numpy → QImage compositing (plate, alpha, RGBA over checkerboard, sparsity overlay,
        A/B wipe, exposure/gamma) and the zoom/pan viewer widget.
    knob_panel: the knob widgets built from the settings' :class:`~sparsemat.settings.KnobSpec`.
    worker: the render worker thread (debounce, newer requests supersede older ones).
    range_render: renders a frame range through the CLI's own ``render`` code path, cancellable.
    nuke_panel: the dockable Nuke panel following the selected SparseMat node.
"""
