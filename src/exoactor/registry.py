"""Backend registries: ``{"name": "module:Class"}`` dicts resolved lazily by name."""
from __future__ import annotations

import importlib


class UnknownBackendError(ValueError):
    """A backend name that no registry entry matches."""


def load_backend(registry: dict[str, str], name: str, kind: str, **kwargs):
    """Instantiate the backend ``name`` of ``registry`` with ``kwargs``."""
    if name not in registry:
        raise UnknownBackendError(f"unknown {kind} backend {name!r}; available: {', '.join(sorted(registry))}")
    module, cls = registry[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
