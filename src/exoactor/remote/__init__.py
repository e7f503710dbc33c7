"""Clients of remote generative services (Gemini, Veo, Kling, OpenAI-compatible servers).

Everything they share lives here, once: :mod:`errors` (one error type with a ``reason`` users
can act on), :mod:`secrets` (keys from the environment or a key file, redaction),
:mod:`http` (timeouts, retries with jittered exponential backoff honouring ``Retry-After``,
cancellation, polling with a deadline, atomic checked downloads, per-backend call statistics)
and :mod:`cache` (results keyed by input image hash, prompt, model and parameters).
No rclpy here.
"""
from exoactor.remote.errors import RemoteError, Reason
from exoactor.remote.http import RemoteClient, RemoteStats
from exoactor.remote.secrets import SecretSource, load_secret

__all__ = ["RemoteError", "Reason", "RemoteClient", "RemoteStats", "SecretSource", "load_secret"]
