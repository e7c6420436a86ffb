"""How many CPU threads a command may use: ``--threads N``, OpenCue's ``$CUE_THREADS``, or the container's quota.

torch and OpenImageIO size their pools from the host's cores; a farm slot that shares its machine, or a
container given a few of many cores, wants its own share instead (render, doctor).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from pathlib import Path

from sparsemat.errors import SettingsError


def add_threads_flag(group: argparse._ArgumentGroup) -> None:
    """The ``--threads N`` flag (render, doctor); :func:`job_threads` reads it."""
    group.add_argument("--threads", type=int, default=0, metavar="N",
                       help="CPU threads for the engine and image I/O; 0: OpenCue's $CUE_THREADS when it is set, "
                            "else the container's CPU quota, else every core (give a farm slot that shares its "
                            "machine its own share)")


def job_threads(flag: int, env: Mapping[str, str], root: Path = Path("/")) -> int:
    """CPU threads a render may use: ``flag`` when > 0, else ``$CUE_THREADS`` (OpenCue's cores for this frame),
    else the CPU quota of the job's control groups rounded up (a container given 4 of 64 cores), else 0 (every
    core). Raises :class:`SettingsError` (knob ``threads``) for a negative or unreadable value."""
    return thread_source(flag, env, root)[0]


def thread_source(flag: int, env: Mapping[str, str], root: Path = Path("/")) -> tuple[int, str]:
    """:func:`job_threads` and where the figure came from (``--threads``, ``$CUE_THREADS``, the quota, every core)."""
    if flag < 0:
        raise SettingsError("threads", flag, "give the number of CPU threads, or 0 for every core")
    if flag:
        return flag, "--threads"
    if env.get("CUE_THREADS"):
        try:
            return max(int(float(env["CUE_THREADS"])), 1), "$CUE_THREADS"  # whole cores, sometimes as "4.0"
        except ValueError:
            raise SettingsError("threads", env["CUE_THREADS"], "$CUE_THREADS is not a number of cores; unset it "
                                "or pass --threads N") from None
    from sparsemat.engine.cgroup import cpu_quota  # here: importing sparsemat.engine loads torch

    quota = cpu_quota(root)
    if quota is not None and quota < (os.cpu_count() or 1):
        return max(math.ceil(quota), 1), f"container CPU quota {quota:g}"
    return 0, "every core"


def use_threads(threads: int) -> None:
    """Give torch (and through it the ONNX priors) and OpenImageIO ``threads`` CPU threads; 0 leaves every core."""
    if threads <= 0:
        return
    import torch

    from sparsemat.io import set_threads

    torch.set_num_threads(threads)
    set_threads(threads)
