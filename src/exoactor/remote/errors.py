"""One error type for every remote service, with a machine-readable ``reason``."""
from __future__ import annotations


class Reason:
    """Why a remote call failed (``RemoteError.reason``; also the action results' ``error_reason``)."""

    AUTH = "auth"                        # 401, missing or rejected key
    PERMISSION = "permission"            # 403
    QUOTA = "quota"                      # no credits / quota exhausted
    RATE_LIMITED = "rate_limited"        # 429 (or Kling 1302/1303) after the retries
    SERVER = "server_error"              # 5xx after the retries
    TIMEOUT = "timeout"                  # connect/read timeout after the retries
    CONNECTION = "connection"            # DNS, refused, reset
    BAD_REQUEST = "bad_request"          # other 4xx: the request itself is wrong
    NOT_FOUND = "not_found"              # 404 (model id, result URL)
    BAD_RESPONSE = "bad_response"        # malformed JSON, missing fields, undecodable media
    CONTENT_BLOCKED = "content_blocked"  # the service's safety filter refused
    DEADLINE = "deadline"                # a long-running operation did not finish in time
    FAILED = "failed"                    # the service reports the job failed (other reason)
    CONFIG = "config"                    # a parameter is wrong (base URL, key file...)

    ALL = (AUTH, PERMISSION, QUOTA, RATE_LIMITED, SERVER, TIMEOUT, CONNECTION, BAD_REQUEST, NOT_FOUND,
           BAD_RESPONSE, CONTENT_BLOCKED, DEADLINE, FAILED, CONFIG)


class RemoteError(RuntimeError):
    """A remote call failed; ``str(e)`` is a user-facing message with no secret in it."""

    def __init__(self, reason: str, message: str, *, backend: str = "", status: int | None = None):
        if reason not in Reason.ALL:
            raise ValueError(f"unknown reason {reason!r}")
        self.reason, self.backend, self.status = reason, backend, status
        super().__init__(f"{backend}: {message}" if backend else message)
