"""Task decomposition by a Gemini text model with structured output (``responseJsonSchema``)."""
from __future__ import annotations

from exoactor.planning.llm import LLMPlanner
from exoactor.progress import CancelToken
from exoactor.remote.cache import DEFAULT_CACHE_DIR
from exoactor.remote.errors import Reason, RemoteError
from exoactor.remote.gemini import (
    GEMINI_BASE_URL,
    GEMINI_KEY_ENVS,
    answer_parts,
    block_message,
    finish_reason,
    gemini_client,
    generate_content,
    text_of,
)
from exoactor.remote.params import connection_parameters


class GeminiPlanner(LLMPlanner):
    """``POST {base_url}/v1beta/models/{model}:generateContent`` with ``generationConfig.responseMimeType``
    ``application/json`` and ``responseJsonSchema`` (the plan schema); the JSON comes back as the text
    of ``candidates[0].content.parts``. See :class:`exoactor.planning.llm.LLMPlanner` for the errors."""

    name = "gemini"
    PARAMETERS = connection_parameters(
        {"base_url": GEMINI_BASE_URL, "model": ("gemini-2.5-flash", "Gemini text model id"),
         "api_key_env": GEMINI_KEY_ENVS, "max_retries": 3},
        {"temperature": (0.2, "sampling temperature")})

    def __init__(self, base_url: str = GEMINI_BASE_URL, model: str = "gemini-2.5-flash",
                 api_key_env: str = GEMINI_KEY_ENVS, api_key_file: str = "", temperature: float = 0.2,
                 connect_timeout_s: float = 10.0, read_timeout_s: float = 60.0, max_retries: int = 3,
                 backoff_base_s: float = 1.0, cache_dir: str = DEFAULT_CACHE_DIR, **_ignored):
        super().__init__(model=model, cache_dir=cache_dir)
        self.base_url, self.api_key_env, self.api_key_file = str(base_url), str(api_key_env), str(api_key_file)
        self.temperature = float(temperature)
        self._client_args = dict(connect_timeout_s=float(connect_timeout_s), read_timeout_s=float(read_timeout_s),
                                 max_retries=int(max_retries), backoff_base_s=float(backoff_base_s))
        self._client = None

    def __repr__(self) -> str:
        return f"GeminiPlanner(model={self.model!r}, base_url={self.base_url!r})"

    def _remote(self):
        with self._lock:
            if self._client is None:
                client = gemini_client(self.name, base_url=self.base_url, api_key_env=self.api_key_env,
                                       api_key_file=self.api_key_file, **self._client_args)
                client.stats = self._stats
                self._client = client
            return self._client

    def _complete(self, messages: list[dict[str, str]], cancel: CancelToken) -> tuple[str, str]:
        client = self._remote()
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        contents = [{"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
                    for m in messages if m["role"] != "system"]
        body = {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": contents,
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": self.schema,
                                 "temperature": self.temperature},
        }
        reply = generate_content(client, self.model, body, cancel=cancel, what="task planning")
        blocked = block_message(reply)
        if blocked:
            self._stats.add(errors=1)
            raise RemoteError(Reason.CONTENT_BLOCKED, f"task planning: {blocked}; rephrase the instruction",
                              backend=self.name)
        text = text_of(answer_parts(reply, backend=self.name, what="task planning"))
        fr = finish_reason(reply)
        note = f"the answer was cut off (finishReason {fr})" if fr == "MAX_TOKENS" else (
            f"finishReason {fr}" if fr and fr != "STOP" else "")
        return text, note
