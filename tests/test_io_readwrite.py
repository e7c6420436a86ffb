"""Reading plates/mattes and writing frames (sparsemat.io.reader / writer / colour)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import sparsemat.io.writer as writer_mod
from sparsemat.errors import InputError, InputWarning, MissingFrameError, OutputError, SettingsError
from sparsemat.io import (
    Window,
    convert,
    is_complete,
    read_matte,
    read_metadata,
    read_plate,
    region_of,
    write_frame,
)

H, W = 24, 32


def _planes(seed: int = 0, dtype: type = np.float16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgba = (rng.random((H, W, 4)) * np.array([1.1, 1.0, 1.0, 1.0])).astype(dtype)  # a few HDR values in R
    return {c: rgba[:, :, i] for i, c in enumerate("RGBA")}


def _write_raw(path: str, pixels: np.ndarray, names: tuple[str, ...], fmt: oiio.TypeDesc = oiio.FLOAT) -> None:
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(names), fmt)
    spec.channelnames = names
    spec.attribute("oiio:UnassociatedAlpha", 1)  # integer formats: store the values given, not divided by A
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec)
    assert out.write_image(pixels)
    out.close()


def _no_temp_files(folder: str) -> bool:
    return not [n for n in os.listdir(folder) if ".tmp-" in n]


# --- writer ---------------------------------------------------------------------------------


def test_half_round_trip_bit_exact(tmp_path) -> None:
    planes = _planes()
    path = write_frame(str(tmp_path / "out.0001.exr"), planes)
    plate = read_plate(path)
    assert plate.pixel_type == "half"
    rgb16 = np.stack([planes[c] for c in "RGB"], -1)
    assert np.array_equal(plate.source_rgb.astype(np.float16).view(np.uint16), rgb16.view(np.uint16))
    assert plate.alpha is not None and np.array_equal(plate.alpha, planes["A"].astype(np.float32))
    assert plate.rgb.dtype == np.float32 and plate.rgb.shape == (H, W, 3)
    assert plate.rgb.min() >= 0.0 and plate.rgb.max() <= 1.0
    assert _no_temp_files(str(tmp_path))
    assert oiio.ImageInput.open(path).spec().getattribute("compression") == "zips"  # lossless default


def test_float32_option(tmp_path) -> None:
    planes = {c: p.astype(np.float32) + np.float32(1e-4) for c, p in _planes(dtype=np.float32).items()}
    path = write_frame(str(tmp_path / "f.exr"), planes, half=False)
    plate = read_plate(path)
    assert plate.pixel_type == "float"
    assert np.array_equal(plate.source_rgb[..., 0], planes["R"])


@pytest.mark.parametrize(
    "window",
    [
        Window(-4, -2, W, H, 0, 0, W - 8, H - 4),  # overscan: data window larger than display
        Window(10, 20, W, H, 0, 0, 200, 100),  # offset crop inside a larger frame
    ],
)
def test_windows_preserved(tmp_path, window: Window) -> None:
    path = write_frame(str(tmp_path / "w.exr"), _planes(), window=window)
    plate = read_plate(path)
    assert plate.window == window
    again = write_frame(str(tmp_path / "w2.exr"), {"A": plate.alpha}, window=plate.window)  # type: ignore[dict-item]
    spec = oiio.ImageInput.open(again).spec()
    assert (spec.x, spec.y, spec.full_width, spec.full_height) == (window.x, window.y, window.full_width, window.full_height)


@pytest.mark.parametrize("ext", [".exr", ".png", ".tif"])
def test_pixel_aspect_read_and_written_back(tmp_path, ext: str) -> None:
    anamorphic = Window(0, 0, W, H, 0, 0, W, H, pixel_aspect=2.0)
    path = write_frame(str(tmp_path / f"a{ext}"), _planes(), window=anamorphic)
    assert read_plate(path).window.pixel_aspect == pytest.approx(2.0)
    square = write_frame(str(tmp_path / f"s{ext}"), _planes(), window=Window.full(W, H))
    assert read_plate(square).window.pixel_aspect == 1.0


@pytest.mark.parametrize("stored", [1e-4, 1e6])
def test_unusable_pixel_aspect_in_a_header_reads_as_square(tmp_path, stored: float) -> None:
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("PixelAspectRatio", stored)
    out = oiio.ImageOutput.create(str(tmp_path / "bad.exr"))
    assert out.open(str(tmp_path / "bad.exr"), spec)
    out.write_image(np.full((H, W, 3), 0.5, np.float32))
    out.close()
    assert read_plate(str(tmp_path / "bad.exr")).window.pixel_aspect == 1.0


def _plate_with_header(path: str) -> None:
    """A half RGB EXR with the header a camera/conform pipeline gives a plate (timecode, rate, colour, a custom key)."""
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x01020304, 0))  # 01:02:03:04
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), (24000, 1001))
    spec.attribute("openexr:chromaticities", oiio.TypeDesc("float[8]"), (0.713, 0.293, 0.165, 0.83, 0.128, 0.044,
                                                                          0.32168, 0.33767))  # ACES AP1
    spec.attribute("camera/serial", "A001")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec)
    out.write_image(np.full((H, W, 3), 0.25, np.float32))
    out.close()


def test_timecode_rate_and_colour_description_are_carried_to_outputs(tmp_path) -> None:
    _plate_with_header(str(tmp_path / "plate.exr"))
    plate = read_plate(str(tmp_path / "plate.exr"))
    assert {name for name, _, _ in plate.carried} == {"smpte:TimeCode", "FramesPerSecond", "openexr:chromaticities"}
    out = write_frame(str(tmp_path / "matte.exr"), {"A": np.ones((H, W), np.float32)}, carry=plate.carried)
    spec = oiio.ImageInput.open(out).spec()
    assert tuple(spec.getattribute("smpte:TimeCode")) == (0x01020304, 0)
    assert tuple(spec.getattribute("FramesPerSecond")) == (24000, 1001)
    assert spec.getattribute("openexr:chromaticities")[0] == pytest.approx(0.713)
    assert spec.getattribute("camera/serial") is None  # only the listed attributes travel
    # a display-referred integer file keeps the time but not the EXR colour description of the plate's RGB
    tif = write_frame(str(tmp_path / "matte.tif"), {"A": np.ones((H, W), np.float32)}, carry=plate.carried)
    assert oiio.ImageInput.open(tif).spec().getattribute("openexr:chromaticities") is None


def test_window_size_mismatch(tmp_path) -> None:
    with pytest.raises(ValueError, match="window"):
        write_frame(str(tmp_path / "w.exr"), _planes(), window=Window.full(W + 1, H))


def test_metadata_and_extra_channel(tmp_path) -> None:
    planes = _planes()
    active = (np.arange(H * W).reshape(H, W) % 3 == 0).astype(np.float32)
    path = write_frame(str(tmp_path / "m.exr"), {**planes, "sparsity.active": active},
                       metadata={"model": "lite", "kernel_size": 15, "threshold": 0.25, "temporal": True,
                                 "scales": [1, 2], "frame": np.int64(1001)})  # type: ignore[dict-item]
    meta = read_metadata(path)
    assert meta == {"model": "lite", "kernel_size": 15, "threshold": 0.25, "temporal": 1, "scales": "[1, 2]",
                    "frame": 1001}
    assert read_metadata(path, prefix="")["sparsemat:model"] == "lite"
    assert np.array_equal(read_matte(path, "sparsity.active"), active)
    assert np.array_equal(read_matte(path, "ACTIVE"), active)  # unique last part, any case
    assert read_plate(path).channel_names == ("R", "G", "B", "A", "sparsity.active")


def test_single_channel_alpha_exr(tmp_path) -> None:
    alpha = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    path = write_frame(str(tmp_path / "a.exr"), {"A": alpha}, compression="piz")
    assert np.allclose(read_matte(path), alpha, atol=1e-3)
    with pytest.raises(ValueError, match="lossy"):
        write_frame(str(tmp_path / "b.exr"), {"A": alpha}, compression="dwaa")


def test_png_and_tiff_outputs(tmp_path) -> None:
    planes = _planes()
    with pytest.warns(UserWarning, match="sparsity.active"):
        png = write_frame(str(tmp_path / "o.png"), {**planes, "sparsity.active": planes["A"]})
    spec = oiio.ImageInput.open(png).spec()
    assert spec.nchannels == 4 and spec.format == oiio.UINT8
    with pytest.warns(UserWarning, match="channel.s. A;"):
        jpg = write_frame(str(tmp_path / "o.jpg"), planes)
    assert oiio.ImageInput.open(jpg).spec().nchannels == 3
    tif = write_frame(str(tmp_path / "o.tif"), {"A": planes["A"]})
    spec = oiio.ImageInput.open(tif).spec()
    assert spec.nchannels == 1 and spec.format == oiio.UINT16
    assert np.allclose(read_matte(tif), planes["A"].astype(np.float32), atol=1e-3)


def test_is_complete(tmp_path) -> None:
    path = write_frame(str(tmp_path / "c.exr"), _planes())
    assert is_complete(path) and is_complete(path, full=False)
    assert not is_complete(str(tmp_path / "nope.exr"))
    data = Path(path).read_bytes()
    cut = tmp_path / "cut.exr"
    cut.write_bytes(data[: len(data) // 2])
    assert not is_complete(str(cut))


# --- atomic writes --------------------------------------------------------------------------


def test_temp_names_differ_between_farm_hosts_with_the_same_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from sparsemat.io import temp_path

    names = []
    for host in ("farm-07.studio.lan", "farm-08.studio.lan"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        names.append(temp_path("/shots/010/matte.1001.exr"))
    assert names[0] == f"/shots/010/.matte.1001.tmp-farm-07-{os.getpid()}.exr"
    assert names[1] == f"/shots/010/.matte.1001.tmp-farm-08-{os.getpid()}.exr"


def test_failure_after_temp_created_leaves_nothing(tmp_path, monkeypatch) -> None:
    real = writer_mod._write_oiio
    seen: list[str] = []

    def write_then_die(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
        real(tmp, spec, pixels)
        assert os.path.exists(tmp)
        seen.append(tmp)
        raise RuntimeError("simulated crash after the temp file was written")

    monkeypatch.setattr(writer_mod, "_write_oiio", write_then_die)
    final = tmp_path / "r.0001.exr"
    with pytest.raises(RuntimeError, match="simulated"):
        write_frame(str(final), _planes())
    assert seen and os.path.basename(seen[0]).startswith(".r.0001.tmp-") and seen[0].endswith(".exr")
    assert not final.exists() and _no_temp_files(str(tmp_path))


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch) -> None:
    final = str(tmp_path / "r.exr")
    write_frame(final, _planes(seed=1))
    before = Path(final).read_bytes()

    def half_written(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
        out = oiio.ImageOutput.create(tmp)
        out.open(tmp, spec)
        out.write_scanlines(spec.y, spec.y + spec.height // 2, 0, pixels[: spec.height // 2])
        raise OutputError(f"Cannot write {tmp}: disk full (simulated)")

    monkeypatch.setattr(writer_mod, "_write_oiio", half_written)
    with pytest.raises(OutputError, match="disk full"):
        write_frame(final, _planes(seed=2))
    assert Path(final).read_bytes() == before and _no_temp_files(str(tmp_path))


def test_unwritable_folder(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match=str(blocker)):
        write_frame(str(blocker / "sub" / "o.exr"), _planes())


def test_read_only_folder_and_oiio_failure(tmp_path, monkeypatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(writer_mod.os, "access", lambda *a, **k: False)  # as root, chmod would not block us
        with pytest.raises(OutputError, match=f"folder {tmp_path} is not writable"):
            write_frame(str(tmp_path / "o.exr"), _planes())
    with pytest.raises(OutputError, match=r"Cannot write .*o\.xyz"):  # no writer for the extension
        write_frame(str(tmp_path / "o.xyz"), _planes())
    assert os.listdir(tmp_path) == []


# --- reader ---------------------------------------------------------------------------------


def test_multipart_finds_rgb_in_second_part(tmp_path) -> None:
    path = str(tmp_path / "multi.exr")
    depth = oiio.ImageSpec(W, H, 1, oiio.HALF)
    depth.channelnames = ("Z",)
    depth.attribute("oiio:subimagename", "depth")
    beauty = oiio.ImageSpec(W, H, 4, oiio.HALF)
    beauty.channelnames = ("rgba.R", "rgba.G", "rgba.B", "rgba.A")
    beauty.attribute("oiio:subimagename", "beauty")
    rgba = np.random.default_rng(3).random((H, W, 4)).astype(np.float16)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, [depth, beauty])
    assert out.write_image(np.zeros((H, W, 1), np.float16))
    assert out.open(path, beauty, "AppendSubimage")
    assert out.write_image(rgba)
    out.close()
    plate = read_plate(path)
    assert (plate.part, plate.part_name) == (1, "beauty")
    assert plate.rgb_channels == ("rgba.R", "rgba.G", "rgba.B") and plate.alpha_channel == "rgba.A"
    assert np.array_equal(plate.source_rgb, rgba[..., :3].astype(np.float32))
    assert np.array_equal(read_matte(path), rgba[..., 3].astype(np.float32))  # alpha found in part 1
    assert np.array_equal(read_matte(path, "z"), np.zeros((H, W), np.float32))


def test_no_rgb_lists_channels(tmp_path) -> None:
    path = str(tmp_path / "depth.exr")
    _write_raw(path, np.zeros((H, W, 2), np.float32), ("Z", "mask"))
    with pytest.raises(InputError, match=r"depth\.exr.*Z, mask"):
        read_plate(path)
    with pytest.raises(InputError, match=r"no channel 'alpha'.*Z, mask"):
        read_matte(path, "alpha")


def test_grey_png_and_pattern_frames(tmp_path) -> None:
    grey = str(tmp_path / "g.png")
    _write_raw(grey, np.full((H, W, 2), 0.5, np.float32), ("Y", "A"), oiio.UINT8)
    plate = read_plate(grey)
    assert plate.rgb_channels == ("Y", "Y", "Y") and np.allclose(plate.rgb, 128 / 255)
    out = write_frame(str(tmp_path / "o.####.exr"), {"A": plate.alpha}, frame=7)  # type: ignore[dict-item]
    assert out.endswith("o.0007.exr")
    assert np.allclose(read_matte(str(tmp_path / "o.%04d.exr"), frame=7), 128 / 255, atol=1e-3)
    with pytest.raises(InputError, match="frame pattern"):
        read_plate(str(tmp_path / "o.####.exr"))


def test_lowercase_and_layer_channels(tmp_path) -> None:
    path = str(tmp_path / "lc.exr")
    _write_raw(path, np.full((H, W, 3), 0.5, np.float32), ("diffuse.r", "diffuse.g", "diffuse.b"))
    plate = read_plate(path)
    assert plate.rgb_channels == ("diffuse.r", "diffuse.g", "diffuse.b") and plate.alpha is None
    # AOVs between the colour and the alpha, channels out of order
    names = ("B", "G", "R", "N.x", "N.y", "N.z", "Z", "A")
    pixels = np.stack([np.full((H, W), v, np.float32) for v in (0.3, 0.2, 0.1, 9, 9, 9, 9, 0.75)], -1)
    _write_raw(path, pixels, names, oiio.HALF)
    plate = read_plate(path, colorspace="raw")
    assert plate.rgb_channels == ("R", "G", "B") and plate.alpha_channel == "A"
    assert np.allclose(plate.rgb[0, 0], [0.1, 0.2, 0.3], atol=1e-3) and np.allclose(plate.alpha, 0.75)


@pytest.mark.parametrize("keep", [2 / 3, 0.01])  # pixels cut off / header cut off
def test_truncated_file_names_file(tmp_path, keep: float) -> None:
    path = write_frame(str(tmp_path / "t.1001.exr"), _planes())
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match=r"t\.1001\.exr.*frame 1001") as info:
        read_plate(str(tmp_path / "t.####.exr"), frame=1001)
    assert not isinstance(info.value, MissingFrameError)


def test_missing_frame_names_frame(tmp_path) -> None:
    with pytest.raises(MissingFrameError, match=r"Frame 1042.*plate\.1042\.exr"):
        read_plate(str(tmp_path / "plate.%04d.exr"), frame=1042)


@pytest.mark.parametrize("fmt", [oiio.FLOAT, oiio.HALF])
def test_nan_inf_cleaned_with_warning(tmp_path, fmt: oiio.TypeDesc) -> None:
    pixels = np.full((H, W, 3), 0.18, np.float32)
    pixels[0, 0, 0] = np.nan
    pixels[1, 1, 1] = np.inf
    pixels[2, 2, 2] = -np.inf
    path = str(tmp_path / "nan.exr")
    _write_raw(path, pixels, ("R", "G", "B"), fmt)
    with pytest.warns(InputWarning, match="3 pixel"):
        plate = read_plate(path)
    assert np.isfinite(plate.rgb).all() and plate.nonfinite_pixels == 3
    assert plate.rgb[0, 0, 0] == 0.0 and plate.rgb[1, 1, 1] == 1.0 and plate.rgb[2, 2, 2] == 0.0
    assert np.isnan(plate.source_rgb[0, 0, 0])  # source kept untouched for output
    assert np.allclose(plate.rgb[5:, 5:], 0.4614, atol=2e-4)
    with pytest.raises(ValueError):
        plate.source_rgb[0, 0, 0] = 1.0  # read-only


def test_half_table_matches_ocio_exactly() -> None:
    from sparsemat.io.colour import _colorconvert, half_table

    values = np.random.default_rng(5).normal(0.3, 2.0, (64, 64, 3)).astype(np.float16)
    direct = _colorconvert(values.astype(np.float32), "Linear Rec.709 (sRGB)", "sRGB Encoded Rec.709 (sRGB)")
    assert np.array_equal(convert(values, "lin_rec709"), direct)
    assert half_table("ACEScg", "srgb") is None  # gamut matrix: full OCIO path
    assert np.allclose(convert(values, "ACEScg"), _colorconvert(values.astype(np.float32), "ACEScg", "srgb"))


def test_out_of_range_warning_policy(tmp_path) -> None:
    bright = np.full((H, W, 3), 0.18, np.float32)
    bright[:2] = 20.0  # a few rows of highlights: normal, silent
    path = str(tmp_path / "hl.exr")
    _write_raw(path, bright, ("R", "G", "B"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_plate(path).rgb.max() == 1.0
    _write_raw(path, np.full((H, W, 3), 5.0, np.float32), ("R", "G", "B"))
    with pytest.warns(InputWarning, match="100% of the pixels"):
        read_plate(path)


def test_colour_conversions(tmp_path) -> None:
    grey = np.full((2, 2, 3), 0.18, np.float32)
    assert np.allclose(convert(grey, "lin_rec709"), 0.4614, atol=2e-4)
    assert np.allclose(convert(grey, "Linear Rec.709 (sRGB)"), 0.4614, atol=2e-4)
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 0.5
    assert not np.allclose(convert(red, "ACEScg"), convert(red, "lin_rec709"), atol=1e-2)
    path = str(tmp_path / "g.exr")
    _write_raw(path, np.full((H, W, 3), 0.18, np.float32), ("R", "G", "B"))
    assert np.allclose(read_plate(path).rgb, 0.4614, atol=2e-4)
    cct = read_plate(path, colorspace="ACEScct")
    assert cct.colorspace == "ACEScct" and not np.allclose(cct.rgb, 0.4614, atol=1e-2)
    with pytest.raises(SettingsError, match=r"Rec709.*ACEScg"):
        read_plate(path, colorspace="Rec709")


@pytest.mark.parametrize(("space", "code"), [
    ("ARRI LogC3 (EI800)", 0.391007),  # ARRI's published code value of 18 % grey
    ("arri_logc3_ei800", 0.391007),  # the config's alias
    ("S-Log3 S-Gamut3", 420.0 / 1023.0),  # Sony: 18 % grey at 10-bit code 420
    ("Log3G10 REDWideGamutRGB", 0.333333),  # RED: 18 % grey at 1/3
])
def test_camera_log_plates_read_as_the_camera_wrote_them(tmp_path: Path, space: str, code: float) -> None:
    path = str(tmp_path / "log.exr")
    _write_raw(path, np.full((H, W, 3), code, np.float32), ("R", "G", "B"))
    plate = read_plate(path, colorspace=space)
    assert np.allclose(plate.rgb, 0.4614, atol=2e-3)  # 18 % grey in display sRGB, whatever the camera
    assert np.array_equal(plate.source_rgb, np.full((H, W, 3), code, np.float32))  # written back as shot


def _exr_with(path: str, pixels: np.ndarray, **attrs: tuple[str, object]) -> None:
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    for name, (type_name, value) in attrs.items():
        spec.attribute(name.replace("__", ":"), oiio.TypeDesc(type_name), value)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec), out.geterror()
    out.write_image(pixels)
    out.close()


@pytest.mark.parametrize(("header", "space", "why"), [
    ({"openexr__chromaticities": ("float[8]", (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767))},
     "ACEScg", "the header's chromaticities: AP1 primaries"),
    ({"openexr__chromaticities": ("float[8]", (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767))},
     "ACES2065-1", "the header's chromaticities: AP0 primaries"),
    ({"openexr__acesImageContainerFlag": ("int", 1)}, "ACES2065-1", "the file is an ACES container"),
    ({"openexr__chromaticities": ("float[8]", (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329))},
     "Linear Rec.709 (sRGB)", "the header's chromaticities: Rec.709 primaries"),
    ({"openexr__chromaticities": ("float[8]", (0.70, 0.30, 0.20, 0.70, 0.10, 0.10, 0.31, 0.33))},  # no known space
     "Linear Rec.709 (sRGB)", "default for half files"),
    ({}, "Linear Rec.709 (sRGB)", "default for half files"),
])
def test_the_exr_header_names_the_plates_colour_space(tmp_path: Path, header: dict, space: str, why: str) -> None:
    path = str(tmp_path / "h.exr")
    skin = np.broadcast_to(np.array([0.30, 0.20, 0.12], np.float32), (H, W, 3)).copy()  # inside every gamut here
    _exr_with(path, skin, **header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plate = read_plate(path)
    assert (plate.colorspace, plate.colorspace_source) == (space, why)
    np.testing.assert_allclose(plate.rgb, convert(skin, space), atol=1e-3)
    told = read_plate(path, colorspace="lin_rec709")  # the flag always wins over the header
    assert (told.colorspace, told.colorspace_source) == ("Linear Rec.709 (sRGB)", "--input-colorspace")


def test_a_deep_plate_is_flattened_front_to_back(tmp_path: Path) -> None:
    """Two samples per pixel: half-transparent red in front of opaque blue. Flat, that is (0.5, 0, 0.4) with alpha 1,
    what Nuke's DeepToImage shows; reading the file as if it were flat gave NaNs and garbage."""
    spec = oiio.ImageSpec(W, H, 5, oiio.FLOAT)
    spec.deep = True
    spec.channelnames = ("R", "G", "B", "A", "Z")
    spec.alpha_channel, spec.z_channel = 3, 4
    buf = oiio.ImageBuf(spec)
    for y in range(H):
        for x in range(W):
            buf.set_deep_samples(x, y, 0, 2)
            for sample, values in enumerate(((0.5, 0.0, 0.0, 0.5, 1.0), (0.0, 0.0, 0.8, 1.0, 2.0))):
                for channel, value in enumerate(values):
                    buf.set_deep_value(x, y, 0, channel, sample, value)
    path = str(tmp_path / "deep.exr")
    assert buf.write(path), buf.geterror()
    plate = read_plate(path)
    np.testing.assert_allclose(plate.source_rgb, np.broadcast_to([0.5, 0.0, 0.4], (H, W, 3)), atol=1e-6)
    assert plate.alpha is not None and np.allclose(plate.alpha, 1.0)
    assert np.allclose(read_matte(path, "A"), 1.0)


def _stereo_single_part(path: str) -> None:
    """Nuke's stereo EXR layout: one part, hero view ``left`` unprefixed, ``right.*`` for the other eye."""
    spec = oiio.ImageSpec(W, H, 8, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "A", "right.R", "right.G", "right.B", "right.A")
    spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("left", "right"))
    px = np.zeros((H, W, 8), np.float32)
    px[..., :3], px[..., 3] = 0.2, 0.25  # left eye
    px[..., 4:7], px[..., 7] = 0.6, 0.75  # right eye
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec)
    out.write_image(px)
    out.close()


def _stereo_multi_part(path: str) -> None:
    """Stereo split into parts (Natron's 'Split Views'): a ``view`` attribute per part."""
    specs = []
    for view in ("left", "right"):
        spec = oiio.ImageSpec(W, H, 4, oiio.HALF)
        spec.attribute("view", view)
        spec.attribute("name", view)
        specs.append(spec)
    out = oiio.ImageOutput.create(path)
    assert out.open(path, specs)
    out.write_image(np.full((H, W, 4), 0.2, np.float32) * [1, 1, 1, 1.25])
    assert out.open(path, specs[1], "AppendSubimage")
    out.write_image(np.full((H, W, 4), 0.6, np.float32) * [1, 1, 1, 1.25])
    out.close()


@pytest.mark.parametrize("layout", [_stereo_single_part, _stereo_multi_part])
def test_stereo_plates_read_the_eye_asked_for(tmp_path: Path, layout: Any) -> None:
    path = str(tmp_path / "stereo.exr")
    layout(path)
    hero = read_plate(path)
    assert (hero.view, hero.views) == ("left", ("left", "right"))
    assert np.allclose(hero.source_rgb, 0.2, atol=1e-3) and hero.alpha is not None and np.allclose(hero.alpha, 0.25)
    right = read_plate(path, view="RIGHT")  # any case
    assert right.view == "right" and np.allclose(right.source_rgb, 0.6, atol=1e-3)
    assert np.allclose(read_matte(path, view="right"), 0.75) and np.allclose(read_matte(path), 0.25)
    with pytest.raises(InputError, match=r"has no view 'centre'. Views found: left, right"):
        read_plate(path, view="centre")


def test_the_layer_holding_the_colour_can_be_named(tmp_path: Path) -> None:
    path = str(tmp_path / "layers.exr")
    spec = oiio.ImageSpec(W, H, 6, oiio.HALF)
    spec.channelnames = ("denoised.R", "denoised.G", "denoised.B", "plate.R", "plate.G", "plate.B")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, spec)
    out.write_image(np.concatenate([np.full((H, W, 3), 0.1), np.full((H, W, 3), 0.7)], axis=-1).astype(np.float32))
    out.close()
    assert np.allclose(read_plate(path).source_rgb, 0.1, atol=1e-3)  # default: the first layer with R, G, B
    plate = read_plate(path, layer="PLATE")
    assert plate.rgb_channels == ("plate.R", "plate.G", "plate.B") and np.allclose(plate.source_rgb, 0.7, atol=1e-3)
    with pytest.raises(InputError, match=r"has no layer 'beauty' with R, G, B channels. Channels found: denoised.R"):
        read_plate(path, layer="beauty")
    split = str(tmp_path / "parts.exr")  # one part per layer: a part's name is a layer too
    specs = []
    for name in ("denoised", "plate"):
        part = oiio.ImageSpec(W, H, 3, oiio.HALF)
        part.attribute("name", name)
        specs.append(part)
    out = oiio.ImageOutput.create(split)
    assert out.open(split, specs)
    out.write_image(np.full((H, W, 3), 0.1, np.float32))
    assert out.open(split, specs[1], "AppendSubimage")
    out.write_image(np.full((H, W, 3), 0.7, np.float32))
    out.close()
    assert np.allclose(read_plate(split, layer="plate").source_rgb, 0.7, atol=1e-3)


def test_a_mono_file_refuses_an_eye_and_a_mono_matte_serves_both(tmp_path: Path) -> None:
    path = write_frame(str(tmp_path / "mono.exr"), _planes())
    assert read_plate(path).views == ()
    with pytest.raises(InputError, match="holds one view only; the view 'left' applies to stereo"):
        read_plate(path, view="left")
    assert read_matte(path, view="right").shape == (H, W)


def test_a_studio_ocio_variable_changes_no_colour(tmp_path: Path) -> None:
    """Studios export ``$OCIO``; OpenImageIO reads it unless told otherwise. A show config it cannot load
    (as here) made every EXR frame fail ("cannot convert linear to srgb_rec709_scene"). The engine names
    its config, so a plate reads the same under any ``$OCIO``."""
    import subprocess
    import sys

    path = str(tmp_path / "g.exr")
    pixels = np.random.default_rng(3).random((H, W, 3)).astype(np.float32) * 0.8
    _write_raw(path, pixels, ("R", "G", "B"))
    show = tmp_path / "show_config.ocio"  # a show config without SparseMat's names
    show.write_text("ocio_profile_version: 2\nroles:\n  default: raw\ncolorspaces:\n"
                    "  - !<ColorSpace>\n    name: raw\n    isdata: true\n")
    out = tmp_path / "rgb.npy"
    code = ("import sys, numpy as np\nfrom sparsemat.io import read_plate\n"
            "np.save(sys.argv[2], read_plate(sys.argv[1]).rgb)")
    env = {**os.environ, "OCIO": str(show)}
    run = subprocess.run([sys.executable, "-c", code, path, str(out)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(np.load(out), read_plate(path).rgb)


def test_png_read_is_srgb(tmp_path) -> None:
    path = str(tmp_path / "p.png")
    values = np.array([0, 64, 128, 255], np.uint8)
    pixels = np.broadcast_to(values[None, :, None], (2, 4, 3)).copy()
    spec = oiio.ImageSpec(4, 2, 3, oiio.UINT8)
    out = oiio.ImageOutput.create(path)
    out.open(path, spec)
    out.write_image(pixels)
    out.close()
    plate = read_plate(path)
    assert plate.pixel_type == "uint8" and plate.colorspace == "sRGB Encoded Rec.709 (sRGB)"
    assert np.allclose(plate.rgb[0, :, 0], values / 255.0, atol=1e-6)
    linear = read_plate(path, colorspace="lin_rec709")  # forced: converted to sRGB
    assert linear.rgb[0, 2, 0] > 0.7


def test_matte_channel_selection(tmp_path) -> None:
    path = str(tmp_path / "mt.exr")
    pixels = np.stack([np.full((H, W), v, np.float32) for v in (0.1, 0.2, 0.3, 1.5)], -1)
    _write_raw(path, pixels, ("R", "G", "B", "A"))
    assert np.allclose(read_matte(path), 1.0)  # A by default, clipped to [0, 1]
    assert np.allclose(read_matte(path, "g"), 0.2)
    with pytest.raises(InputError, match=r"no channel 'roto'.*R, G, B, A"):
        read_matte(path, "roto")
    first = str(tmp_path / "y.exr")
    _write_raw(first, np.full((H, W, 1), 0.7, np.float32), ("Y",))
    assert np.allclose(read_matte(first), 0.7)  # no alpha: first channel


def test_set_threads_round_trip() -> None:
    from sparsemat.io import set_threads

    before = oiio.get_int_attribute("threads")
    try:
        set_threads(1)
        assert oiio.get_int_attribute("threads") == 1 and oiio.get_int_attribute("exr_threads") == 1
        with pytest.raises(ValueError):
            set_threads(-1)
    finally:
        set_threads(0)
    assert oiio.get_int_attribute("threads") == before


# --- windows of a matte against the plate's, and straight alpha in integer formats -------------


def test_region_of_places_bbox_matte_by_display_coordinates() -> None:
    plate = Window(x=-8, y=-4, width=80, height=56, full_x=0, full_y=0, full_width=64, full_height=48)  # overscan
    box = Window(x=40, y=10, width=3, height=2, full_x=0, full_y=0, full_width=64, full_height=48)
    matte = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    out = region_of(matte, box, plate)
    assert out.shape == (56, 80)
    assert np.array_equal(out[14:16, 48:51], matte)  # (40, 10) is (48, 14) in the plate's data window
    assert out.sum() == matte.sum()  # zero everywhere else
    same = Window.full(64, 48)
    assert region_of(np.ones((48, 64), np.float32), same, same).shape == (48, 64)
    # a bbox reaching past the plate's data window is cut to it
    edge = Window(x=60, y=40, width=30, height=20, full_x=0, full_y=0, full_width=64, full_height=48)
    assert region_of(np.ones((20, 30), np.float32), edge, same).sum() == 4 * 8


def test_region_of_proxy_matte_keeps_its_own_scale() -> None:
    """A half-resolution matte of an overscan plate: the same region of the matte's frame, for the engine to resize."""
    plate = Window(x=-8, y=-4, width=80, height=56, full_x=0, full_y=0, full_width=64, full_height=48)
    proxy = Window.full(32, 24)
    matte = np.ones((24, 32), np.float32)
    out = region_of(matte, proxy, plate)
    assert out.shape == (28, 40)  # the plate's 80 × 56 at half scale
    assert np.array_equal(out[2:26, 4:36], matte) and out.sum() == matte.sum()


def test_read_matte_align_to_plate(tmp_path: Path) -> None:
    box = Window(x=5, y=3, width=4, height=2, full_x=0, full_y=0, full_width=W, full_height=H)
    path = write_frame(str(tmp_path / "roto.exr"), {"A": np.full((2, 4), 0.5, np.float32)}, window=box)
    assert read_matte(path).shape == (2, 4)
    aligned = read_matte(path, align_to=Window.full(W, H))
    assert aligned.shape == (H, W) and np.all(aligned[3:5, 5:9] == 0.5) and aligned.sum() == 4.0


def test_png_colour_under_zero_alpha_reads_as_stored(tmp_path: Path) -> None:
    """PNG stores straight colour: a pixel with A = 0 keeps its RGB (OpenImageIO would premultiply it to black)."""
    path = str(tmp_path / "p.png")
    pixels = np.zeros((H, W, 4), np.float32)
    pixels[..., :3] = 200 / 255
    pixels[:, : W // 2, 3] = 0.0
    pixels[:, W // 2:, 3] = 128 / 255
    _write_raw(path, pixels, ("R", "G", "B", "A"), oiio.UINT8)
    plate = read_plate(path)
    assert np.allclose(plate.source_rgb, 200 / 255) and np.allclose(plate.rgb, 200 / 255)
    assert plate.alpha is not None and np.allclose(plate.alpha[:, W // 2:], 128 / 255)
    written = write_frame(str(tmp_path / "o.png"), {"R": plate.rgb[..., 0], "G": plate.rgb[..., 1],
                                                     "B": plate.rgb[..., 2], "A": plate.alpha})
    assert np.array_equal(read_plate(written).source_rgb, plate.source_rgb)  # not divided by A on write
