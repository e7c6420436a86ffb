"""Limits a container or farm slot puts on this process, read from its control groups (Linux).

``/proc/meminfo`` and the core count describe the host: a slot limited to 16 GB and 4 cores on a
128 GB, 64-core machine sees the host's figures there, and an engine sized from them is killed for
memory or runs 64 threads on 4 cores' time. Both cgroup versions are read (v1 per controller, v2
unified, hybrid hosts both), for this process's group and every group above it, since a parent's
limit binds too; where a cgroup namespace hides the path, the mount's root is this group. Every
function takes the file-system ``root`` to read, so tests can build a host in a temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page).
_UNLIMITED = 1 << 60


def _groups(controller: str, root: Path) -> list[tuple[int, Path]]:
    """``(version, folder)`` of every group whose ``controller`` limits bind this process, innermost first."""
    try:
        lines = (root / "proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    groups: list[tuple[int, Path]] = []
    for line in lines:  # "hierarchy-id:controllers:path"; v2's line has no controllers
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            version, mount = 2, root / "sys/fs/cgroup"
        elif controller in controllers.split(","):
            version, mount = 1, root / "sys/fs/cgroup" / controller
        else:
            continue
        folder = mount / path.strip("/")
        groups += [(version, f) for f in (folder, *folder.parents) if f.is_relative_to(mount)]
    return groups


def _smallest(controller: str, root: Path, read: Callable[[int, Path], float | None]) -> float | None:
    found = [value for version, folder in _groups(controller, root) if (value := read(version, folder)) is not None]
    return min(found) if found else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def memory_headroom_bytes(root: Path = Path("/")) -> int | None:
    """Memory the groups may still give this process: limit − (usage − inactive file cache), the smallest
    over the groups, in bytes; None when no limit is set or nothing is readable."""
    value = _smallest("memory", root, _memory_headroom)
    return None if value is None else int(value)


def _memory_headroom(version: int, folder: Path) -> float | None:
    names = ("memory.max", "memory.current", "inactive_file") if version == 2 else (
        "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
    limit, usage = _text(folder / names[0]), _text(folder / names[1])
    if limit is None or usage is None or not limit.isdigit() or not usage.isdigit() or int(limit) >= _UNLIMITED:
        return None  # "max", absent or unreadable
    inactive = 0
    for line in (_text(folder / "memory.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if key == names[2] and value.isdigit():
            inactive = int(value)
    return max(0, int(limit) - max(0, int(usage) - inactive))


def cpu_quota(root: Path = Path("/")) -> float | None:
    """CPUs' worth of time the groups allow (quota / period, the smallest over the groups), e.g. 4.0;
    None when no quota is set or nothing is readable."""
    return _smallest("cpu", root, _cpu_quota)


def _cpu_quota(version: int, folder: Path) -> float | None:
    if version == 2:
        fields = (_text(folder / "cpu.max") or "").split()
        quota, period = (fields + ["", ""])[:2]
    else:
        quota, period = _text(folder / "cpu.cfs_quota_us") or "", _text(folder / "cpu.cfs_period_us") or ""
    if not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None  # "max", -1, absent or unreadable
    return int(quota) / int(period)
