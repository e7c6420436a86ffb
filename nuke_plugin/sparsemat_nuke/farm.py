"""Batch-mode (farm) support: fill a SparseMat node's missing cache frames before Writes render.

``init.py`` registers :func:`before_render` with ``nuke.addBeforeRender`` for Write nodes. In batch
mode (``nuke -x``/``-F``/``-X``, any chunking) it finds every SparseMat node upstream of the Write
being rendered and runs the engine for the frames of the requested range that are not in the
cache yet. Where a render reads earlier frames (Temporal reuse on, a recurrent prior) the engine pre-rolls
from the keyframe before each chunk, so every chunk gives the same pixels as one long render. A failure
raises, which makes Nuke fail the task with the engine's message instead of writing slates or black frames.
"""

from __future__ import annotations

from typing import Any

import nuke
from sparsemat_host import cache
from sparsemat_host import knobs as K

from sparsemat_nuke import node as sm_node

_ACTIVE = {"depth": 0}


def upstream_sparsemat_nodes(start: Any) -> list[Any]:
    """SparseMat nodes upstream of ``start``, upstream-most first (so chained nodes fill in order)."""
    order: list[Any] = []
    seen: set[int] = set()

    def visit(n: Any) -> None:
        if n is None or id(n) in seen:
            return
        seen.add(id(n))
        for dep in n.dependencies():
            visit(dep)
        if sm_node.is_sparsemat(n):
            order.append(n)
        elif n.Class() in ("Group", "Gizmo") and hasattr(n, "output"):
            visit(n.output())  # a Group's dependencies() are only its inputs: walk its own graph too

    for dep in start.dependencies():
        visit(dep)
    return order


def requested_frames(write: Any) -> list[int]:
    """The frames this batch render asks for: ``-F`` ranges, else the Write's limit, else the script's."""
    frames = cache.farm_frames_from_args(list(getattr(nuke, "rawArgs", []) or []))
    if frames:
        return frames
    if write.knob("use_limit") is not None and write["use_limit"].value():
        return list(range(int(write["first"].value()), int(write["last"].value()) + 1))
    return list(range(nuke.root().firstFrame(), nuke.root().lastFrame() + 1))


def fill_missing(node: Any, frames: list[int]) -> list[int]:
    """Render ``node``'s frames of ``frames`` that are not cached; returns the frames rendered.

    Raises RuntimeError with the engine's message when a frame fails.
    """
    state = sm_node.refresh(node)
    if state is None:
        raise RuntimeError(f"SparseMat {node.fullName()}: {node['status'].value()}")
    missing = cache.missing_frames(state.output_pattern, frames)
    if not missing:
        return []
    _ACTIVE["depth"] += 1
    try:
        job = sm_node.render(node, frames=missing, wait=True)
    finally:
        _ACTIVE["depth"] -= 1
    if job is None or job.outcome is None:
        raise RuntimeError(f"SparseMat {node.fullName()} could not render: {node['status'].value()}")
    if not job.outcome.ok:
        raise RuntimeError(f"SparseMat {node.fullName()}: {job.outcome.summary()}")
    return sorted(job.outcome.done)


def before_render() -> None:
    """``beforeRender`` callback for Write nodes (batch mode only)."""
    if nuke.GUI or _ACTIVE["depth"]:
        return  # GUI renders use the Render button; our own internal Writes are executing
    write = nuke.thisNode()
    if write is None or write.name() in (K.WRITE_SOURCE, K.WRITE_MATTE):
        return
    nodes = upstream_sparsemat_nodes(write)
    if not nodes:
        return
    frames = requested_frames(write)
    for node in nodes:
        done = fill_missing(node, frames)
        if done:
            print(f"SparseMat {node.fullName()}: rendered {len(done)} missing frame(s) "
                  f"{done[0]}-{done[-1]} before {write.name()}", flush=True)
