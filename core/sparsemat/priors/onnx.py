"""``onnx:PATH`` prior: run any user ONNX matting model through onnxruntime.

Convention a model must follow (checked when it is loaded; errors name the file and the input or
output that does not fit):

* **Image input** – exactly one input besides the optional ones below, shaped [1, 3, H, W]
  (dimensions may be dynamic), float32 (float16 is accepted and fed cast), display-referred RGB in
  [0, 1]. Its name is free. A model with a fixed H x W gets the plate resized to that size and its
  alpha resized back.
* **Alpha output** – the output named ``pha`` or ``alpha``; otherwise the first output with exactly
  one channel ([1, 1, h, w]). Values are expected in [0, 1]; others are clipped with an
  :class:`~sparsemat.errors.InputWarning`. An alpha at another size than the input is resized.
* **Recurrent state (optional)** – inputs named ``r1i``, ``r2i``, … are recurrent state, fed zeros
  of shape [1, 1, 1, 1] on the first frame and then the matching outputs ``r1o``, ``r2o``, … of the
  previous frame (the Robust Video Matting convention). :meth:`OnnxPrior.reset` clears them.
* **downsample_ratio (optional)** – an input of that name gets a [1] float32 tensor (1.0 unless
  configured), as in RVM.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sparsemat.errors import ModelError
from sparsemat.priors.base import check_lr_rgb, resize_alpha, resize_rgb, sanitize_alpha

_RECURRENT_IN = re.compile(r"^r(\d+)i$")
_ALPHA_NAMES = ("pha", "alpha")
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def import_onnxruntime(hint: str = "pip install onnxruntime") -> Any:
    """Import onnxruntime lazily, raising :class:`ModelError` with ``hint`` when it is missing."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(f"onnxruntime is not installed; install it with: {hint}") from exc
    return onnxruntime


def _providers(ort: Any, device: str | torch.device) -> list[str]:
    dev = str(device)
    available = ort.get_available_providers()
    if (dev.startswith("cuda") or dev == "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _fmt_shape(shape: Any) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]"


class OnnxPrior:
    """A prior running a user ONNX model (see the module docstring for the I/O convention).

    Args:
        path: the .onnx file.
        device: ``cpu``, ``cuda`` or ``auto``; CUDA is used only when onnxruntime has the CUDA provider.
        name: name shown in reports (default ``onnx:PATH``).
        downsample_ratio: value fed to a ``downsample_ratio`` input when the model has one.
        install_hint: how to install onnxruntime, for the error raised when it is missing.

    Attributes:
        recurrent: True when the model carries state between frames (inputs r1i…).
        image_input: name of the image input; alpha_output: name of the alpha output (None until
            the first frame when only run-time shapes can tell).
        fixed_size: (H, W) when the model only accepts one input size, else None.
    """

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        name: str | None = None,
        downsample_ratio: float = 1.0,
        install_hint: str = "pip install onnxruntime",
    ) -> None:
        self.path = Path(path).expanduser()
        self.name = name or f"onnx:{path}"
        self.downsample_ratio = float(downsample_ratio)
        ort = import_onnxruntime(install_hint)
        if not self.path.is_file():
            raise ModelError(f"ONNX model file not found: {self.path}")
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()  # the render's --threads, as the refiner
            self.session = ort.InferenceSession(str(self.path), options, providers=_providers(ort, device))
        except Exception as exc:  # onnxruntime raises several unrelated exception types
            raise ModelError(f"Cannot load the ONNX model {self.path}: {exc}") from exc
        self._inspect()
        self._state: dict[str, np.ndarray] = {}
        self._state_size: tuple[int, int] | None = None

    # -- model inspection --------------------------------------------------------------------
    def _inspect(self) -> None:
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        out_names = [o.name for o in outputs]
        self._recurrent_io: dict[str, str] = {}  # state input name -> state output name
        self.ratio_input: str | None = None
        images = []
        for i in inputs:
            m = _RECURRENT_IN.match(i.name)
            if m:
                out = f"r{m.group(1)}o"
                if out not in out_names:
                    raise ModelError(
                        f"ONNX model {self.path}: recurrent input '{i.name}' has no matching output '{out}' "
                        f"(outputs: {', '.join(out_names)})."
                    )
                self._recurrent_io[i.name] = out
            elif i.name == "downsample_ratio":
                self.ratio_input = i.name
            else:
                images.append(i)
        if len(images) != 1:
            found = ", ".join(f"'{i.name}' {_fmt_shape(i.shape)}" for i in images) or "none"
            raise ModelError(
                f"ONNX model {self.path}: expected exactly one image input [1, 3, H, W] (besides r1i… and "
                f"downsample_ratio), found {found}."
            )
        img = images[0]
        shape = list(img.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ModelError(
                f"ONNX model {self.path}: input '{img.name}' has shape {_fmt_shape(shape)}; the convention is "
                "[1, 3, H, W] RGB in [0, 1]."
            )
        if img.type not in _FLOAT_TYPES:
            raise ModelError(f"ONNX model {self.path}: input '{img.name}' is {img.type}; it must be float32 or float16.")
        self.recurrent = bool(self._recurrent_io)
        self.image_input: str = img.name
        self.image_dtype = _FLOAT_TYPES[img.type]
        fixed = shape[2:]
        self.fixed_size: tuple[int, int] | None = (
            (fixed[0], fixed[1]) if all(isinstance(d, int) and d > 0 for d in fixed) else None
        )
        self._state_types = {i.name: _FLOAT_TYPES.get(i.type, np.float32) for i in inputs}
        self.alpha_output: str | None = None
        self._alpha_candidates: list[str] = []
        state_outs = set(self._recurrent_io.values())
        for name in _ALPHA_NAMES:
            if name in out_names:
                self.alpha_output = name
                break
        if self.alpha_output is None:
            for o in outputs:
                if o.name in state_outs:
                    continue
                ch = o.shape[1] if len(o.shape) == 4 else None
                if ch == 1:
                    self.alpha_output = o.name
                    break
                if len(o.shape) == 4 and not isinstance(ch, int):
                    self._alpha_candidates.append(o.name)  # channel count known only at run time
        if self.alpha_output is None and not self._alpha_candidates:
            found = ", ".join(f"'{o.name}' {_fmt_shape(o.shape)}" for o in outputs)
            raise ModelError(
                f"ONNX model {self.path}: no alpha output; the convention is an output named 'pha' or 'alpha' "
                f"or one shaped [1, 1, H, W], found {found}."
            )

    # -- Prior protocol ----------------------------------------------------------------------
    def reset(self) -> None:
        """Clear the recurrent state (if any); the next frame starts from zeros."""
        self._state = {}
        self._state_size = None

    def predict(self, lr_rgb: Tensor) -> Tensor:
        """Run the model on one frame.

        Args:
            lr_rgb: [1, 3, h, w] float32 display sRGB in [0, 1].

        Returns:
            [1, 1, h, w] float32 alpha in [0, 1] on ``lr_rgb``'s device.
        """
        check_lr_rgb(lr_rgb, self.name)
        h, w = lr_rgb.shape[-2:]
        src = lr_rgb if self.fixed_size is None else resize_rgb(lr_rgb, self.fixed_size)
        size = (int(src.shape[-2]), int(src.shape[-1]))
        if self._state_size is not None and self._state_size != size:
            self.reset()  # recurrent state of another resolution cannot be reused
        feeds: dict[str, np.ndarray] = {
            self.image_input: src.detach().float().clamp(0, 1).cpu().numpy().astype(self.image_dtype, copy=False)
        }
        for name in self._recurrent_io:
            feeds[name] = self._state.get(name, np.zeros((1, 1, 1, 1), dtype=self._state_types[name]))
        if self.ratio_input is not None:
            feeds[self.ratio_input] = np.array([self.downsample_ratio], dtype=np.float32)
        out_names = [o.name for o in self.session.get_outputs()]
        try:
            results = self.session.run(None, feeds)
        except Exception as exc:
            raise ModelError(f"ONNX model {self.path} failed on a {size[1]}x{size[0]} frame: {exc}") from exc
        by_name = dict(zip(out_names, results, strict=True))
        self._state = {i: np.asarray(by_name[o]) for i, o in self._recurrent_io.items()}
        self._state_size = size
        pha = self._pick_alpha(by_name)
        alpha = torch.from_numpy(np.ascontiguousarray(pha, dtype=np.float32)).reshape(1, 1, *pha.shape[-2:])
        alpha = sanitize_alpha(alpha, f"The alpha of ONNX model {self.path}")
        return resize_alpha(alpha, (h, w)).to(lr_rgb.device)

    def _pick_alpha(self, by_name: dict[str, Any]) -> np.ndarray:
        if self.alpha_output is None:
            for name in self._alpha_candidates:
                if np.asarray(by_name[name]).shape[1] == 1:
                    self.alpha_output = name
                    break
            else:
                found = ", ".join(f"'{n}' {list(np.asarray(by_name[n]).shape)}" for n in self._alpha_candidates)
                raise ModelError(f"ONNX model {self.path}: no output has one channel (alpha); found {found}.")
        pha = np.asarray(by_name[self.alpha_output])
        if pha.ndim < 2 or pha.size != pha.shape[-1] * pha.shape[-2]:
            raise ModelError(
                f"ONNX model {self.path}: output '{self.alpha_output}' has shape {list(pha.shape)}; expected [1, 1, H, W]."
            )
        return pha
