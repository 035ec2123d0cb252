"""The one in-memory dataset type every loader returns and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Skipped:
    """A source file that could not be used: its id (path relative to the root) and why."""

    id: str
    reason: str  # short code: empty, truncated, undecodable, too_large, ...
    detail: str = ""


@dataclass
class Dataset:
    """Images uint8 (N, H, W, C) with C in {1, 3}; ``labels`` int64 (N,) or soft float32 (N, K).

    ``ids`` are stable sample ids (digits index, or the file path relative to the folder root);
    ``class_names[k]`` names label k; ``skipped`` lists unreadable inputs found at load time and
    ``warnings`` inputs that loaded but look wrong (a JPEG named ``.png``).
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    class_names: list[str]
    source: str = ""
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)  # loaded, but worth a look (e.g. wrong_extension)

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be uint8 (N, H, W, C) with C in {{1, 3}}, got {self.images.dtype} {self.images.shape}")
        n = self.images.shape[0]
        if self.labels.shape[0] != n or len(self.ids) != n:
            raise ValueError(f"images, labels and ids disagree in length: {n}, {self.labels.shape[0]}, {len(self.ids)}")
        self.ids = np.asarray(self.ids, dtype=str)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple:
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "Dataset":
        """The samples at ``index`` (an index array or boolean mask), keeping class names."""
        return Dataset(self.images[index], self.labels[index], self.ids[index], self.class_names, self.source, [])

    def class_counts(self) -> dict[str, int]:
        """Samples per class name (soft labels count for their most likely class)."""
        totals = np.bincount(hard_labels(self.labels), minlength=len(self.class_names))
        return {name: int(v) for name, v in zip(self.class_names, totals)}


def hard_labels(labels: np.ndarray) -> np.ndarray:
    """(N,) class indices: hard labels as they are, the most likely class of soft (N, K) labels."""
    return labels if labels.ndim == 1 else labels.argmax(axis=1)
