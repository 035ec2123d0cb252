"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download) as a ``Dataset``."""

from __future__ import annotations

import numpy as np

from augcli.datasets.base import Dataset
from augcli.datasets.convert import check_color_mode, check_image_size, convert_color_mode, resize_images


def load_digits(image_size=None, color_mode: str = "gray") -> Dataset:
    """Load the digits as uint8 (1797, 8, 8, C).

    Pixel values 0..16 become 0..255 by ``np.rint(v * 255 / 16)``. Ids are the sample indices as
    text ("0".."1796"); class names are "0".."9". ``image_size`` (h, w) in pixels, if given and not
    8x8, resizes with Pillow's bilinear filter; ``color_mode`` "rgb" repeats the gray channel.
    """
    from sklearn.datasets import load_digits as _sklearn_digits

    color_mode = check_color_mode(color_mode)
    size = check_image_size(image_size)
    bunch = _sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    if size is not None:
        images = resize_images(images, size)
    images = convert_color_mode(images, color_mode)
    n = images.shape[0]
    return Dataset(
        images=images,
        labels=bunch.target.astype(np.int64),
        ids=np.array([str(i) for i in range(n)]),
        class_names=[str(k) for k in range(10)],
        source="digits",
    )
