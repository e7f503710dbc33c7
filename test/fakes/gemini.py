"""A local stand-in for the Gemini ``generateContent`` REST API (shapes as in models-and-apis.md).

``POST /v1beta/models/{model}:generateContent`` with the key in ``x-goog-api-key``:
- image models (the id contains "image"): the reply's final image is the input image colour-inverted
  and scaled to ``out_short_side`` px on its shorter side at the requested ``imageConfig.aspectRatio``;
  with ``thoughts`` a thought text part and a thought image (all black) come first, as Nano Banana
  Pro's thinking does. ``image_mode`` switches to failures: "no_image" (text only), "undecodable",
  "tiny", "wrong_aspect", "image_safety" (finishReason IMAGE_SAFETY, text only), "prompt_blocked"
  (promptFeedback.blockReason, no candidates).
- text models: answers are popped from ``answers`` (str as is, dict/list as JSON text); when it is
  empty ``default_answer`` is sent. ``text_mode`` "safety" answers finishReason SAFETY without parts.
A wrong key gets Google's real reply to a bad key: HTTP 400 INVALID_ARGUMENT / API_KEY_INVALID.
"""
from __future__ import annotations

import base64
import json
import re

import cv2
import numpy as np

from fakes.base import FakeService, Recorded, Reply

_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
ASPECTS = {"1:1": 1.0, "2:3": 2 / 3, "3:2": 1.5, "3:4": 0.75, "4:3": 4 / 3, "4:5": 0.8, "5:4": 1.25,
           "9:16": 9 / 16, "16:9": 16 / 9, "21:9": 21 / 9}


def png_b64(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def decode_b64_rgb(data: str) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not an image"
    return bgr[:, :, ::-1]


class FakeGemini(FakeService):
    def __init__(self, api_key: str = "test-gemini-key-0123456789"):
        super().__init__()
        self.api_key = api_key
        self.reset()

    def reset(self) -> None:
        """Forget requests, injections, latencies and modes (one server for many tests)."""
        self.clear()
        self.image_mode = "ok"
        self.thoughts = True
        self.out_short_side = 300
        self.text_mode = "ok"
        self.answers: list = []
        self.default_answer: object = {"steps": []}
        self.model_text = "Here is the edited image."

    # ---- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _ok(parts: list[dict], finish: str = "STOP") -> Reply:
        return Reply(200, {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish,
                                           "index": 0}],
                           "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20}})

    def route(self, rec: Recorded) -> Reply:
        m = _PATH.match(rec.path)
        if rec.method != "POST" or not m:
            return Reply(404, {"error": {"code": 404, "message": f"no route {rec.method} {rec.path}",
                                         "status": "NOT_FOUND"}})
        if {k.lower(): v for k, v in rec.headers.items()}.get("x-goog-api-key") != self.api_key:
            return Reply(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                         "status": "INVALID_ARGUMENT",
                                         "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                      "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})
        body = rec.body if isinstance(rec.body, dict) else {}
        if "image" in m.group("model"):
            return self._image(body)
        return self._text(body)

    def _image(self, body: dict) -> Reply:
        parts = body["contents"][0]["parts"]
        src = decode_b64_rgb(next(p["inlineData"]["data"] for p in parts if "inlineData" in p))
        aspect = ASPECTS[body["generationConfig"]["imageConfig"]["aspectRatio"]]
        mode = self.image_mode
        if mode == "prompt_blocked":
            return Reply(200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
        if mode == "image_safety":
            return self._ok([{"text": "I can't edit this image."}], finish="IMAGE_SAFETY")
        if mode == "no_image":
            return self._ok([{"text": "I cannot do that, but here is a description of a person instead."}])
        s = self.out_short_side
        if mode == "wrong_aspect":
            aspect = 1.0 / aspect if abs(aspect - 1.0) > 0.1 else 2.0
        if mode == "tiny":
            s = 40
        w, h = (int(round(s * aspect)), s) if aspect >= 1 else (s, int(round(s / aspect)))
        out = cv2.resize(255 - src, (w, h), interpolation=cv2.INTER_AREA)
        data = base64.b64encode(b"this is not an image at all").decode() if mode == "undecodable" else png_b64(out)
        answer = []
        if self.thoughts:
            answer += [{"text": "Planning the edit: keep the pose.", "thought": True},
                       {"inlineData": {"mimeType": "image/png", "data": png_b64(np.zeros((h, w, 3), np.uint8))},
                        "thought": True}]
        answer += [{"text": self.model_text}, {"inlineData": {"mimeType": "image/png", "data": data}}]
        return self._ok(answer)

    def _text(self, body: dict) -> Reply:
        if self.text_mode == "safety":
            return Reply(200, {"candidates": [{"finishReason": "SAFETY", "index": 0,
                                               "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                                                  "probability": "HIGH", "blocked": True}]}]})
        with self._lock:
            answer = self.answers.pop(0) if self.answers else self.default_answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return self._ok([{"text": "thinking about the steps", "thought": True}, {"text": text}])
