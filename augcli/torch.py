"""PyTorch data path (optional extra ``augcli[torch]``; torch is imported here and by ``evaluation.cnn`` only).

``SourceDataset`` serves any augcli source (digits, a folder, an ``.npz``) by index as
(uint8 (H, W, C) image, class index, id); ``BatchAugmenter`` is a ``collate_fn`` that stacks a
batch, augments it in one batched call and returns float (B, C, H, W) in [0, 1] (or normalised by
``mean``/``std``, or uint8) and labels: class indices, or soft (B, K) rows when the pipeline mixes
(mixup, cutmix), K = the class count.

Draws depend on (the strategy's seed, sample id, epoch) only (``Pipeline.keys``), so a batch's
bytes are the same for any ``num_workers`` and worker start method. Without mixing they are the
same for any batch size too; mixing takes its partners from the batch, as torchvision's
``MixUp`` does, so the batch's samples decide them. Call ``set_epoch(e)`` on the augmenter before
each epoch: workers get a copy of it when the epoch's iterator starts (so no
``persistent_workers=True``), and epoch ``e`` draws copy ``e + 1`` (copy 0 is the original).

In a DataLoader worker a batch is written into shared memory (a memfd on Linux), so it reaches the
main process as a handle, not a copy; see ``_Output``.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as _TorchDataset, get_worker_info

from augcli.datasets.source import ArraySource, Source
from augcli.pipeline import Pipeline


class SourceDataset(_TorchDataset):
    """Index -> (uint8 (H, W, C) array, class index, id) over ``source`` (rows ``rows``, default all).
    A folder source decodes its file on each access (in the DataLoader's workers); an in-memory one
    gives a read-only view of its row."""

    def __init__(self, source: Source, rows=None):
        self.source = source
        self.rows = np.arange(len(source)) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = self.rows[i]
        if isinstance(self.source, ArraySource):  # read() would copy it into a fresh array, copied again by the collate
            image = self.source.data.images[row]
            image.flags.writeable = False  # the view's flag only: the source stays writeable
        else:
            image = self.source.read(np.array([row]))[0]
        return image, int(self.source.labels[row]), str(self.source.ids[row])


class BatchAugmenter:
    """``collate_fn``: a list of (image, label, id) -> ((B, C, H, W) tensor, labels tensor), augmented by
    ``pipeline`` for the current epoch, on ``device``.

    The images are float32 ``x / 255`` in [0, 1], or ``(x / 255 - mean) / std`` per channel when ``mean``
    and ``std`` (1 or C values each) are given: torchvision's ``Normalize``, in float32, so the same bits.
    ``dtype=torch.uint8`` gives the augmented bytes as (B, C, H, W) uint8 instead, e.g. to normalise on a
    GPU ``device``. Labels are int64 class indices, or float32 (B, K) soft rows under mixing.

    ``pipeline`` is a ``Pipeline``, or an ``AdaptivePipeline`` (each sample augmented with probability
    p, which ``update`` moves by ADA's rule between epochs): see ``from_strategy``."""

    def __init__(self, pipeline, num_classes: int, device: str | torch.device = "cpu", epoch: int = 0,
                 mean=None, std=None, dtype: torch.dtype = torch.float32):
        self.pipeline, self.num_classes = pipeline, int(num_classes)
        self.device = torch.device(device)
        self.epoch = int(epoch)
        if dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"dtype must be torch.float32 or torch.uint8, got {dtype}")
        if (mean is None) != (std is None) or (dtype == torch.uint8 and mean is not None):
            raise ValueError("give mean and std together, and only with dtype=torch.float32")
        self.dtype = dtype
        self.mean, self.std = (None if v is None else np.atleast_1d(np.asarray(v, np.float32)) for v in (mean, std))
        if self.std is not None and not self.std.all():
            raise ValueError("std must not be 0")

    @classmethod
    def from_strategy(cls, strategy, class_names, overrides=(), **options) -> "BatchAugmenter":
        """The strategy's pipeline for classes ``class_names`` (K = their count), under its ``adaptive:``
        section when that is enabled (then ``update`` moves p); ``options`` as the constructor's."""
        from augcli.adaptive import AdaptivePipeline  # function-level: only adaptive strategies need it
        from augcli.config.strategy import Strategy, load_strategy

        if not isinstance(strategy, Strategy):
            strategy = load_strategy(strategy, overrides)
        if (strategy.config.get("adaptive") or {}).get("enabled"):
            pipeline = AdaptivePipeline.from_strategy(strategy, class_names=class_names)
        else:
            pipeline = Pipeline.from_strategy(strategy, class_names=class_names)
        return cls(pipeline, num_classes=len(class_names), **options)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def controller(self):
        """The ``AdaptiveController`` when the pipeline is an ``AdaptivePipeline``, else None."""
        return getattr(self.pipeline, "controller", None)

    @property
    def p(self) -> float:
        """The share of samples augmented: the controller's p, else 1."""
        return 1.0 if self.controller is None else self.controller.p

    def update(self, train_metric: float, val_metric: float | None = None) -> float:
        """After an epoch, ADA's step on p from the loop's metrics (train accuracy and val accuracy for
        ``metric: gap``; mean top-class probability for ``metric: confidence``); returns p. Workers see
        the new p from the next epoch's iterator on."""
        if self.controller is None:
            raise ValueError("update() needs an adaptive pipeline: an AdaptivePipeline, or a strategy whose "
                             "adaptive: section is enabled")
        return self.controller.update(train_metric, val_metric)

    def __call__(self, batch):
        images = np.stack([np.asarray(b[0], dtype=np.uint8) for b in batch])
        labels = np.asarray([b[1] for b in batch], dtype=np.int64)
        ids = [str(b[2]) for b in batch]
        out, out_labels = self.pipeline(images, ids=ids, copy=self.epoch + 1, labels=labels,
                                        num_classes=self.num_classes)
        x = _nchw(out, self.dtype, self._tables(out.shape[3])).to(self.device)
        dtype = torch.float32 if out_labels.ndim == 2 else torch.int64
        return x, torch.as_tensor(np.asarray(out_labels), dtype=dtype, device=self.device)

    def _tables(self, channels: int) -> list[np.ndarray] | None:
        """Per channel, the 256 float32 values of the bytes 0..255 under ``mean``/``std`` (None without)."""
        if self.mean is None:
            return None
        if {len(self.mean), len(self.std)} - {1, channels}:
            raise ValueError(f"mean and std need 1 or {channels} values (the channels), "
                             f"got {len(self.mean)} and {len(self.std)}")
        unit = np.arange(256, dtype=np.float32) / np.float32(255)
        mean, std = (np.broadcast_to(v, (channels,)) for v in (self.mean, self.std))
        return [(unit - m) / s for m, s in zip(mean, std)]  # float32 steps, as Normalize's sub_ and div_


def _nchw(out: np.ndarray, dtype: torch.dtype, tables: list[np.ndarray] | None) -> torch.Tensor:
    """uint8 (N, H, W, C) -> (N, C, H, W) tensor of ``dtype`` in one pass per channel plane: the bytes, x / 255
    in float32, or each channel's 256-entry table (cv2.LUT). torch's strided float convert and a separate
    division pass took ~3x as long."""
    n, h, w, c = out.shape
    with _Output((n, c, h, w), dtype) as batch:
        for i in range(n):
            planes = batch.image(i)
            for k, plane in enumerate(cv2.split(out[i])):  # contiguous uint8 planes, what OpenCV reads fastest
                dst = planes[k]  # a contiguous view of the right type: OpenCV fills it in place
                if dtype == torch.uint8:
                    dst[...] = plane
                elif tables is None:  # exact, as torch's div_(255) (tests: every byte); ~1.3x faster than LUT
                    cv2.divide(plane, 255.0, dst=dst, dtype=cv2.CV_32F)
                else:
                    cv2.LUT(plane, tables[k], dst=dst)
            batch.written(i)
        return batch.tensor()


class _Output:
    """Where a (N, C, H, W) batch is written, image by image, and the tensor it becomes.

    In the main process: fresh NumPy memory (NumPy asks for huge pages for large arrays, ~5x cheaper to fault
    in than torch.empty's 4 KiB pages). In a DataLoader worker the tensor must be in shared memory, so that
    sending it passes a handle. Filling fresh shared memory through a mapping faults once per 4 KiB page;
    pwrite() into a memfd allocates the same pages without those faults (~18 ms instead of ~31 ms for a
    38 MB batch here), so each image is made in a small buffer kept warm (in cache) and written there. That
    needs torch to share by file descriptor (Linux's default), so the main process maps this very memfd;
    otherwise images are written straight into shared memory allocated as default_collate allocates it."""

    def __init__(self, shape: tuple, dtype: torch.dtype):
        self.shape, self.dtype, self.fd, self.x = shape, dtype, None, None
        np_dtype = np.float32 if dtype == torch.float32 else np.uint8
        if get_worker_info() is None:
            self.x = torch.from_numpy(np.empty(shape, np_dtype))
        elif _MEMFD and torch.multiprocessing.get_sharing_strategy() == "file_descriptor":
            self.array = _scratch(shape[1:], np_dtype)
            self.fd = os.memfd_create("augcli-batch", os.MFD_CLOEXEC)
            os.ftruncate(self.fd, self.array.nbytes * shape[0])
            return
        else:
            self.x = self._tensor(torch.UntypedStorage._new_shared(int(np.prod(shape)) * dtype.itemsize))
        self.array = self.x.numpy()

    def _tensor(self, storage) -> torch.Tensor:
        return torch.empty(0, dtype=self.dtype).set_(storage, 0, self.shape)

    def image(self, i: int) -> np.ndarray:
        return self.array if self.fd is not None else self.array[i]

    def written(self, i: int) -> None:
        if self.fd is not None:
            data, done, at = memoryview(self.array).cast("B"), 0, i * self.array.nbytes
            while done < len(data):  # pwrite may write less than asked
                done += os.pwrite(self.fd, data[done:], at + done)

    def tensor(self) -> torch.Tensor:
        if self.fd is None:
            return self.x
        nbytes = self.array.nbytes * self.shape[0]
        return self._tensor(torch.UntypedStorage._new_shared_fd_cpu(self.fd, nbytes))  # maps a duplicate of fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)


# Linux, and the torch call that maps a memfd as a storage (what torch uses to receive a shared tensor;
# a private name, hence the check and the fallback)
_MEMFD = hasattr(os, "memfd_create") and hasattr(torch.UntypedStorage, "_new_shared_fd_cpu")
_SCRATCH: list[np.ndarray] = []  # this process's warm image buffer (a DataLoader worker's), see _Output


def _scratch(shape: tuple, np_dtype) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(np_dtype).itemsize
    if not _SCRATCH or _SCRATCH[0].nbytes < nbytes:
        _SCRATCH[:] = [np.empty(nbytes, np.uint8)]
    return _SCRATCH[0][:nbytes].view(np_dtype).reshape(shape)
