"""Active-pixel budget: how many pixels one SHM pass may refine on this machine."""

from __future__ import annotations

from pathlib import Path

import torch

#: Safety share of free memory the SHM may use (the rest holds the plate, maps and I/O).
MEMORY_SHARE = 0.5
MIN_BUDGET = 50_000
MAX_BUDGET = 60_000_000


def available_memory_bytes(device: torch.device, root: Path = Path("/")) -> int:
    """Free memory on ``device`` in bytes.

    CUDA: ``mem_get_info``. CPU: ``MemAvailable`` of ``/proc/meminfo``, capped by this process's
    control group (:func:`cgroup_headroom_bytes`): a farm slot or container limited to 16 GB on a
    128 GB host sees the host's memory in ``/proc/meminfo``, and a budget sized from it gets the
    render killed. ``root`` is the file-system root to read (tests).
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    available = _meminfo_available(root)
    headroom = cgroup_headroom_bytes(root)
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


#: Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page).
_UNLIMITED = 1 << 60


def cgroup_headroom_bytes(root: Path = Path("/")) -> int | None:
    """Memory this process's control group may still take: limit − (usage − inactive file cache), in bytes.

    Reads cgroup v2 (``memory.max``, ``memory.current``, ``memory.stat``) or v1 (``memory.limit_in_bytes``,
    ``memory.usage_in_bytes``, ``memory.stat``) of the group named in ``/proc/self/cgroup``, or of the
    mount's root when a cgroup namespace hides the path, and of every group above it (a limit set on a
    parent binds too); the smallest headroom wins. None when no limit is set or nothing is readable.
    """
    try:
        lines = (root / "proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    found: list[int] = []
    for line in lines:  # a hybrid host lists v1 controllers and the v2 group: every limit binds
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, group = parts
        if controllers == "":  # v2 unified hierarchy
            files = ("memory.max", "memory.current", "inactive_file")
            mount = root / "sys/fs/cgroup"
        elif "memory" in controllers.split(","):
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            mount = root / "sys/fs/cgroup/memory"
        else:
            continue
        folder = mount / group.strip("/")
        found += [h for h in (_headroom(f, *files) for f in (folder, *folder.parents) if f.is_relative_to(mount))
                  if h is not None]
    return min(found) if found else None


def _headroom(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit_text = (folder / limit_file).read_text(encoding="ascii").strip()
        usage = int((folder / usage_file).read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= _UNLIMITED:
        return None
    inactive = 0
    try:
        for line in (folder / "memory.stat").read_text(encoding="ascii").splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key:
                inactive = int(value)
    except (OSError, ValueError):
        pass
    return max(0, int(limit_text) - max(0, usage - inactive))


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
