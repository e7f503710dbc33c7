"""Backend registries: ``{"name": "module:Class"}`` dicts resolved lazily by name.

A backend class may declare ``PARAMETERS = {key: (default, description)}``: nodes declare them
as ROS parameters ``<backend name>.<key>`` and pass the values to the constructor as keyword
arguments, so adding a backend touches one new module plus one registry line.
"""
from __future__ import annotations

import importlib


class UnknownBackendError(ValueError):
    """A backend name that no registry entry matches."""


def backend_class(registry: dict[str, str], name: str, kind: str) -> type:
    """The class registered as ``name`` (imported on demand)."""
    if name not in registry:
        raise UnknownBackendError(f"unknown {kind} backend {name!r}; available: {', '.join(sorted(registry))}")
    module, cls = registry[name].split(":")
    return getattr(importlib.import_module(module), cls)


def backend_parameters(cls: type) -> dict[str, tuple[object, str]]:
    """``cls.PARAMETERS`` (empty when the backend has no options)."""
    return dict(getattr(cls, "PARAMETERS", {}) or {})


def load_backend(registry: dict[str, str], name: str, kind: str, **kwargs):
    """Instantiate the backend ``name`` of ``registry`` with ``kwargs``."""
    return backend_class(registry, name, kind)(**kwargs)
