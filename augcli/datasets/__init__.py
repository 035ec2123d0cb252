"""Loaders that turn a source (digits, an image folder, an .npz file) into a ``Dataset``."""

from __future__ import annotations

from pathlib import Path

from augcli.datasets.base import Dataset, Skipped
from augcli.datasets.digits import load_digits
from augcli.datasets.folder import load_folder
from augcli.datasets.npz import load_npz
from augcli.errors import DataError, resolved_from

__all__ = ["Dataset", "Skipped", "load_digits", "load_folder", "load_npz", "load_source", "source_kind"]

_LOADERS = {"digits": load_digits, "folder": load_folder, "npz": load_npz}
# Options each loader understands. A caller can pass the same options for any source: options known
# to some loader but meaningless for this one (e.g. strict for digits) are dropped, unknown ones fail.
_OPTIONS = {
    "digits": {"image_size", "color_mode"},
    "folder": {"image_size", "color_mode", "strict", "extensions", "max_pixels", "follow_symlinks", "resize"},
    "npz": {"image_size", "color_mode", "images_key", "labels_key", "ids_key", "class_names_key"},
}
_ALL_OPTIONS = set().union(*_OPTIONS.values())


def source_kind(source) -> str:
    """"digits" for the literal "digits", "npz" for a path ending in .npz, "folder" for a directory."""
    text = str(source)
    if text == "digits":
        return "digits"
    if text.lower().endswith(".npz"):
        return "npz"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise DataError(f"{text}: no such file or folder{resolved_from(text)}; expected 'digits', an .npz file or a folder of class sub-folders")
    raise DataError(f"{text}: unsupported source; expected 'digits', an .npz file or a folder of class sub-folders")


def load_source(source, kind: str = "auto", **options) -> Dataset:
    """Load ``source`` with the loader for ``kind`` ("auto", "digits", "folder" or "npz").

    ``options`` go to that loader (see load_digits / load_folder / load_npz); options set to None
    leave the loader's default, ones that only other loaders understand are ignored, and unknown
    names raise TypeError.
    """
    unknown = sorted(set(options) - _ALL_OPTIONS)
    if unknown:
        raise TypeError(f"load_source got unknown option(s): {', '.join(unknown)}")
    if kind == "auto":
        kind = source_kind(source)
    if kind not in _LOADERS:
        raise ValueError(f"kind must be 'auto', 'digits', 'folder' or 'npz', got {kind!r}")
    accepted = {k: v for k, v in options.items() if k in _OPTIONS[kind] and v is not None}
    if kind == "digits":
        return load_digits(**accepted)
    return _LOADERS[kind](source, **accepted)
