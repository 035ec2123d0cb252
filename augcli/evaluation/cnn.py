"""``--model cnn``: a small convolutional network with the scikit-learn calls evaluate and search
make (``fit``, ``partial_fit``, ``predict``, ``predict_proba``, ``classes_``). Imports torch
(extra ``augcli[torch]``); ``models`` imports this module only when the model is asked for.

The network is sized to the image: LeNet-style (two 3x3 convolutions, a pooling, one hidden dense
layer) up to 32x32 pixels, a stem and three residual stages for photos. Training is Adam on
cross-entropy (soft labels of width K as they come from mixup/cutmix), in mini-batches drawn in an
order seeded by (random_state, epoch). It is deterministic on the CPU: weights are initialised
from ``random_state`` under a forked RNG (the caller's torch RNG is left alone), deterministic
algorithms only, and one torch thread while it trains - the same arithmetic whatever ``--jobs``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SMALL = 32  # images up to this size (both sides) get the LeNet-style net


def lenet(channels: int, num_classes: int) -> nn.Module:
    # AdaptiveAvgPool bounds the dense layer's input, so 8x8 and 32x32 share one shape
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(32 * 16, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, num_classes))


class Residual(nn.Module):
    """Two 3x3 convolutions with batch norm and a (strided, projected where needed) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


def resnet(channels: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        Residual(32, 32, 1), Residual(32, 64, 2), Residual(64, 128, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


def network(shape: tuple, num_classes: int) -> nn.Module:
    """The net for (H, W, C) images."""
    h, w, c = shape
    return (lenet if max(h, w) <= SMALL else resnet)(c, num_classes)


@contextlib.contextmanager
def _deterministic(seed: int):
    """Seeded, deterministic, one-thread torch for the block; the caller's settings come back after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


class CNNClassifier:
    """A small CNN on float (N, H, W, C) images in [0, 1] (``models.features(images, model)``)."""

    takes_images = True  # models.features keeps the image axes for it
    soft_labels = True   # fit/partial_fit take (N, K) label distributions as they are

    def __init__(self, random_state: int = 0, epochs: int = 150, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 1e-4, device: str = "cpu"):
        self.random_state, self.epochs, self.batch_size = int(random_state), int(epochs), int(batch_size)
        self.lr, self.weight_decay, self.device = float(lr), float(weight_decay), torch.device(device)
        self.net = None
        self.epochs_done = 0

    def _start(self, shape: tuple, classes: np.ndarray) -> None:
        with _deterministic(self.random_state):
            self.net = network(shape, len(classes)).to(self.device)
        # foreach: one fused update over all parameters (~30 % of a step on these small nets)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay,
                                          foreach=True)
        self.classes_ = np.asarray(classes)
        self.epochs_done = 0

    def _targets(self, y: np.ndarray, sample_weight) -> torch.Tensor:
        k = len(self.classes_)
        if y.ndim == 1:  # hard labels, possibly with weights: one-hot rows scaled by the weight
            rows = np.zeros((y.shape[0], k), dtype=np.float32)
            rows[np.arange(y.shape[0]), np.searchsorted(self.classes_, y)] = 1.0
            y = rows
        y = np.asarray(y, dtype=np.float32)
        if sample_weight is not None:
            y = y * np.asarray(sample_weight, dtype=np.float32)[:, None]
        return torch.from_numpy(np.ascontiguousarray(y)).to(self.device)

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        # centred on grey; the nets' first layers learn the rest
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2)
        return (t - 0.5).contiguous().to(self.device)

    def partial_fit(self, x: np.ndarray, y: np.ndarray, classes=None, sample_weight=None):
        """One epoch over (x, y) in mini-batches; the first call builds the net for ``classes``."""
        if self.net is None:
            if y.ndim == 2:
                classes = np.arange(y.shape[1])
            self._start(tuple(x.shape[1:]), np.unique(y) if classes is None else np.asarray(classes))
        if x.shape[0] == 0:
            return self
        inputs, targets = self._inputs(x), self._targets(y, sample_weight)
        with _deterministic(self.random_state * 1_000_003 + self.epochs_done):
            order = torch.randperm(x.shape[0])
            self.net.train()
            for start in range(0, x.shape[0], self.batch_size):
                rows = order[start:start + self.batch_size]
                if rows.numel() == 1 and start:  # a lone last sample would upset batch norm
                    continue
                logits = self.net(inputs[rows])
                # soft-label cross-entropy; rows of weight w count w times, as sample_weight does elsewhere
                loss = -(targets[rows] * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        self.epochs_done += 1
        return self

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight=None):
        """A fresh net trained ``epochs`` epochs on (x, y)."""
        self.net = None
        classes = np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)
        for _ in range(self.epochs):
            self.partial_fit(x, y, classes=classes, sample_weight=sample_weight)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        out = []
        with _deterministic(self.random_state), torch.no_grad():
            self.net.eval()
            for start in range(0, x.shape[0], 512):
                out.append(F.softmax(self.net(self._inputs(x[start:start + 512])), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), dtype=np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
