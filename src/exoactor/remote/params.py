"""The options every remote backend shares, declared once (node parameters ``<backend>.<key>``)."""
from __future__ import annotations

from exoactor.remote.cache import DEFAULT_CACHE_DIR

ParameterSpec = dict[str, tuple[object, str]]
"""key -> (default, description), as in a backend's ``PARAMETERS``."""

CONNECTION_PARAMETERS: ParameterSpec = {
    "base_url": ("", "service base URL (http or https): proxies, regional endpoints, local servers, tests"),
    "model": ("", "model id"),
    "api_key_env": ("", "environment variable(s) holding the API key, comma-separated (first set one wins)"),
    "api_key_file": ("", "file whose first line is the API key (overrides api_key_env; '' = unset)"),
    "connect_timeout_s": (10.0, "seconds to wait for a connection"),
    "read_timeout_s": (60.0, "seconds to wait for a reply"),
    "max_retries": (4, "retries of a request after a timeout, connection error, 429 or 5xx"),
    "backoff_base_s": (1.0, "base of the jittered exponential backoff between retries (s)"),
    "cache_dir": (DEFAULT_CACHE_DIR, "result cache folder ('' disables): a re-run with the same inputs is free"),
}


def parameters(common: ParameterSpec, overrides: dict[str, object],
               extra: ParameterSpec | None = None) -> ParameterSpec:
    """``common`` with per-backend defaults (``overrides``: key -> default, or (default, description))
    plus the backend's own ``extra`` keys."""
    unknown = set(overrides) - set(common)
    if unknown:
        raise KeyError(f"not common parameters: {sorted(unknown)}")
    out: ParameterSpec = {}
    for key, (default, desc) in common.items():
        o = overrides.get(key, default)
        out[key] = o if isinstance(o, tuple) else (o, desc)
    out.update(extra or {})
    return out


def connection_parameters(overrides: dict[str, object], extra: ParameterSpec | None = None) -> ParameterSpec:
    """CONNECTION_PARAMETERS with per-backend defaults plus ``extra`` keys."""
    return parameters(CONNECTION_PARAMETERS, overrides, extra)
