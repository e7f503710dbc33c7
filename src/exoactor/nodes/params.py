"""Node parameters: declared with a description, type-checked, backends' options as ``<backend>.<key>``."""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from exoactor.registry import backend_class, backend_parameters


class ConfigError(ValueError):
    """A parameter or configuration value the node cannot work with (reported without a traceback)."""


def _type_name(default: Any) -> str:
    if isinstance(default, (list, tuple)) and default:
        return f"{type(default).__name__} of {type(default[0]).__name__}"
    return type(default).__name__


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (ints accepted for floats); ConfigError when it is not."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
        if ok:
            item = default[0] if len(default) else None
            value = [_coerce(name, v, item) if item is not None else v for v in value]
    else:
        ok = True
    if not ok:
        raise ConfigError(f"parameter '{name}' must be {_type_name(default)}, got {value!r}")
    return value


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a documented parameter and return its value (ints accepted where floats are expected)."""
    desc = ParameterDescriptor(description=description, dynamic_typing=True)
    return _coerce(name, node.declare_parameter(name, default, desc).value, default)


def declare_backend(node: Node, registry: dict[str, str], kind: str, name: str, **extra: Any):
    """Instantiate backend ``name``, declaring its ``PARAMETERS`` as ``<name>.<key>`` node parameters."""
    cls = backend_class(registry, name, kind)
    values = {key: declare(node, f"{name}.{key}", default, desc)
              for key, (default, desc) in backend_parameters(cls).items()}
    return cls(**values, **extra)
