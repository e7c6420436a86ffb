"""SparseMat for Natron (runs in every mode, builds no UI): import paths for the PyPlug.

Found through NATRON_PLUGIN_PATH (this folder) or registered by install.py in ~/.Natron/init.py.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import sparsemat_natron  # noqa: E402  (adds the engine settings and the shared host logic to sys.path)

sparsemat_natron.register()
