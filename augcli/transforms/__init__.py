"""Transforms: batched, seeded image augmentations registered by YAML name."""

from augcli.transforms.base import Transform, apply_gated
from augcli.transforms.registry import REGISTRY, build, load_all, register

__all__ = ["Transform", "apply_gated", "REGISTRY", "build", "load_all", "register"]
