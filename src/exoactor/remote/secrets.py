"""API keys: from the environment or a key file named by a parameter, never from code.

Keys never appear in messages: :meth:`SecretSource.redact` scrubs any text that leaves a client
(error messages, server replies quoted in errors).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from exoactor.remote.errors import Reason, RemoteError

REDACTED = "***"


def load_secret(env_names: tuple[str, ...] | list[str], key_file: str = "", *, what: str = "API key",
                backend: str = "", required: bool = True) -> str:
    """The secret from ``key_file`` (if given) or the first set variable of ``env_names``.

    A key file holds the key on its first non-empty line (surrounding whitespace ignored).
    Raises RemoteError(AUTH/CONFIG) naming where it looked (never the value).
    """
    if key_file:
        path = Path(os.path.expanduser(key_file))
        try:
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        except OSError as e:
            raise RemoteError(Reason.CONFIG, f"cannot read the {what} file {path}: {e.strerror or e}",
                              backend=backend) from None
        except UnicodeDecodeError:
            raise RemoteError(Reason.CONFIG, f"the {what} file {path} is not a text file", backend=backend) from None
        if not lines:
            raise RemoteError(Reason.CONFIG, f"the {what} file {path} is empty", backend=backend)
        return lines[0]
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if not required:
        return ""
    raise RemoteError(Reason.AUTH, f"no {what}: set the environment variable {' or '.join(env_names)} "
                      f"or the backend's api_key_file parameter", backend=backend)


@dataclass
class SecretSource:
    """The secrets a client holds, for redaction."""

    secrets: list[str] = field(default_factory=list)

    def add(self, secret: str) -> str:
        if secret and secret not in self.secrets:
            self.secrets.append(secret)
        return secret

    def redact(self, text: str) -> str:
        for s in sorted(self.secrets, key=len, reverse=True):
            if len(s) >= 4:
                text = text.replace(s, REDACTED)
        # Bearer tokens and key query parameters that might be echoed back by a server.
        text = re.sub(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+", r"\1" + REDACTED, text)
        return re.sub(r"(?i)([?&](?:key|api_key|token)=)[^&\s]+", r"\1" + REDACTED, text)
