"""Task decomposition by any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp server, OpenAI).

``POST {base_url}/chat/completions`` with JSON output: ``response_format`` ``json_schema`` (the
plan schema, ``strict: false``) or, for older servers, ``json_object``. A server that answers 400
saying it does not support ``response_format``/``json_schema`` is asked again once with
``json_object``, and this planner keeps using ``json_object`` from then on.
"""
from __future__ import annotations

import re
from typing import Any

from exoactor.planning.llm import LLMPlanner
from exoactor.progress import CancelToken
from exoactor.remote.cache import DEFAULT_CACHE_DIR
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.gemini import env_names, quote
from exoactor.remote.http import RemoteClient, server_message
from exoactor.remote.params import connection_parameters
from exoactor.remote.secrets import SecretSource, load_secret

RESPONSE_FORMATS = ("json_schema", "json_object")
_FORMAT_UNSUPPORTED = re.compile(r"response_format|json_schema|json_object|response format", re.I)


class OpenAIPlanner(LLMPlanner):
    """An OpenAI-compatible chat-completions planner; the API key is optional (local servers need none).
    See :class:`exoactor.planning.llm.LLMPlanner` for the errors."""

    name = "openai"
    PARAMETERS = connection_parameters(
        {"base_url": ("http://localhost:11434/v1", "OpenAI-compatible API base URL (Ollama by default; "
                                                   "https://api.openai.com/v1, http://localhost:8000/v1 for vLLM)"),
         "model": ("llama3.1", "model name as the server knows it"),
         "api_key_env": ("OPENAI_API_KEY", "environment variable(s) holding the API key ('' or unset: no key)"),
         "connect_timeout_s": 5.0, "read_timeout_s": (120.0, "seconds to wait for a reply (local models can be slow)"),
         "max_retries": 2},
        {"response_format": ("json_schema", "json_schema (structured output) or json_object (older servers)"),
         "temperature": (0.2, "sampling temperature")})

    def __init__(self, base_url: str = "http://localhost:11434/v1", model: str = "llama3.1",
                 api_key_env: str = "OPENAI_API_KEY", api_key_file: str = "", response_format: str = "json_schema",
                 temperature: float = 0.2, connect_timeout_s: float = 5.0, read_timeout_s: float = 120.0,
                 max_retries: int = 2, backoff_base_s: float = 1.0, cache_dir: str = DEFAULT_CACHE_DIR, **_ignored):
        super().__init__(model=model, cache_dir=cache_dir)
        self.base_url, self.api_key_env, self.api_key_file = str(base_url), str(api_key_env), str(api_key_file)
        self.response_format = str(response_format).strip()
        self.temperature = float(temperature)
        self._client_args = dict(connect_timeout_s=float(connect_timeout_s), read_timeout_s=float(read_timeout_s),
                                 max_retries=int(max_retries), backoff_base_s=float(backoff_base_s))
        self._client = None

    def __repr__(self) -> str:
        return f"OpenAIPlanner(model={self.model!r}, base_url={self.base_url!r})"

    def stats(self) -> dict:
        return {**super().stats(), "response_format": self.response_format}

    def _remote(self) -> RemoteClient:
        with self._lock:
            if self.response_format not in RESPONSE_FORMATS:
                raise RemoteError(Reason.CONFIG, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, "
                                  f"got {self.response_format!r}", backend=self.name)
            if self._client is None:
                names = env_names(self.api_key_env)
                key = load_secret(names, self.api_key_file, what="API key", backend=self.name, required=False)
                secrets = SecretSource()
                secrets.add(key)
                hint = (f"the key in {self.api_key_file}" if self.api_key_file else
                        f"the key in {' or '.join(names)} (or the api_key_file parameter)" if names else
                        "the api_key_env / api_key_file parameters")
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                client = RemoteClient(self.name, self.base_url, headers=headers, secrets=secrets,
                                      error_mapper=self._mapper(secrets), key_hint=hint, **self._client_args)
                client.stats = self._stats
                self._client = client
            return self._client

    def _mapper(self, secrets: SecretSource):
        def mapper(status: int, body: Any, text: str) -> RemoteError | None:
            if status == 404:
                shown = quote(secrets.redact(server_message(body, text)), 200)
                return RemoteError(Reason.NOT_FOUND, f"task planning: not found (HTTP 404 {shown}); check the model "
                                   "parameter (is the model pulled/served?) and base_url (usually ending in /v1)",
                                   backend=self.name, status=status)
            return None

        return mapper

    def _response_format(self) -> dict:
        if self.response_format == "json_object":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": "plan", "schema": self.schema, "strict": False}}

    def _complete(self, messages: list[dict[str, str]], cancel: CancelToken) -> tuple[str, str]:
        client = self._remote()
        while True:
            body = {"model": self.model, "messages": messages, "temperature": self.temperature, "stream": False,
                    "response_format": self._response_format()}
            try:
                reply = client.json("POST", "chat/completions", json_body=body, cancel=cancel, what="task planning")
                break
            except RemoteError as e:
                if e.reason == Reason.CONNECTION:
                    raise RemoteError(e.reason, f"{str(e).removeprefix(self.name + ': ')}; is the server running "
                                      f"at base_url {self.base_url} (e.g. `ollama serve`)?", backend=self.name,
                                      status=e.status) from None
                if (e.status == 400 and self.response_format == "json_schema"
                        and _FORMAT_UNSUPPORTED.search(str(e))):
                    self.response_format = "json_object"  # an older server: ask again once, plain JSON mode
                    continue
                raise
        return self._answer(reply)

    def _answer(self, reply: dict) -> tuple[str, str]:
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            self._stats.add(errors=1)
            raise RemoteError(Reason.BAD_RESPONSE, "task planning: the reply has no choices", backend=self.name)
        choice = choices[0]
        msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        fr = str(choice.get("finish_reason") or "")
        if msg.get("refusal") or fr == "content_filter":
            self._stats.add(errors=1)
            said = f": {quote(msg['refusal'], 300)}" if msg.get("refusal") else ""
            raise RemoteError(Reason.CONTENT_BLOCKED, f"task planning: the model refused (finish_reason {fr or '-'})"
                              f"{said}; rephrase the instruction", backend=self.name)
        content = msg.get("content")
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        note = "the answer was cut off (finish_reason length)" if fr == "length" else ""
        return (content if isinstance(content, str) else ""), note
