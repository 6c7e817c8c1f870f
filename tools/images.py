"""Image -> model input: decode with Pillow, fit to the input tensor, quantize.

The steps, in order (what `edgecnn run` does to every image):
  1. decode (any format Pillow reads), apply the EXIF orientation;
  2. convert to the model's channels: 1 -> grey ("L"), 3 -> "RGB";
  3. optionally center-crop to a fraction of the shorter side, then resize to
     the input's height x width (bilinear);
  4. by input dtype: uint8 -> the pixels as they are; float32 -> (pixel - mean) / std;
     int8 -> (pixel - mean) / std quantized with the input's own scale and zero
     point: clamp(round_half_away(value / scale) + zero_point, -128, 127).
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgecnnError

SUPPORTED_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm", ".pbm"}


class ImageInputError(EdgecnnError):
    """An image cannot be read or turned into the model's input."""


def check_preprocessing(mean: float, std: float, center_crop: float | None) -> None:
    """The options of step 3 and 4 above, refused with the option's name when unusable."""
    if not np.isfinite(std) or std == 0:
        raise ImageInputError(f"--std must be a finite non-zero number, got {std}", "preprocessing")
    if not np.isfinite(mean):
        raise ImageInputError(f"--mean must be a finite number, got {mean}", "preprocessing")
    if center_crop is not None and not 0 < center_crop <= 1:
        raise ImageInputError(f"--center-crop must be in (0, 1], got {center_crop}",
                              "preprocessing")


def load_image(path: str):
    import warnings
    from PIL import Image, ImageOps, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that (a
            # "decompression bomb"): both are one clear error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(f"image too large to decode safely ({' '.join(str(exc).split())})",
                              path) from None
    except FileNotFoundError:
        raise ImageInputError("no such file", path) from None
    except IsADirectoryError:
        raise ImageInputError("is a directory, not an image", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"not an image Pillow can decode ({exc.__class__.__name__})",
                              path) from None
    if image.mode not in SUPPORTED_MODES:
        raise ImageInputError(f"image mode {image.mode!r} is not supported (use 8-bit grey, "
                              "RGB or palette images)", path)
    return ImageOps.exif_transpose(image)


def channels_first(model) -> bool:
    """Whether the model's image input is NCHW, as PyTorch's converters leave it: read by
    a TRANSPOSE (0, 2, 3, 1) to TFLite's NHWC (with one channel, a RESHAPE to [N, H, W, 1]:
    a transpose that only moves a size-1 dimension is lowered to one)."""
    q = model.qgraph
    x = q.inputs[0]
    shape = q.tensors[x].shape
    for node in q.nodes:
        if node.inputs[:1] != (x,):
            continue
        if node.op == "TRANSPOSE" and tuple(node.params.perm) == (0, 2, 3, 1):
            return True
        if node.op == "RESHAPE" and len(shape) == 4 and shape[1] == 1 and \
                tuple(node.params.output_shape) == (shape[0], shape[2], shape[3], 1):
            return True
    return False


def fit_to_input(image, height: int, width: int, channels: int, center_crop: float | None = None):
    from PIL import Image
    if channels not in (1, 3):
        raise ImageInputError(f"the model takes {channels} channels; images give 1 or 3")
    image = image.convert("L" if channels == 1 else "RGB")
    check_preprocessing(0.0, 1.0, center_crop)
    if center_crop:
        side = int(round(min(image.size) * center_crop))
        left = (image.width - side) // 2
        top = (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def to_input_tensor(pixels: np.ndarray, info, mean: float, std: float) -> np.ndarray:
    """uint8 pixels [H, W, C] -> an array matching `info` (a TensorInfo), batch 1."""
    check_preprocessing(mean, std, None)
    dtype = np.dtype(info.dtype)
    if dtype == np.uint8:
        data = pixels
    else:
        real = (pixels.astype(np.float32) - np.float32(mean)) / np.float32(std)
        if dtype == np.float32:
            data = real
        elif dtype == np.int8:
            q = np.floor(np.abs(real / np.float32(info.scale)) + 0.5) * np.sign(real)
            data = np.clip(q + info.zero_point, -128, 127).astype(np.int8)
        else:
            raise ImageInputError(f"cannot feed an image to a {dtype} input")
    return np.ascontiguousarray(data.reshape(info.shape).astype(dtype))


def dequantize_output(values: np.ndarray, info) -> np.ndarray:
    if np.dtype(info.dtype).kind == "f":
        return values.astype(np.float32).reshape(-1)
    return ((values.astype(np.float32) - info.zero_point) * np.float32(info.scale)).reshape(-1)
