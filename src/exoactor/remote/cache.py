"""A result cache for remote generations: a re-run does not pay twice.

Keyed by everything that determines the output: the input image(s) by content hash, the prompt,
the model and the request parameters (never the key). Entries are files written atomically
under ``<cache_dir>/<backend>/<key[:2]>/<key><suffix>``; an empty ``cache_dir`` disables it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

DEFAULT_CACHE_DIR = "~/.cache/exoactor/remote"


def file_sha256(path: Path | str | None) -> str:
    """Content hash of a file ("" for None)."""
    if not path:
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(**parts: Any) -> str:
    """A stable key from JSON-serialisable parts (sorted, compact)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResultCache:
    """Files by key for one backend."""

    def __init__(self, cache_dir: str | Path, backend: str):
        self.root = Path(os.path.expanduser(str(cache_dir))) / backend if str(cache_dir) else None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _path(self, key: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}{suffix}"

    def get(self, key: str, suffix: str) -> Path | None:
        if self.root is None:
            return None
        p = self._path(key, suffix)
        return p if p.is_file() and p.stat().st_size > 0 else None

    def put(self, key: str, src: Path | str, suffix: str) -> Path | None:
        """Copy ``src`` into the cache (atomically); returns the entry, None when disabled or unwritable."""
        if self.root is None:
            return None
        dest = self._path(key, suffix)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except OSError:
            return None  # a cache that cannot be written only costs a re-run
        return dest

    def fetch(self, key: str, suffix: str, dest: Path | str) -> bool:
        """Copy a cached entry to ``dest`` (atomically); False on a miss."""
        src = self.get(key, suffix)
        if src is None:
            return False
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return True
