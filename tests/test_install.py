"""install.py on a temporary HOME: marked blocks, idempotent, byte-exact uninstall, torch choice."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _install(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SPARSEMAT_CONFIG"}
    env["HOME"] = str(home)
    result = subprocess.run([sys.executable, str(REPO / "install.py"), *args], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_is_idempotent_and_uninstall_restores_bytes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".nuke").mkdir(parents=True)
    user_lines = b"import nuke\nnuke.pluginAddPath('/studio/tools')  # mine\n# no newline at the end"
    (home / ".nuke" / "init.py").write_bytes(user_lines)
    (home / ".nuke" / "menu.py").write_bytes(b"# untouched\n")
    before = _snapshot(home)

    out = _install(home, "--no-env")
    assert "added the SparseMat block" in out and "created" in out and "config.json" in out
    nuke_init = (home / ".nuke" / "init.py").read_text()
    assert nuke_init.startswith(user_lines.decode())  # user's lines kept as they were
    assert "# >>> sparsemat >>>" in nuke_init and "# <<< sparsemat <<<" in nuke_init
    assert f"nuke.pluginAddPath({(REPO / 'nuke_plugin').as_posix()!r})" in nuke_init
    natron_init = (home / ".Natron" / "init.py").read_text()
    assert "appendToNatronPath" in natron_init
    config = json.loads((home / ".sparsemat" / "config.json").read_text())
    assert Path(config["python"]).exists()

    after_first = _snapshot(home)
    out = _install(home, "--no-env")
    assert _snapshot(home) == after_first  # idempotent
    assert out.count("unchanged") >= 3

    _install(home, "--uninstall")
    assert _snapshot(home) == before
    assert not (home / ".Natron").exists() and not (home / ".sparsemat").exists()


def test_custom_host_folders_and_no_hosts(tmp_path: Path) -> None:
    home, nuke_home, natron_home = tmp_path / "h", tmp_path / "n", tmp_path / "a"
    home.mkdir()
    _install(home, "--no-env", "--no-hosts")
    assert not (home / ".nuke").exists() and (home / ".sparsemat" / "config.json").exists()
    _install(home, "--no-env", "--nuke-home", str(nuke_home), "--natron-home", str(natron_home))
    assert "sparsemat" in (nuke_home / "init.py").read_text() and (natron_home / "init.py").exists()
    assert not (home / ".nuke").exists()
    _install(home, "--uninstall", "--nuke-home", str(nuke_home), "--natron-home", str(natron_home))
    assert not nuke_home.exists() and not natron_home.exists()


def test_user_lines_after_the_block_survive_uninstall(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".nuke").mkdir(parents=True)
    (home / ".nuke" / "init.py").write_text("a = 1\n")
    _install(home, "--no-env")
    with open(home / ".nuke" / "init.py", "a") as handle:
        handle.write("b = 2\n")
    _install(home, "--uninstall")
    assert (home / ".nuke" / "init.py").read_text() == "a = 1\nb = 2\n"


def test_torch_is_never_a_cuda_build_without_a_gpu(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("sparsemat_install", REPO / "install.py")
    assert spec is not None and spec.loader is not None
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    (tmp_path / f"torch-2.13.0-{tag}-{tag}-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / f"torch-2.13.0+cpu-{tag}-{tag}-manylinux_2_28_x86_64.whl").write_bytes(b"")
    os.environ.pop("SPARSEMAT_TORCH_WHEEL", None)
    cpu = install.find_torch_wheel(cuda=False, extra_dirs=[tmp_path])
    assert cpu is not None and "+cpu" in cpu.name
    gpu = install.find_torch_wheel(cuda=True, extra_dirs=[tmp_path])
    assert gpu is not None and "+cpu" not in gpu.name
    assert install.torch_install_args(False, None) == ["torch==2.13.0", "--index-url", install.TORCH_CPU_INDEX]
    assert install.torch_install_args(True, None) == ["torch==2.13.0"]


def test_plain_uninstall_also_removes_blocks_in_custom_folders(tmp_path: Path) -> None:
    """An install into studio folders is undone by a plain --uninstall (the recorded files are unregistered)."""
    home, nuke_home = tmp_path / "h", tmp_path / "studio_nuke"
    home.mkdir()
    nuke_home.mkdir()
    (nuke_home / "init.py").write_bytes(b"import studio\n")
    _install(home, "--no-env", "--nuke-home", str(nuke_home), "--natron-home", str(tmp_path / "studio_natron"))
    _install(home, "--uninstall")
    assert (nuke_home / "init.py").read_bytes() == b"import studio\n"
    assert not (tmp_path / "studio_natron").exists()
    assert not (home / ".sparsemat" / "install_state.json").exists()
