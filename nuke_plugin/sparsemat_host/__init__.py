"""Host-free logic shared by the Nuke and Natron adapters.

Imports only the standard library and :mod:`sparsemat.settings` (pure Python, no torch), so it
runs inside Nuke's and Natron's own interpreters. Pixels never pass through here: the adapters
write inputs with the host's Write nodes, :mod:`.sidecar` runs the engine CLI in the engine's
own Python, and the host reads the results back with a Read node.

Modules:
    knobs: the node's knob table (generated from ``ENGINE_KNOBS``/``OUTPUT_KNOBS``) and the
        mapping from knob values to :class:`~sparsemat.settings.Settings`.
    cache: cache folders and keys, frame patterns, missing frames, farm frame ranges.
    sidecar: engine configuration, command building, progress parsing, the render runner.
"""
