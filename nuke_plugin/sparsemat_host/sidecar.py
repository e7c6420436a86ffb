"""Finding, commanding and watching the engine process (the sidecar).

The engine runs in its own Python (the environment ``install.py`` set up), never inside the
host: ``<python> -m sparsemat render IN -o OUT --frames A-B --progress json ...``. With
``--progress json`` it prints one JSON object per frame; exit codes are 0 (all written),
1 (some frames failed) and 2 (bad usage). Outputs are written atomically.

Configuration, first match wins (layered like OpenCue's):
    1. ``SPARSEMAT_ENGINE`` — the full command prefix, e.g. ``/opt/sm/bin/python -m sparsemat``;
    2. ``SPARSEMAT_PYTHON`` — the engine's python (``-m sparsemat`` is appended);
    3. the JSON file named by ``SPARSEMAT_CONFIG``, else ``~/.sparsemat/config.json`` (written by
       install.py): ``{"python": "...", "command": [...] (optional), "repo": "..."}``.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsemat.settings import ENGINE_KNOBS, OutputSettings, Settings

CONFIG_ENV = "SPARSEMAT_CONFIG"
#: Variables a host sets for its own embedded Python (Nuke and Maya add to PYTHONHOME; pipelines put the host's
#: packages on PYTHONPATH). Passed on, they make the engine's Python load the host's standard library or
#: packages, and it dies before it starts ("failed to get the Python codec"). The engine never gets them; a
#: deployment whose engine needs a PYTHONPATH sets it in ``SPARSEMAT_ENGINE`` (``env PYTHONPATH=... python -m
#: sparsemat``).
HOST_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH")
# Flag naming the rough-matte sequence. The engine's ``--prior`` flag is the prior *choice*
# (auto|input|rvm|lpn|onnx:PATH), so the matte frames need a flag of their own.
MATTE_FLAG = "--matte"


class EngineNotFoundError(RuntimeError):
    """The engine's Python could not be found from the configuration."""


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where install.py writes the configuration (``SPARSEMAT_CONFIG`` overrides it)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    home = env.get("HOME") or env.get("USERPROFILE") or str(Path.home())
    return Path(home) / ".sparsemat" / "config.json"


def read_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The configuration file's contents ({} when there is none)."""
    path = default_config_path(env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise EngineNotFoundError(f"SparseMat configuration {path} cannot be read ({exc}); "
                                  "run 'python install.py' again.") from exc
    return data if isinstance(data, dict) else {}


def engine_command(env: Mapping[str, str] | None = None) -> list[str]:
    """The command prefix that runs the engine CLI (everything before ``render``)."""
    env = os.environ if env is None else env
    if env.get("SPARSEMAT_ENGINE"):
        return shlex.split(env["SPARSEMAT_ENGINE"])
    if env.get("SPARSEMAT_PYTHON"):
        return [env["SPARSEMAT_PYTHON"], "-m", "sparsemat"]
    config = read_config(env)
    if config.get("command"):
        return [str(part) for part in config["command"]]
    if config.get("python"):
        python = str(config["python"])
        if not Path(python).exists():
            raise EngineNotFoundError(f"The SparseMat engine Python {python} (from {default_config_path(env)}) "
                                      "does not exist; run 'python install.py' again.")
        return [python, "-m", "sparsemat"]
    raise EngineNotFoundError(f"SparseMat's engine is not configured: {default_config_path(env)} is missing. "
                              "Run 'python install.py' in the SparseMat folder, or set SPARSEMAT_PYTHON.")


def engine_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the engine runs in: ``env`` (default ``os.environ``) less :data:`HOST_PYTHON_VARIABLES`."""
    env = os.environ if env is None else env
    return {name: value for name, value in env.items() if name not in HOST_PYTHON_VARIABLES}


def settings_flags(settings: Settings) -> list[str]:
    """Engine knob flags, one per knob: ``--kernel-size 15``, ``--temporal``/``--no-temporal``."""
    values = settings.to_dict()
    flags: list[str] = []
    for spec in ENGINE_KNOBS:
        value = values[spec.name]
        if spec.kind == "bool":
            flags.append(spec.flag if value else "--no-" + spec.flag[2:])
        elif spec.kind == "float":
            flags += [spec.flag, repr(float(value))]
        else:
            flags += [spec.flag, str(value)]
    return flags


def render_command(
    engine: Sequence[str],
    source: str,
    output: str,
    first: int,
    last: int,
    settings: Settings,
    output_settings: OutputSettings | None = None,
    matte: str | None = None,
    resume: bool = True,
    cache_mode: bool = True,
    colorspace: str | None = None,
) -> list[str]:
    """The engine CLI command that renders ``first``–``last`` of ``source`` into ``output``.

    Args:
        colorspace: OCIO name of the source's pixels (``--input-colorspace``; the host's working space).
        cache_mode: write what the node caches (RGBA plus the sparsity channel) whatever the
            output knobs say; the node applies output mode and overlay when reading back, so
            changing them needs no new render (Nuke). False writes the output the knobs ask for
            (Natron, whose inner graph only reads the cache back).
    """
    cmd = [*engine, "render", source, "-o", output, "--frames", f"{first}-{last}", "--progress", "json"]
    if colorspace:
        cmd += ["--input-colorspace", colorspace]
    cmd += settings_flags(settings)
    if matte:
        # The rough-matte sequence (MATTE_FLAG); with prior 'auto' or 'input' the engine uses it.
        cmd += [MATTE_FLAG, matte]
    if cache_mode:
        cmd += ["--output-mode", "rgba", "--overlay"]
    elif output_settings is not None:
        cmd += ["--output-mode", output_settings.output_mode]
        if output_settings.overlay != "off":
            cmd += ["--overlay", output_settings.overlay]
    if resume:
        cmd.append("--resume")
    return cmd


def _cannot_start(cmd: Sequence[str], exc: OSError) -> str:
    return f"Cannot start the SparseMat engine ({cmd[0]}): {exc}. Run 'python install.py' again."


@dataclass
class SetupReport:
    """What ``sparsemat doctor`` said: ``problems`` one line each (``name: what to do``), ``text`` the whole report."""

    ok: bool
    problems: list[str]
    text: str

    @property
    def status(self) -> str:
        """The node's one-line status after a check."""
        return "setup checked: no problems" if self.ok else f"setup problem: {self.problems[0]}"


def check_setup(engine: Sequence[str], settings: Settings, env: Mapping[str, str] | None = None,
                timeout: float = 300.0, colorspace: str | None = None, output: str | None = None) -> SetupReport:
    """Run ``sparsemat doctor --json`` with ``settings`` (the plate's ``colorspace``, the ``output`` folder the node's
    cache goes to) in the engine's environment.

    A command that cannot start, crashes, hangs or answers something else gives one problem saying so.
    """
    cmd = [*engine, "doctor", "--json", *settings_flags(settings)]
    if colorspace:
        cmd += ["--input-colorspace", colorspace]
    if output:
        cmd += ["--output", output]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout,
                              env=engine_environment(env))
    except OSError as exc:
        why = _cannot_start(cmd, exc)
        return SetupReport(False, [why], why)
    except subprocess.TimeoutExpired:
        why = f"The SparseMat engine did not answer within {timeout:.0f} s: {subprocess.list2cmdline(cmd)}"
        return SetupReport(False, [why], why)
    try:
        checks = json.loads(done.stdout)["checks"]
    except (ValueError, KeyError, TypeError):
        why = (f"The SparseMat engine failed (exit status {done.returncode}): "
               f"{done.stderr.strip() or done.stdout.strip()}")
        return SetupReport(False, [why], why)
    lines, problems = [], []
    for c in checks:
        note = f"  ({c['note']})" if c["note"] else ""
        lines.append(f"{'ok' if c['ok'] else 'PROBLEM'}  {c['name']}: {c['value']}{note}")
        if not c["ok"]:
            problems.append(f"{c['name']}: {c['note'] or c['value']}")
    return SetupReport(not problems, problems, "\n".join(lines))


@dataclass
class ProgressEvent:
    """One line of the engine's ``--progress json`` output."""

    frame: int
    status: str
    active_share: float = 0.0
    seconds: float = 0.0
    cascade_scales: list[float] = field(default_factory=list)
    message: str = ""


def parse_progress_line(line: str) -> ProgressEvent | None:
    """Parse one stdout line; None for anything that is not a frame event (logs, warnings)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "frame" not in data or "status" not in data:
        return None
    try:
        return ProgressEvent(
            frame=int(data["frame"]),
            status=str(data["status"]),
            active_share=float(data.get("active_share") or 0.0),
            seconds=float(data.get("seconds") or 0.0),
            cascade_scales=list(data.get("cascade_scales") or []),
            message=str(data.get("message") or ""),
        )
    except (TypeError, ValueError):
        return None


def status_text(event: ProgressEvent) -> str:
    """The node's status line for a frame event, e.g. ``frame 12: 3.4% refined, 0.82 s, 2 cascade levels``."""
    if event.status == "failed":
        return f"frame {event.frame} FAILED: {event.message or 'no message from the engine'}"
    if event.status == "skipped":
        return f"frame {event.frame}: already in the cache"
    levels = len(event.cascade_scales) or 1
    return (f"frame {event.frame}: {event.active_share * 100:.1f}% refined, {event.seconds:.2f} s, "
            f"{levels} cascade level{'s' if levels != 1 else ''}")


@dataclass
class RenderOutcome:
    """What a sidecar run did.

    Attributes:
        done: frames written. skipped: frames already there. failed: frame → engine message.
        cancelled: the run was stopped on request. returncode: the engine's exit code.
        error: a message for the artist when the run as a whole failed (bad usage, crash).
        last: the last frame event (for the status line).
    """

    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    returncode: int | None = None
    error: str = ""
    last: ProgressEvent | None = None

    @property
    def ok(self) -> bool:
        return not self.cancelled and not self.failed and not self.error and self.returncode == 0

    def summary(self) -> str:
        """One artist-readable paragraph."""
        if self.error:
            return self.error
        parts = []
        if self.cancelled:
            parts.append(f"Cancelled after {len(self.done)} frame(s).")
        if self.failed:
            lines = [f"frame {f}: {m or 'failed'}" for f, m in sorted(self.failed.items())]
            parts.append(f"{len(self.failed)} frame(s) failed:\n" + "\n".join(lines))
        if not parts:
            parts.append(f"Rendered {len(self.done)} frame(s)" + (f", {len(self.skipped)} already cached." if
                                                                 self.skipped else "."))
        return "\n".join(parts)


def _pump(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line)
    sink.put(None)


def run_render(
    cmd: Sequence[str],
    on_event: Callable[[ProgressEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_seconds: float = 0.05,
    env: Mapping[str, str] | None = None,
) -> RenderOutcome:
    """Run the engine and follow its progress until it exits or ``should_cancel()`` is true.

    ``on_event`` is called in the calling thread for every frame event. On cancel the engine is
    terminated (killed after 5 s); frames it completed stay, the frame in flight is never
    renamed into place by the engine. The engine runs in :func:`engine_environment` of ``env``
    (default ``os.environ``).
    """
    outcome = RenderOutcome()
    try:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            bufsize=1, env=engine_environment(env),
        )
    except OSError as exc:
        outcome.error = _cannot_start(cmd, exc)
        return outcome
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []
    out_thread = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    stderr = proc.stderr
    assert stderr is not None  # stderr=PIPE
    err_thread = threading.Thread(target=lambda: errors.extend(iter(stderr.readline, "")), daemon=True)
    out_thread.start()
    err_thread.start()
    finished = False
    while not finished:
        if should_cancel is not None and should_cancel():
            outcome.cancelled = True
            break
        try:
            line = lines.get(timeout=poll_seconds)
        except queue.Empty:
            continue
        if line is None:
            finished = True
            continue
        event = parse_progress_line(line)
        if event is None:
            continue
        outcome.last = event
        if event.status == "done":
            outcome.done.append(event.frame)
        elif event.status == "skipped":
            outcome.skipped.append(event.frame)
        elif event.status == "failed":
            outcome.failed[event.frame] = event.message
        if on_event is not None:
            on_event(event)
    if outcome.cancelled and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    outcome.returncode = proc.wait()
    out_thread.join(timeout=5)
    err_thread.join(timeout=5)
    if not outcome.cancelled and outcome.returncode not in (0, 1):
        tail = "".join(errors[-15:]).strip()
        outcome.error = (f"The SparseMat engine stopped with exit code {outcome.returncode}"
                         + (f":\n{tail}" if tail else "."))
    elif outcome.returncode == 1 and not outcome.failed and not outcome.cancelled:
        tail = "".join(errors[-15:]).strip()
        outcome.error = "The SparseMat engine reported failed frames" + (f":\n{tail}" if tail else ".")
    return outcome


def farm_command_line(cmd: Sequence[str]) -> str:
    """A shell-ready command line (POSIX quoting; Windows cmd quoting on Windows)."""
    if sys.platform.startswith("win"):
        return subprocess.list2cmdline(list(cmd))
    return shlex.join(cmd)


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass (helper for adapters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()
