"""A stand-in for ``python -m sparsemat`` that follows the render CLI contract (for fast, exact tests).

    fake_engine.py render IN -o OUT --frames A-B --progress json [knob flags] [--resume] ...

Each frame: if ``--resume`` and the output exists → "skipped"; if the input frame is missing or
listed in FAKE_ENGINE_FAIL (comma-separated) → "failed" with a message; else it writes a hidden
temp file, waits FAKE_ENGINE_DELAY seconds, copies the input frame's bytes to the temp file and
renames it into place (atomic, like the engine) → "done". FAKE_ENGINE_LOG (a path) receives one
JSON line per run: the argv and the frames rendered. Exit 0 / 1 (some failed) / 2 (bad usage).
"""

from __future__ import annotations

import json
import os
import sys
import time


def frame_path(pattern: str, frame: int) -> str:
    if "%04d" in pattern:
        return pattern % frame
    return pattern.replace("####", f"{frame:04d}")


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "render" or "-o" not in argv or "--frames" not in argv:
        print("usage: render IN -o OUT --frames A-B", file=sys.stderr)
        return 2
    source, output = argv[1], argv[argv.index("-o") + 1]
    first, last = (int(x) for x in argv[argv.index("--frames") + 1].split("-"))
    resume = "--resume" in argv
    delay = float(os.environ.get("FAKE_ENGINE_DELAY", "0"))
    fail = {int(x) for x in os.environ.get("FAKE_ENGINE_FAIL", "").split(",") if x}
    rendered: list[int] = []
    status = 0
    for frame in range(first, last + 1):
        out = frame_path(output, frame)
        src = frame_path(source, frame)
        if resume and os.path.exists(out):
            print(json.dumps({"frame": frame, "status": "skipped"}), flush=True)
            continue
        if frame in fail or not os.path.exists(src):
            msg = f"frame {frame}: cannot read {src}" if not os.path.exists(src) else f"frame {frame}: model exploded"
            print(json.dumps({"frame": frame, "status": "failed", "message": msg}), flush=True)
            status = 1
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.tmp-{os.getpid()}.exr")
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
            handle.flush()
            time.sleep(delay)
            with open(src, "rb") as plate:
                handle.seek(0)
                handle.truncate()
                handle.write(plate.read())
        os.replace(tmp, out)
        rendered.append(frame)
        print(json.dumps({"frame": frame, "status": "done", "active_share": 0.125, "seconds": delay,
                          "cascade_scales": [1.0]}), flush=True)
    if os.environ.get("FAKE_ENGINE_LOG"):
        with open(os.environ["FAKE_ENGINE_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"argv": argv, "rendered": rendered}) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
