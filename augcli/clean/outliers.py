"""Unusual images: an isolation forest or local outlier factor over simple image features.

Features per image (all on the luma channel, grey levels 0..255): mean, standard deviation, the
5/25/50/75/95th percentiles, gradient energy (mean squared difference between neighbouring
pixels), neighbour correlation (see ``quality``), and the first 16 principal components of a 16x16
thumbnail (PCA fitted on the dataset itself). Every feature is standardised (zero mean, unit
variance) so that no unit dominates. Randomness: ``random_state=seed`` for PCA and the forest.

The isolation forest finds both lone odd images and small crowds of alike ones (the 20 blank and
20 noise images among the 1927 samples of tests/test_clean_faults.py: all found). LOF compares a
sample with its 20 nearest neighbours, so a crowd of 20 or more alike odd images looks normal to
it (it found a third of them there); it suits lone oddities.
"""

from __future__ import annotations

import numpy as np

from augcli.clean.phash import area_shrink
from augcli.clean.quality import neighbour_correlation
from augcli.datasets.base import Dataset
from augcli.transforms.functional.color import grayscale
from augcli.transforms.functional.geometric import resize

METHODS = ("isolation_forest", "lof")
THUMB = 16  # thumbnail side (pixels)
COMPONENTS = 16  # principal components of the thumbnail kept as features
_PERCENTILES = (5, 25, 50, 75, 95)
_CHUNK = 512  # images per pass: bounds the float temporaries for large images


def thumbnails(images: np.ndarray, size: int = THUMB) -> np.ndarray:
    """Luma thumbnails as float32 (N, h * w) in grey levels: images larger than ``size`` are shrunk
    to size x size (area average, then bilinear); smaller ones are kept at their own resolution."""
    n, h, w = images.shape[:3]
    small = h <= size and w <= size
    out = np.empty((n, h * w if small else size * size), dtype=np.float32)
    for a in range(0, n, _CHUNK):
        gray = grayscale(images[a:a + _CHUNK])[..., :1]
        if not small:
            gray = resize(area_shrink(gray, size), (size, size), "bilinear")
        out[a:a + _CHUNK] = gray.reshape(gray.shape[0], -1)
    return out


def _statistics(images: np.ndarray) -> np.ndarray:
    n = images.shape[0]
    g = grayscale(images)[..., 0].astype(np.float32)
    flat = g.reshape(n, -1)
    across = np.diff(g, axis=2) ** 2 if g.shape[2] > 1 else np.zeros((n, 1, 1), np.float32)
    down = np.diff(g, axis=1) ** 2 if g.shape[1] > 1 else np.zeros((n, 1, 1), np.float32)
    gradient = across.mean(axis=(1, 2), dtype=np.float64) + down.mean(axis=(1, 2), dtype=np.float64)
    corr = np.nan_to_num(neighbour_correlation(images), nan=1.0)  # a constant image is perfectly "smooth"
    return np.column_stack([
        flat.mean(axis=1, dtype=np.float64), flat.std(axis=1, dtype=np.float64),
        np.percentile(flat, _PERCENTILES, axis=1).T, gradient, corr,
    ])


def pixel_statistics(images: np.ndarray) -> np.ndarray:
    """float64 (N, 9): luma mean, std, 5/25/50/75/95th percentiles, gradient energy, neighbour correlation."""
    if images.shape[0] == 0:
        return np.zeros((0, 9))
    return np.concatenate([_statistics(images[a:a + _CHUNK]) for a in range(0, images.shape[0], _CHUNK)])


def embedding(images: np.ndarray, seed: int, components: int = COMPONENTS) -> np.ndarray:
    """PCA of the thumbnails: float64 (N, k), k = min(components, N, pixels per thumbnail)."""
    from sklearn.decomposition import PCA

    thumbs = thumbnails(images)
    k = max(1, min(components, thumbs.shape[0], thumbs.shape[1]))
    return PCA(n_components=k, random_state=seed).fit_transform(thumbs.astype(np.float64))


def image_features(images: np.ndarray, seed: int) -> np.ndarray:
    """Standardised pixel statistics and thumbnail PCA: float64 (N, 9 + k)."""
    from sklearn.preprocessing import StandardScaler

    features = np.column_stack([pixel_statistics(images), embedding(images, seed)])
    return StandardScaler().fit_transform(features)


def outlier_scores(dataset: Dataset, seed: int, method: str = "isolation_forest", contamination: float = 0.01):
    """``(scores, flags)``: float64 (N,) outlyingness (higher = more unusual) and bool (N,) outliers.

    ``method``: "isolation_forest" (score = minus scikit-learn's ``score_samples``, about 0.35..0.8)
    or "lof" (score = the local outlier factor, about 1 for inliers; 20 neighbours). About
    ``contamination`` (0 < c <= 0.5) of the samples are flagged. Fewer than 3 samples: nothing is
    flagged, scores are 0.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < contamination <= 0.5:
        raise ValueError(f"contamination must be in (0, 0.5], got {contamination!r}")
    n = len(dataset)
    if n < 3:
        return np.zeros(n), np.zeros(n, dtype=bool)
    features = image_features(dataset.images, seed)
    if method == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        lof = LocalOutlierFactor(n_neighbors=min(20, n - 1), contamination=contamination)
        flags = lof.fit_predict(features) == -1
        return -lof.negative_outlier_factor_, flags
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=200, contamination=contamination, random_state=seed)
    flags = forest.fit_predict(features) == -1
    return -forest.score_samples(features), flags


def find_outliers(dataset: Dataset, seed: int, method: str = "isolation_forest", contamination: float = 0.01) -> list[dict]:
    """Records (reason "outlier", score from ``outlier_scores``, "method") for flagged samples, in index order."""
    scores, flags = outlier_scores(dataset, seed, method, contamination)
    return [
        {"id": str(dataset.ids[i]), "index": int(i), "reason": "outlier", "score": float(scores[i]), "group": None,
         "suggested_label": None, "method": method}
        for i in np.flatnonzero(flags).tolist()
    ]
