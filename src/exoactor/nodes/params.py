"""Node parameters: declared with a description, type-checked, backends' options as ``<backend>.<key>``."""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from exoactor.geometry import DEFAULT_CALIBRATION, LookAtCalibration
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
    try:
        return cls(**values, **extra)
    except ValueError as e:  # a backend's own check of its options: a user's mistake, said in one line
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{kind} backend {name!r}: {e}") from None


def declare_look_at(node: Node, prefix: str, size: bool = True, note: str = "") -> LookAtCalibration:
    """A camera calibration as parameters ``<prefix>.{width,height,}fovy_deg,eye_m,target_m`` with
    :data:`exoactor.geometry.DEFAULT_CALIBRATION` as defaults (``size``: also declare the image size)."""
    d = DEFAULT_CALIBRATION
    w = declare(node, f"{prefix}.width", d.width, f"{note}camera image width (px)") if size else d.width
    h = declare(node, f"{prefix}.height", d.height, f"{note}camera image height (px)") if size else d.height
    fovy = declare(node, f"{prefix}.fovy_deg", d.fovy_deg,
                   f"{note}camera vertical field of view (deg), square pixels, centred")
    eye = declare(node, f"{prefix}.eye_m", list(d.eye_world_m), f"{note}camera position in the world (m)")
    target = declare(node, f"{prefix}.target_m", list(d.target_world_m),
                     f"{note}point the camera looks at in the world (m)")
    return LookAtCalibration(w, h, fovy, tuple(eye), tuple(target))
