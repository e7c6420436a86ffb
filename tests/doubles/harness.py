"""Shared setup for the host tests: import paths, tiny EXR plates, engine configuration, the Nuke session."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOUBLES = REPO / "tests" / "doubles"
for _p in (REPO / "core", REPO / "nuke_plugin", DOUBLES):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

FAKE_ENGINE = DOUBLES / "fake_engine.py"


def write_plates(folder: Path, frames: range, width: int = 64, height: int = 48, name: str = "plate",
                 pixel_aspect: float = 1.0) -> str:
    """A tiny RGBA half-float EXR sequence: a soft disc moving over a gradient. Returns the %04d pattern.

    ``pixel_aspect`` goes into the header as a format with non-square pixels would put it (anamorphic plates).
    """
    import numpy as np
    import OpenImageIO as oiio

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for f in frames:
        cx, cy = 20 + 3 * f, height / 2
        disc = np.clip(1.0 - (np.hypot(xx - cx, yy - cy) - 12) / 3, 0, 1)
        bg = np.stack([xx / width, yy / height, np.full_like(xx, 0.3)], -1) * 0.5
        fg = np.array([0.9, 0.6, 0.4], np.float32)
        rgb = bg * (1 - disc[..., None]) + fg * disc[..., None]
        rgba = np.concatenate([rgb, disc[..., None]], -1).astype(np.float32)
        spec = oiio.ImageSpec(width, height, 4, "half")
        spec.attribute("PixelAspectRatio", float(pixel_aspect))
        buf = oiio.ImageBuf(spec)
        buf.set_pixels(oiio.ROI(), rgba)
        assert buf.write(str(folder / f"{name}.{f:04d}.exr")), buf.geterror()
    return (folder / f"{name}.%04d.exr").as_posix()


def configure_engine(monkeypatch: Any, tmp_path: Path, fake: bool, **fake_env: str) -> Path:
    """Point the plugin at the real engine (this venv's python) or the fake one, via SPARSEMAT_CONFIG."""
    config = tmp_path / "sparsemat_config.json"
    data: dict[str, Any] = {"python": sys.executable}
    if fake:
        data["command"] = [sys.executable, str(FAKE_ENGINE)]
    config.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("SPARSEMAT_CONFIG", str(config))
    monkeypatch.delenv("SPARSEMAT_PYTHON", raising=False)
    monkeypatch.delenv("SPARSEMAT_ENGINE", raising=False)
    monkeypatch.delenv("SPARSEMAT_CACHE", raising=False)
    for key in ("FAKE_ENGINE_DELAY", "FAKE_ENGINE_FAIL", "FAKE_ENGINE_LOG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in fake_env.items():
        monkeypatch.setenv(key, value)
    return config


class NukeSession:
    """A fresh double session with the plugin's init.py run and a plate sequence on disk."""

    def __init__(self, tmp_path: Path, gui: bool = True, frames: range = range(1, 7), pixel_aspect: float = 1.0) -> None:
        import nuke

        self.nuke = nuke
        nuke._reset(gui=gui)
        from sparsemat_nuke import node as sm_node

        sm_node._JOBS.clear()
        runpy.run_path(str(REPO / "nuke_plugin" / "init.py"), run_name="init")
        self.tmp = tmp_path
        self.plate = write_plates(tmp_path / "plates", frames, pixel_aspect=pixel_aspect)
        self.matte = self.plate
        nuke.root()["name"].setValue((tmp_path / "shots" / "shot.nk").as_posix())
        nuke.root()["first_frame"].setValue(frames[0])
        nuke.root()["last_frame"].setValue(frames[-1])
        nuke._render_hook = self._render
        self.user_writes: list[tuple[str, int]] = []

    def _render(self, write: Any, frame: int) -> None:
        """What Nuke would do when a Write executes: put the frame's pixels in the file."""
        from sparsemat_host import knobs as K

        path = write["file"].evaluate(frame)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if write.name() in (K.WRITE_SOURCE, K.WRITE_MATTE):
            shutil.copyfile(self.plate % frame, path)
        else:
            Path(path).write_bytes(b"comp")
            self.user_writes.append((write.name(), frame))

    def make_node(self, matte: bool = False) -> Any:
        read = self.nuke.nodes.Read(file=self.plate)
        node = self.nuke.createNode("SparseMat")
        node.setInput(0, read)
        if matte:
            node.setInput(1, self.nuke.nodes.Read(file=self.matte))
        return node

    def finish(self, job: Any, timeout: float = 50.0) -> Any:
        """Run Nuke's main-thread queue until the job has finished (as Nuke's event loop would)."""
        deadline = time.monotonic() + timeout
        while job.running:
            self.nuke._process_main_thread()
            if time.monotonic() > deadline:
                job.cancel_event.set()
                raise TimeoutError("render did not finish")
            time.sleep(0.005)
        self.nuke._process_main_thread()
        return job.outcome
