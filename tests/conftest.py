import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_images():
    """scikit-learn's bundled digits as uint8 (N, 8, 8, 1), 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None], d.target


@pytest.fixture(scope="session")
def photo():
    """A real RGB photograph shipped with scikit-learn (427×640×3 uint8)."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")
