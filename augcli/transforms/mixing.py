"""Mixing transforms ("replacing data points"): MixUp and CutMix blend each sample with a partner
and make the labels soft (N, K) with the same weight as the pixels.

A partner is drawn per sample from a *pool* - in a run, the originals of the split being augmented -
with the sample's own stream, so the pairing never depends on how samples are batched. Mixing
transforms must stand at the top level of ``augment.pipeline``; the ``Pipeline`` threads labels
through them.
"""

from __future__ import annotations

import numpy as np

from augcli.config.schema import Bool, Float
from augcli.transforms.base import Params, Transform, take
from augcli.transforms.registry import register


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Hard labels (N,) -> float32 (N, K); soft labels pass through as float32."""
    if labels.ndim == 2:
        return labels.astype(np.float32, copy=False)
    out = np.zeros((labels.shape[0], num_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


class MixPool:
    """Where partners come from: images (M, H, W, C) and their soft labels (M, K)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images
        self.labels = labels.astype(np.float32, copy=False)
        hard = self.labels.argmax(axis=1)
        # class-sorted index with per-class start/count, so "a random member of class c" is one gather
        self.order = np.argsort(hard, kind="stable")
        k = self.labels.shape[1]
        self.counts = np.bincount(hard, minlength=k)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def partners(self, u: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        """Partner rows for uniforms ``u`` in [0, 1): any row, or a row of the given ``classes``."""
        if classes is None:
            return np.minimum((u * len(self.images)).astype(np.int64), len(self.images) - 1)
        count = self.counts[classes]
        pos = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))
        return self.order[self.starts[classes] + pos]


class _Mix(Transform):
    uses_labels = True
    spec = {
        "alpha": Float(1.0, 0.01, 100.0, doc="Beta(alpha, alpha) draws the mixing weight of the sample itself"),
        "within_class": Bool(False, doc="pick partners of the same class (labels stay hard) instead of any class"),
    }

    def sample_params(self, streams, shape):
        return {"lam": streams.beta(self.alpha, self.alpha).astype(np.float32), "partner_u": streams.uniform()}

    def apply(self, images, params):
        raise TypeError(f"{self.name} mixes labels: call it through a Pipeline (or .mix with labels and a pool)")

    def mix(self, images: np.ndarray, labels: np.ndarray, params: Params, pool: MixPool):
        """Mix the gated samples with their partners; returns (images, soft labels)."""
        gate = params["gate"]
        if not gate.any():
            return images, labels
        idx = np.flatnonzero(gate)
        sub = take(params, idx)
        classes = labels[idx].argmax(axis=1) if self.within_class else None
        partner = pool.partners(sub["partner_u"], classes)
        # record the partner row so the manifest can say what each sample was mixed with
        params["partner"] = np.full(gate.shape[0], -1, dtype=np.int64)
        params["partner"][idx] = partner
        mixed, weight = self.blend(images[idx], pool.images[partner], sub)
        out_images, out_labels = images.copy(), labels.copy()
        out_images[idx] = mixed
        w = weight[:, None]
        out_labels[idx] = w * labels[idx] + (1.0 - w) * pool.labels[partner]
        return out_images, out_labels

    def blend(self, images, partners, params) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError


@register("mixup")
class MixUp(_Mix):
    summary = "Blend each image with a partner: lam*x + (1-lam)*x'; labels mixed with the same lam (Zhang et al. 2018)."
    default_p = 0.5

    def blend(self, images, partners, params):
        lam = params["lam"].reshape(-1, 1, 1, 1)
        mixed = lam * images.astype(np.float32) + (1.0 - lam) * partners.astype(np.float32)
        return np.clip(np.rint(mixed), 0, 255).astype(np.uint8), params["lam"]


@register("cutmix")
class CutMix(_Mix):
    summary = "Paste a random box from a partner image; labels weighted by the pasted area (Yun et al. 2019)."
    default_p = 0.5

    def sample_params(self, streams, shape):
        params = super().sample_params(streams, shape)
        params["cy"] = streams.uniform()
        params["cx"] = streams.uniform()
        return params

    def blend(self, images, partners, params):
        n, h, w, _ = images.shape
        cut = np.sqrt(1.0 - params["lam"].astype(np.float64))  # box side as a fraction: area = 1 - lam
        ch, cw = np.rint(cut * h).astype(np.int64), np.rint(cut * w).astype(np.int64)
        y0 = np.clip(np.rint(params["cy"] * h).astype(np.int64) - ch // 2, 0, h)
        x0 = np.clip(np.rint(params["cx"] * w).astype(np.int64) - cw // 2, 0, w)
        y1, x1 = np.minimum(y0 + ch, h), np.minimum(x0 + cw, w)
        rows = np.arange(h)[None, :, None]
        cols = np.arange(w)[None, None, :]
        box = (rows >= y0[:, None, None]) & (rows < y1[:, None, None]) & (cols >= x0[:, None, None]) & (cols < x1[:, None, None])
        mixed = np.where(box[..., None], partners, images)
        # the label weight is the area really kept after clipping the box to the image
        kept = 1.0 - box.reshape(n, -1).mean(axis=1)
        return mixed, kept.astype(np.float32)
