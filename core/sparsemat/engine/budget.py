"""Active-pixel budget: how many pixels one SHM pass may refine on this machine."""

from __future__ import annotations

from pathlib import Path

import torch

from sparsemat.engine.cgroup import memory_headroom_bytes

#: Safety share of free memory the SHM may use (the rest holds the plate, maps and I/O).
MEMORY_SHARE = 0.5
MIN_BUDGET = 50_000
MAX_BUDGET = 60_000_000


def available_memory_bytes(device: torch.device, root: Path = Path("/")) -> int:
    """Free memory on ``device`` in bytes.

    CUDA: ``mem_get_info``. CPU: ``MemAvailable`` of ``/proc/meminfo``, capped by this process's
    control groups (:func:`~sparsemat.engine.cgroup.memory_headroom_bytes`): a farm slot or container
    limited to 16 GB on a 128 GB host sees the host's memory in ``/proc/meminfo``, and a budget sized
    from it gets the render killed. ``root`` is the file-system root to read (tests).
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    available = _meminfo_available(root)
    headroom = memory_headroom_bytes(root)
    if available is None:
        available = 8 * 1024**3  # conservative guess where /proc is unavailable (macOS, Windows)
    return available if headroom is None else max(0, min(available, headroom))


def _meminfo_available(root: Path) -> int | None:
    try:
        for line in (root / "proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def default_budget(bytes_per_site: float, device: torch.device) -> int:
    """Budget derived from free memory: ``MEMORY_SHARE · free / bytes_per_site``, clamped.

    Args:
        bytes_per_site: measured peak bytes one active full-resolution pixel costs in an SHM pass.
        device: where the SHM runs.
    """
    budget = int(MEMORY_SHARE * available_memory_bytes(device) / max(bytes_per_site, 1.0))
    return max(MIN_BUDGET, min(MAX_BUDGET, budget))


def cascade_scales(levels: int) -> list[float]:
    """Scales run by the cascade, coarse to fine: 1 → [1.0], 2 → [0.5, 1.0], 3 → [0.25, 0.5, 1.0]."""
    return [0.25, 0.5, 1.0][3 - levels :]
