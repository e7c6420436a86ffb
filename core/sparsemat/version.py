"""Engine version, written into every output's metadata.

Raise it whenever the engine renders different pixels for the same knobs and model (hosts key their frame caches
on it, so a node never mixes frames of two engines). 0.2.0: the cascade hands each level the matte refined so far
as its prior (frames refined in more than one level change).
"""

__version__ = "0.2.0"
