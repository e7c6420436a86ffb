"""``sparsemat render``: refine mattes for an image or a frame sequence (the farm's entry point).

Exit status: 0 every requested frame written (or already complete with ``--resume``), 1 some
frames failed (each one named), 2 bad usage (flags, patterns, a device that does not exist).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import numpy as np

from sparsemat.cli.knobs import (
    add_engine_flags,
    add_plate_flags,
    knob_choices,
    output_settings_from_args,
    settings_from_args,
)
from sparsemat.cli.render_notes import aspect_note, colour_note, eye_note, log_file_read_as_display
from sparsemat.cli.resume import made_by, render_key
from sparsemat.cli.threads import add_threads_flag, job_threads, use_threads
from sparsemat.errors import DeviceError, InputError, MissingFrameError, OutputError, SettingsError, SparseMatError
from sparsemat.io.writer import DEFAULT_COMPRESSION, LOSSLESS_EXR
from sparsemat.settings import OutputSettings, Settings


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``render`` flags."""
    parser.add_argument("input", help="plate image or sequence (plate.%%04d.exr or plate.####.exr)")
    parser.add_argument("-o", "--output", required=True, help="output image or sequence pattern")
    parser.add_argument("--frames", help="frames to render, e.g. 1001-1100, 1-10x2, 1,5,9-12 (default: all on disk)")
    parser.add_argument(
        "--prior", "--matte", dest="matte", metavar="PATTERN",
        help="external matte per frame (roto, keyer, another model): its A channel, else its first channel",
    )
    parser.add_argument("--prior-channel", metavar="NAME", help="channel of --prior to use as the matte")
    add_plate_flags(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--output-mode", choices=knob_choices("output_mode"), default=None,
                     help="alpha: matte only; rgba: plate RGB with the matte in A (default); premult: RGB × matte")
    out.add_argument("--overlay", nargs="?", const="sparsity", choices=("sparsity", "tint"), default=None,
                     help="add the sparsity map as channels sparsity.active/.spatial/.temporal; 'tint' also tints "
                          "refined pixels red in RGB for viewing")
    out.add_argument("--float", dest="half", action="store_false", help="write 32-bit float EXR (default: half)")
    out.add_argument("--compression", choices=LOSSLESS_EXR, default=DEFAULT_COMPRESSION,
                     help="EXR compression, lossless only because the matte is data (default: zips, one scanline "
                          "per block as Nuke's Write; piz is often smaller for grainy RGB, none the fastest to read)")
    run = parser.add_argument_group("run")
    run.add_argument("--resume", action="store_true", help="skip frames whose output is already complete")
    run.add_argument("--dry-run", action="store_true",
                     help="say what the render would do (frames to render and to skip, the plate as read, the prior "
                          "and output) without computing or writing anything")
    run.add_argument("--stop-on-error", action="store_true", help="stop at the first frame that fails")
    run.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto",
                     help="progress display: a bar on a terminal, or one JSON line per frame on stdout")
    add_threads_flag(run)
    add_engine_flags(parser)


# ---------------------------------------------------------------------------------------------
@dataclass
class FileSource:
    """A :class:`~sparsemat.engine.FrameSource` over files on disk (plates and optional mattes).

    ``pixel_aspect`` overrides the plates' own pixel aspect ratio (their header's; None: use it). ``eye`` picks the
    view of stereo (multi-view) EXRs (None: the hero view); a stereo matte gives the same view, a mono one serves both.
    ``layer`` picks the layer holding the plate's colour in a multi-layer EXR.
    """

    plate_pattern: str
    frames_on_disk: list[int]
    matte_pattern: str | None = None
    matte_channel: str | None = None
    colorspace: str | None = None
    pixel_aspect: float | None = None
    eye: str | None = None
    layer: str | None = None
    last_plate: Any = None
    _last_frame: int | None = field(default=None, repr=False)

    @property
    def first_frame(self) -> int:
        return self.frames_on_disk[0] if self.frames_on_disk else 0

    @property
    def last_frame(self) -> int:
        return self.frames_on_disk[-1] if self.frames_on_disk else 0

    def __call__(self, frame: int) -> Any:
        from sparsemat.engine import FrameInput
        from sparsemat.io import has_frame_token, read_matte, read_plate

        single = not has_frame_token(self.plate_pattern)
        plate = read_plate(self.plate_pattern, None if single else frame, colorspace=self.colorspace, view=self.eye,
                           layer=self.layer)
        matte = None
        if self.matte_pattern:
            m_single = not has_frame_token(self.matte_pattern)
            try:
                matte = read_matte(self.matte_pattern, self.matte_channel, frame=None if m_single else frame,
                                   align_to=plate.window, view=plate.view or None)
            except MissingFrameError as exc:
                raise MissingFrameError(f"Frame {frame}: the prior matte does not exist ({exc}).") from exc
            except InputError as exc:
                raise InputError(f"The prior matte (--prior): {exc}") from exc
        self.last_plate, self._last_frame = plate, frame
        aspect = self.pixel_aspect if self.pixel_aspect is not None else plate.window.pixel_aspect
        return FrameInput(rgb=plate.rgb, matte=matte, pixel_aspect=aspect)


class Progress:
    """Per-frame progress on a terminal (a bar on stderr) or as JSON lines on stdout."""

    def __init__(self, mode: str, total: int, stream: TextIO | None = None) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        self.mode, self.total, self.done = mode, total, 0
        self.counts: dict[str, int] = {}
        self.stream = stream or (sys.stdout if mode == "json" else sys.stderr)
        self.t0 = time.perf_counter()

    def frame(self, record: dict[str, Any]) -> None:
        """Report one finished (done, skipped or failed) frame."""
        self.done += 1
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        if self.mode == "json":
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        elif self.mode == "bar":
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / self.done * (self.total - self.done)
            share = record.get("active_share")
            info = f"frame {record['frame']} {record['status']}" + (f", active {share:.1%}" if share is not None else "")
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {info}, ETA {eta:4.0f}s  "
            )
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()

    def summary(self) -> str:
        """``N frame(s) written, N skipped, N failed in T s (T s a frame)`` for the end of a farm task's log."""
        elapsed = time.perf_counter() - self.t0
        written = self.counts.get("done", 0)
        per = f" ({elapsed / written:.1f} s a frame)" if written else ""
        return (f"{written} frame(s) written, {self.counts.get('skipped', 0)} skipped, "
                f"{self.counts.get('failed', 0)} failed in {elapsed:.1f} s{per}")

    def note(self, text: str) -> None:
        """A message for a person (stderr), never mixed into JSON on stdout."""
        if self.mode == "bar":
            sys.stderr.write("\n")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------------------------------


def float_rgb_channels(plate: Any, out: OutputSettings, half: bool) -> tuple[str, ...]:
    """RGB channels a half EXR output must store as 32-bit float to keep the plate's values.

    Only a half plate's values fit a half file exactly: a float plate's would be rounded (or overflow
    to inf above 65504), and 8/16-bit levels k/255, k/65535 are not half values either. Empty for
    ``alpha`` output and for ``--float`` output (everything is float then).
    """
    if not half or out.output_mode == "alpha" or plate.pixel_type == "half":
        return ()
    return ("R", "G", "B")


def output_channels(plate: Any, result: Any, out: OutputSettings, half: bool = True,
                    display: bool = False) -> dict[str, np.ndarray]:
    """Channels to write for one frame.

    Args:
        plate: the :class:`~sparsemat.io.Plate` that was read (``source_rgb`` is written back untouched).
        result: the engine's :class:`~sparsemat.engine.FrameResult`.
        out: output mode and overlay.
        half: the output stores half floats; the matte is rounded to half first so that premultiplied
            RGB is computed with exactly the alpha that is stored (unpremult in a comp is then exact).
        display: the output is an integer, display-referred format (PNG, JPEG, TIFF): RGB is the
            plate in display sRGB, 0-1 (``plate.rgb``), instead of its own scene-linear values.

    Returns:
        channel name → ``[H, W]`` array: ``A`` (alpha mode), ``R, G, B, A`` (rgba / premult; premult
        multiplies the plate's values by the matte), plus ``sparsity.*`` with an overlay.
    """
    alpha = result.alpha.astype(np.float16).astype(np.float32) if half and not display else result.alpha
    channels: dict[str, np.ndarray] = {}
    if out.output_mode != "alpha":
        rgb = plate.rgb if display else plate.source_rgb
        for i, name in enumerate("RGB"):
            # rgba: the plate's own values as stored (a half plate is written back half→half, bit-exact,
            # without a float32 round trip); premult/tint compute in float32
            c = rgb[..., i] if out.output_mode == "rgba" and out.overlay != "tint" else rgb[..., i].astype(np.float32)
            if out.output_mode == "premult":
                c = c * alpha
            if out.overlay == "tint":
                c = np.where(result.active, 0.5 * c + (0.5 if name == "R" else 0.0), c)
            channels[name] = c
    channels["A"] = alpha
    if out.overlay != "off":
        channels["sparsity.active"] = result.active.astype(np.float32)
        channels["sparsity.spatial"] = result.spatial.astype(np.float32)
        if result.temporal is not None:
            channels["sparsity.temporal"] = result.temporal.astype(np.float32)
        else:
            channels["sparsity.temporal"] = np.ones_like(alpha)
    return channels


def frame_metadata(settings: Settings, result: Any, frame: int | None) -> dict[str, str | int | float]:
    """EXR header attributes for one frame: engine version, model, settings, active share, timings."""
    from sparsemat.version import __version__

    st = result.stats
    meta: dict[str, str | int | float] = {
        "version": __version__,
        "model": settings.model,
        "prior": st.prior_name,
        "settings": json.dumps(settings.to_dict(), sort_keys=True),
        "settings_key": settings.pixel_key(),
        "active_pixels": int(st.active_pixels),
        "active_share": float(st.active_share),
        "cascade_scales": ",".join(f"{s:g}" for s in st.cascade_scales),
        "keyframe": int(st.keyframe),
        "temporal_reused": int(st.temporal_reused),
        "shm_gmacs": float(st.shm_gmacs),
        "stage_seconds": json.dumps({k: round(v, 4) for k, v in st.stage_seconds.items()}),
    }
    if frame is not None:
        meta["frame"] = int(frame)
    return meta


def _frame_file(pattern: str, frame: int | None) -> str:
    """The file of ``frame`` in ``pattern`` (``pattern`` itself for a single file or a held still)."""
    from sparsemat.io import frame_path, has_frame_token

    return pattern if frame is None or not has_frame_token(pattern) else frame_path(pattern, frame)


def _dry_run(args: argparse.Namespace, settings: Settings, out: OutputSettings, frames: list[int | None]) -> int:
    """``--dry-run``: what the render would do, on stdout; computes and writes nothing. 1 when the plate is unreadable."""
    from sparsemat.io import has_frame_token, is_complete, read_plate
    from sparsemat.priors import choose_prior

    key = render_key(args, settings, out)
    made = [f for f, path in ((f, _frame_file(args.output, f)) for f in frames)
            if args.resume and is_complete(path) and made_by(path, key, settings)]
    todo = [f for f in frames if f not in made]
    listed = ", ".join("the image" if f is None else str(f) for f in todo[:12]) + (" …" if len(todo) > 12 else "")
    lines = [f"frames: {len(frames)} asked, {len(todo)} to render ({listed or 'none'}), {len(made)} already made by "
             "this render (--resume)"]
    status = 0
    first = (todo or frames)[0]
    try:
        plate = read_plate(args.input, first if has_frame_token(args.input) else None, colorspace=args.input_colorspace,
                           view=args.eye, layer=args.layer)
        lines.append(f"plate: {plate.path}: {plate.width}x{plate.height} {plate.pixel_type}, channels "
                     f"{', '.join(plate.rgb_channels)}, colour space {plate.colorspace} ({plate.colorspace_source})"
                     + aspect_note(plate, args.pixel_aspect, settings.prior_size) + eye_note(plate, args.eye))
        warning = log_file_read_as_display(plate)
        if warning:
            lines.append(f"warning: {warning}")
    except SparseMatError as exc:
        lines.append(f"plate: cannot be read: {exc}")
        status = 1
    prior, why = choose_prior(settings.prior, has_matte=bool(args.matte))
    lines.append(f"prior: {prior} ({why}); model: {settings.model}")
    lines.append(f"output: {args.output} ({out.output_mode}, overlay {out.overlay}, {'half' if args.half else 'float'}, "
                 f"{getattr(args, 'compression', DEFAULT_COMPRESSION)}); nothing was computed or written")
    print("\n".join("sparsemat render --dry-run: " + line for line in lines))
    return status


def _refuse_to_overwrite_inputs(args: argparse.Namespace, frames: list[int | None]) -> None:
    """Raise :class:`SettingsError` when a frame's output file is one of its input files (plate or matte).

    ``-o plate.%04d.exr`` for ``plate.####.exr``, a folder reached through a symbolic link or a typo would otherwise
    replace the plates with the render, frame by frame. Paths are compared after resolving links.
    """
    def resolved(pattern: str, frame: int | None) -> str:
        return os.path.normcase(os.path.realpath(_frame_file(pattern, frame)))

    for frame in frames:
        out = resolved(args.output, frame)
        for what, pattern in (("plate", args.input), ("prior matte", args.matte)):
            if pattern and out == resolved(pattern, frame):
                label = "" if frame is None else f" (frame {frame})"
                raise SettingsError("output", args.output,
                                    f"it is the {what} itself{label}: the render would overwrite it. Write the "
                                    "matte to another file or folder")


def _frames_to_render(args: argparse.Namespace, seq: Any) -> list[int | None]:
    from sparsemat.io import parse_frame_range

    if seq.is_single_file:  # a still: held for every requested frame
        return list(parse_frame_range(args.frames)) if args.frames else [None]
    if args.frames:
        return list(parse_frame_range(args.frames))
    found = seq.frames()
    if not found:
        raise MissingFrameError(f"No frames of {seq.pattern} were found on disk. Check the path and the frame token.")
    # Every frame from the first to the last on disk: a hole in the sequence is a failed (named)
    # frame, never silently skipped.
    return list(range(found[0], found[-1] + 1))


@dataclass
class _PendingWrite:
    """A frame whose file is being written in the background."""

    frame: int | None
    label: str
    t0: float
    future: Future[float]
    record: dict[str, Any]


def _write(write_frame: Callable[..., str], path: str, channels: dict[str, np.ndarray], options: dict[str, Any]) -> float:
    """Write one frame (atomic) with ``write_frame``'s keyword ``options``; return ``time.perf_counter()`` when the
    file is complete."""
    write_frame(path, channels, **options)
    return time.perf_counter()


def run(args: argparse.Namespace, *, progress_stream: TextIO | None = None,
        cancel: Callable[[], bool] | None = None) -> int:
    """Render; returns the exit status. ``cancel`` (UI/hosts) is polled between frames.

    Frames are computed in order on the calling thread; each frame's file is written by one
    background thread while the next frame is computed. Progress reports a frame as ``done`` only
    once its file is complete, in frame order.
    """
    from sparsemat.io import Sequence, has_frame_token, is_complete, is_integer_format, resolve_colorspace, write_frame

    try:
        settings = settings_from_args(args)
        out_settings = output_settings_from_args(args)
        seq = Sequence(args.input)
        if not seq.is_single_file and not has_frame_token(args.output):
            raise SettingsError("output", args.output, "a sequence needs an output pattern with %04d or ####")
        if seq.is_single_file and has_frame_token(args.output) and not args.frames:
            raise SettingsError("output", args.output,
                                "a single input image needs a single output file (or --frames N to number it)")
        frames = _frames_to_render(args, seq)
        if seq.is_single_file and len(frames) > 1 and not has_frame_token(args.output):
            raise SettingsError("output", args.output, f"--frames {args.frames} renders {len(frames)} frames; "
                                "give a numbered output pattern (%04d or ####)")
        if args.input_colorspace:
            resolve_colorspace(args.input_colorspace)
        _refuse_to_overwrite_inputs(args, frames)
        threads = job_threads(args.threads, os.environ)
    except (SettingsError, ValueError) as exc:
        print(f"sparsemat render: error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "dry_run", False):
        return _dry_run(args, settings, out_settings, frames)

    from sparsemat.engine import Session
    from sparsemat.io import prepare_output_folder, remove_stale_temps

    use_threads(threads)

    try:
        session = Session(settings)
    except DeviceError as exc:
        print(f"sparsemat render: error: {exc}", file=sys.stderr)
        return 2
    try:
        folder = prepare_output_folder(args.output)
    except OutputError as exc:
        print(f"sparsemat render: error: {exc}", file=sys.stderr)
        return 1
    stale = remove_stale_temps(folder)
    if stale and not getattr(args, "quiet", False):
        print(f"sparsemat render: removed {len(stale)} temp file(s) that a killed render on this host left in "
              f"{folder}", file=sys.stderr)
    on_disk = [] if seq.is_single_file else seq.frames()
    source = FileSource(args.input, on_disk or [f for f in frames if f is not None] or [0],
                        args.matte, args.prior_channel, args.input_colorspace, args.pixel_aspect, args.eye,
                        args.layer)
    progress = Progress(args.progress, len(frames), progress_stream)
    failures: list[tuple[int | None, str]] = []
    announced_prior = False
    key, redoing = render_key(args, settings, out_settings), False

    def fail(frame: int | None, label: str, exc: SparseMatError) -> None:
        failures.append((frame, str(exc)))
        progress.frame({"frame": frame, "status": "failed", "message": str(exc)})
        if progress.mode != "json":
            progress.note(f"sparsemat render: {label} failed: {exc}")

    # One background writer: frame N is compressed and written (atomically) while frame N+1 is
    # computed, so EXR encoding overlaps the engine (OpenImageIO releases the GIL). A frame is
    # reported "done" only once its file is complete; reports stay in frame order.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparsemat-write")
    pending: _PendingWrite | None = None

    def finish() -> bool:
        """Wait for the write in flight and report it; False when it failed."""
        nonlocal pending
        if pending is None:
            return True
        job, pending = pending, None
        try:
            ended = job.future.result()
        except SparseMatError as exc:
            fail(job.frame, job.label, exc)
            return False
        progress.frame({**job.record, "seconds": round(ended - job.t0, 3)})
        return True

    try:
        for frame in frames:
            if cancel is not None and cancel():
                finish()
                progress.note("sparsemat render: cancelled; frames already written are complete.")
                return 1
            label = "the image" if frame is None else f"frame {frame}"
            out_path = _frame_file(args.output, frame)
            if args.resume and is_complete(out_path):
                if made_by(out_path, key, settings):
                    finish()
                    progress.frame({"frame": frame, "status": "skipped", "path": out_path})
                    continue
                if not redoing:
                    progress.note(f"sparsemat render: {out_path} was made with other settings or inputs; --resume "
                                  "renders such frames again (the sequence stays consistent)")
                redoing = True
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = session.render(frame if frame is not None else 0, source) if frame is not None \
                        else session.process(0, source(0))
                    plate = source.last_plate
                    display = is_integer_format(out_path)
                    channels = output_channels(plate, result, out_settings, args.half, display)
                    wide = () if display else float_rgb_channels(plate, out_settings, args.half)
                    metadata = {**frame_metadata(settings, result, frame), "render_key": key}
            except SparseMatError as exc:
                if not finish() and args.stop_on_error:
                    break  # the previous frame failed to write: that is the first bad frame
                fail(frame, label, exc)
                if args.stop_on_error:
                    break
                continue
            if not finish() and args.stop_on_error:
                break  # the previous frame failed to write: stop before writing this one
            if cancel is not None and cancel():  # cancelled while this frame computed: write nothing more
                progress.note("sparsemat render: cancelled; frames already written are complete.")
                return 1
            notes = sorted({str(w.message) for w in caught})
            for note in notes:
                progress.note(f"warning: {label}: {note}")
            if not announced_prior and not getattr(args, "quiet", False):
                progress.note(f"sparsemat render: prior = {result.stats.prior_name}; model = {settings.model}"
                              + colour_note(plate) + aspect_note(plate, args.pixel_aspect, settings.prior_size)
                              + eye_note(plate, args.eye))
                log_warning = log_file_read_as_display(plate)
                if log_warning:
                    progress.note(f"warning: {log_warning}")
                announced_prior = True
            window = plate.window if args.pixel_aspect is None else replace(plate.window, pixel_aspect=args.pixel_aspect)
            future = writer.submit(_write, write_frame, out_path, channels, {
                "window": window, "half": args.half, "metadata": metadata, "float_channels": wide,
                "carry": plate.carried, "compression": getattr(args, "compression", DEFAULT_COMPRESSION)})
            pending = _PendingWrite(frame, label, t0, future, {
                "frame": frame, "status": "done", "path": out_path,
                "active_share": round(result.stats.active_share, 6), "seconds": 0.0,
                "cascade_scales": result.stats.cascade_scales, "prior": result.stats.prior_name, "warnings": notes,
            })
        finish()
    finally:
        writer.shutdown(wait=True)  # an interrupted render still completes the file in flight

    if not getattr(args, "quiet", False):
        progress.note(f"sparsemat render: {progress.summary()} -> {args.output}")
    if failures:
        lines = "\n".join(f"  {('frame ' + str(f)) if f is not None else args.input}: {msg}" for f, msg in failures)
        print(f"sparsemat render: {len(failures)} of {len(frames)} frame(s) failed:\n{lines}", file=sys.stderr)
        return 1
    return 0


__all__ = ["FileSource", "Progress", "add_parser", "float_rgb_channels", "frame_metadata", "output_channels", "run"]
