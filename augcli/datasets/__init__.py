"""Loaders that turn a source (digits, an image folder, an .npz file) into a ``Dataset``."""

from augcli.datasets.base import Dataset, Skipped

__all__ = ["Dataset", "Skipped"]
