"""Limits of a container or farm slot (sparsemat.engine.cgroup) and what follows them: the automatic
active-pixel budget's memory and a render's thread count. Hosts are fake ``/proc`` and ``/sys`` trees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sparsemat.cli.threads import job_threads
from sparsemat.engine.budget import available_memory_bytes
from sparsemat.engine.cgroup import cpu_quota


def _fake_host(root: Path, cgroup: str, files: dict[str, str], meminfo_gb: int = 128) -> Path:
    """A file-system root with ``/proc/meminfo``, ``/proc/self/cgroup`` and the given ``/sys/fs/cgroup`` files."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/meminfo").write_text(f"MemTotal: {meminfo_gb << 20} kB\nMemAvailable: {meminfo_gb << 20} kB\n")
    (root / "proc/self/cgroup").write_text(cgroup)
    for name, text in files.items():
        (root / "sys/fs/cgroup" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "sys/fs/cgroup" / name).write_text(text)
    return root


def test_free_memory_is_capped_by_the_jobs_control_group(tmp_path: Path) -> None:
    """A farm slot limited to 16 GB on a 128 GB host must not size its budget from the host's memory."""
    cpu, gib = torch.device("cpu"), 1 << 30
    v2 = _fake_host(tmp_path / "v2", "0::/farm/slot3\n", {
        "farm/memory.max": "max\n", "farm/memory.current": str(20 * gib),
        "farm/slot3/memory.max": str(16 * gib), "farm/slot3/memory.current": str(6 * gib),
        "farm/slot3/memory.stat": f"anon {4 * gib}\ninactive_file {2 * gib}\n"})
    assert available_memory_bytes(cpu, v2) == 12 * gib  # 16 − (6 − 2 reclaimable cache)
    parent = _fake_host(tmp_path / "parent", "0::/farm/slot3\n", {
        "farm/memory.max": str(10 * gib), "farm/memory.current": str(7 * gib),
        "farm/slot3/memory.max": "max\n", "farm/slot3/memory.current": str(6 * gib)})
    assert available_memory_bytes(cpu, parent) == 3 * gib  # the parent's limit binds
    v1 = _fake_host(tmp_path / "v1", "4:memory:/docker/abc\n0::/\n", {
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": str(gib),
        "memory/docker/abc/memory.limit_in_bytes": str(8 * gib),
        "memory/docker/abc/memory.usage_in_bytes": str(gib)})
    assert available_memory_bytes(cpu, v1) == 7 * gib
    namespaced = _fake_host(tmp_path / "ns", "0::/\n", {"memory.max": str(4 * gib), "memory.current": "0"})
    assert available_memory_bytes(cpu, namespaced) == 4 * gib
    unlimited = _fake_host(tmp_path / "free", "0::/user.slice\n", {"user.slice/memory.max": "max\n",
                                                                     "user.slice/memory.current": str(gib)})
    assert available_memory_bytes(cpu, unlimited) == 128 * gib


def test_cpu_quota_of_the_job_sets_a_renders_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sizes its pool from the host's cores; a container given 4 of 64 would run 64 threads."""
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    v2 = _fake_host(tmp_path / "v2", "0::/farm/slot3\n", {"farm/cpu.max": "800000 100000\n",
                                                          "farm/slot3/cpu.max": "350000 100000\n"})
    assert cpu_quota(v2) == 3.5
    assert job_threads(0, {}, v2) == 4 and job_threads(2, {}, v2) == 2
    assert job_threads(0, {"CUE_THREADS": "6"}, v2) == 6  # OpenCue's own figure wins
    v1 = _fake_host(tmp_path / "v1", "3:cpu,cpuacct:/docker/abc\n", {
        "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000",
        "cpu/docker/abc/cpu.cfs_quota_us": "200000", "cpu/docker/abc/cpu.cfs_period_us": "100000"})
    assert cpu_quota(v1) == 2.0 and job_threads(0, {}, v1) == 2
    free = _fake_host(tmp_path / "free", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cpu_quota(free) is None and job_threads(0, {}, free) == 0
    wide = _fake_host(tmp_path / "wide", "0::/\n", {"cpu.max": "12800000 100000\n"})  # more than the cores
    assert job_threads(0, {}, wide) == 0
