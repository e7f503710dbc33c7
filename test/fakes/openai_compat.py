"""A local stand-in for an OpenAI-compatible ``POST {base}/chat/completions`` server (Ollama, vLLM, OpenAI).

``api_key``: when set, requests must carry ``Authorization: Bearer <api_key>`` (else HTTP 401 in
OpenAI's shape, which echoes the presented key so that tests can check it is redacted); None means
no authentication (a local server). ``supports_json_schema`` False answers a ``response_format``
of type ``json_schema`` with HTTP 400, as older servers do. Answers are popped from ``answers``
(str as is, dict/list as JSON); ``default_answer`` when empty. ``refuse`` answers with a refusal.
"""
from __future__ import annotations

import json

from fakes.base import FakeService, Recorded, Reply


class FakeOpenAICompat(FakeService):
    def __init__(self, api_key: str | None = "sk-test-openai-key-0123456789", prefix: str = "/v1"):
        super().__init__()
        self.api_key = api_key
        self.prefix = prefix
        self.api_base = self.base_url + prefix
        self.reset()

    def reset(self) -> None:
        """Forget requests, injections, latencies and modes (one server for many tests)."""
        self.clear()
        self.supports_json_schema = True
        self.answers: list = []
        self.default_answer: object = {"steps": []}
        self.refuse = False
        self.finish_reason = "stop"

    def route(self, rec: Recorded) -> Reply:
        if rec.method != "POST" or rec.path != f"{self.prefix}/chat/completions":
            return Reply(404, {"error": {"message": f"no route {rec.method} {rec.path}", "type": "not_found"}})
        if self.api_key is not None:
            auth = {k.lower(): v for k, v in rec.headers.items()}.get("authorization", "")
            if auth != f"Bearer {self.api_key}":
                shown = auth.removeprefix("Bearer ") or "(none)"
                return Reply(401, {"error": {"message": f"Incorrect API key provided: {shown}.",
                                             "type": "invalid_request_error", "code": "invalid_api_key"}})
        body = rec.body if isinstance(rec.body, dict) else {}
        fmt = (body.get("response_format") or {}).get("type")
        if fmt == "json_schema" and not self.supports_json_schema:
            return Reply(400, {"error": {"message": "response_format type 'json_schema' is not supported; "
                                                    "use 'json_object'", "type": "invalid_request_error"}})
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return Reply(400, {"error": {"message": "model and messages are required",
                                         "type": "invalid_request_error"}})
        if self.refuse:
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that request."}
        else:
            with self._lock:
                answer = self.answers.pop(0) if self.answers else self.default_answer
            message = {"role": "assistant", "content": answer if isinstance(answer, str) else json.dumps(answer)}
        return Reply(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})
