"""Calibration samples: a folder of images, image files, an .npz file or an array, as float
arrays shaped like the float graph's input (NHWC, one sample per row).

Images are preprocessed exactly as `edgecnn run` does (edgecnn.tools.images: the same
crop, resize and (pixel - mean) / std), so the ranges seen here are the ones `run` feeds.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import EdgecnnError
from ..ir import Tensor


class CalibrationError(EdgecnnError):
    """The calibration samples cannot be read or do not fit the model's input."""


def load_samples(source, input_tensor: Tensor, *, samples: int | None = None, mean: float = 0.0,
                 std: float = 255.0, center_crop: float | None = None) -> np.ndarray:
    """Float32 samples [N, *input shape without its batch axis]."""
    if isinstance(source, np.ndarray):
        array = source
    elif isinstance(source, (str, os.PathLike)) and str(source).endswith(".npz"):
        array = _from_npz(os.fspath(source))
    else:
        paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        return _from_images([os.fspath(p) for p in paths], input_tensor, samples, mean, std,
                            center_crop)
    array = _fit_layout(np.asarray(array), input_tensor)
    if samples is not None:
        array = array[:samples]
    if array.shape[0] == 0:
        raise CalibrationError("no calibration samples")
    if not np.all(np.isfinite(array)):
        raise CalibrationError("calibration samples contain NaN or infinity")
    return array


def _from_npz(path: str) -> np.ndarray:
    try:
        with np.load(path) as data:
            for key in ("x", "inputs", "images"):
                if key in data:
                    return data[key]
            return data[data.files[0]]
    except (OSError, ValueError, IndexError) as exc:
        raise CalibrationError(f"cannot read the .npz file ({exc})", path) from None


def _fit_layout(array: np.ndarray, t: Tensor) -> np.ndarray:
    """[N, *shape[1:]] as the graph wants; an NCHW array for an NHWC input is transposed
    (ONNX models are written NHWC; their users often have NCHW data)."""
    want = tuple(t.shape[1:])
    if array.shape == want:
        array = array[None]
    elif array.ndim == len(want) + 2 and array.shape[1] == 1 and array.shape[2:] == want:
        array = array[:, 0]
    if array.shape[1:] != want and len(want) == 3 and array.ndim == 4 and \
            array.shape[1:] == (want[2], want[0], want[1]):
        array = array.transpose(0, 2, 3, 1)
    if array.shape[1:] != want:
        raise CalibrationError(f"samples of shape {list(array.shape)} do not fit the model "
                               f"input {list(t.shape)} (give [N, {', '.join(map(str, want))}])")
    return np.ascontiguousarray(array, np.float32)


def _from_images(paths, t: Tensor, samples, mean, std, center_crop) -> np.ndarray:
    from ..model import TensorInfo
    from ..tools.images import fit_to_input, load_image, to_input_tensor
    from ..tools.run import collect_images
    if len(t.shape) != 4:
        raise CalibrationError(f"images need a model input [1, H, W, C], not {list(t.shape)}")
    found = collect_images(paths)
    if samples is not None:
        found = found[:samples]
    _, height, width, channels = t.shape
    info = TensorInfo(t.name, t.index, (1, height, width, channels), np.dtype(np.float32), 0.0, 0)
    rows = [to_input_tensor(fit_to_input(load_image(path), height, width, channels, center_crop),
                            info, mean, std)[0] for path, _ in found]
    return np.stack(rows).astype(np.float32)
