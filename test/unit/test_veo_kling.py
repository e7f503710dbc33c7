"""Veo and Kling video backends against local fakes of their REST APIs (no network)."""
from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakes.base import Reply
from fakes.kling import FakeKling, kling_error_reply
from fakes.veo import FakeStorage, FakeVeo, google_error

from exoactor.geometry import PinholeCamera
from exoactor.planning.vocabulary import Step
from exoactor.progress import Canceled
from exoactor.registry import backend_class, backend_parameters
from exoactor.remote.errors import Reason, RemoteError
from exoactor.video import VIDEO_BACKENDS
from exoactor.video.base import VideoRequest
from exoactor.video.io import VideoWriter, read_image_rgb, video_info, write_image_rgb
from exoactor.video.kling import KlingVideoGenerator, make_jwt
from exoactor.video.remote_base import DEFAULT_NEGATIVE_PROMPT, truncate_words
from exoactor.video.veo import VeoVideoGenerator

VEO_KEY = "AIzaSyTEST-veo-key-0123456789abcdef"
KLING_AK, KLING_SK = "ak-test-0123456789", "sk-test-secret-abcdefghijklmnop"
KLING_BEARER = "kling-bearer-key-9876543210"
PROMPT = "The person waves the raised right hand. Static camera, the whole body stays in view."
CAM = PinholeCamera.look_at(64, 48, 60.0, [3.0, 0.0, 1.2], [0.0, 0.0, 0.9])
FAST = dict(backoff_base_s=0.01, poll_interval_s=0.05, max_poll_interval_s=0.1, connect_timeout_s=1.0,
            read_timeout_s=1.0, max_retries=3, deadline_s=5.0)


# ---- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mp4_bytes(tmp_path_factory) -> bytes:
    """12 frames of 64x48 moving squares at 24 fps."""
    path = tmp_path_factory.mktemp("video") / "squares.mp4"
    with VideoWriter(path, 24.0, 64, 48) as w:
        for i in range(12):
            f = np.full((48, 64, 3), 30, np.uint8)
            f[10:22, 3 * i:3 * i + 12] = (230, 40, 40)
            f[30:40, 60 - 4 * i:70 - 4 * i] = (40, 200, 60)
            w.write(f)
    return path.read_bytes()


class Images:
    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.ref, self.start, self.end = root / "ref.png", root / "start.png", root / "end.png"
        for i, p in enumerate((self.ref, self.start, self.end)):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :, i] = 200
            img[5 + 5 * i:15 + 5 * i, 10:30] = 255
            write_image_rgb(p, img)

    @staticmethod
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()


@pytest.fixture
def images(tmp_path) -> Images:
    return Images(tmp_path / "images")


@pytest.fixture
def ep(tmp_path) -> Path:
    d = tmp_path / "episode"
    d.mkdir()
    return d


@pytest.fixture
def veo_env(monkeypatch):
    monkeypatch.setenv("EXO_TEST_VEO_KEY", VEO_KEY)


@pytest.fixture
def kling_env(monkeypatch):
    monkeypatch.setenv("EXO_TEST_KLING_AK", KLING_AK)
    monkeypatch.setenv("EXO_TEST_KLING_SK", KLING_SK)
    monkeypatch.delenv("EXO_TEST_KLING_KEY", raising=False)


@pytest.fixture
def veo(mp4_bytes):
    with FakeVeo(mp4_bytes, api_key=VEO_KEY) as fake:
        yield fake


@pytest.fixture
def kling(mp4_bytes):
    with FakeKling(mp4_bytes, access_key=KLING_AK, secret_key=KLING_SK) as fake:
        yield fake


def make_veo(fake, tmp_path, **kw) -> VeoVideoGenerator:
    opts = dict(FAST, base_url=fake.base_url, api_key_env="EXO_TEST_VEO_KEY", cache_dir=str(tmp_path / "cache"))
    opts.update(kw)
    return VeoVideoGenerator(**opts)


def make_kling(fake, tmp_path, **kw) -> KlingVideoGenerator:
    opts = dict(FAST, base_url=fake.base_url, access_key_env="EXO_TEST_KLING_AK", secret_key_env="EXO_TEST_KLING_SK",
                api_key_env="EXO_TEST_KLING_KEY", cache_dir=str(tmp_path / "cache"))
    opts.update(kw)
    return KlingVideoGenerator(**opts)


def request(ep: Path, images: Images, *, start=False, end=False, duration=3.0, prompt=PROMPT) -> VideoRequest:
    steps = [Step("wave", side="right", duration_s=duration, prompt=prompt), Step("idle", duration_s=1.0)]
    return VideoRequest(ep, steps, 0, images.ref, images.start if start else None, CAM,
                        end_image_path=images.end if end else None)


class Progress:
    def __init__(self):
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done, total, detail):
        self.calls.append((done, total, detail))

    @property
    def text(self) -> str:
        return "\n".join(d for _, _, d in self.calls)


def run(backend, req, cancel=None, progress=None):
    return backend.generate(req, progress or Progress(), cancel or threading.Event())


def fails(backend, req, reason, **kw) -> RemoteError:
    with pytest.raises(RemoteError) as ei:
        run(backend, req, **kw)
    assert ei.value.reason == reason, str(ei.value)
    assert "\n" not in str(ei.value)
    return ei.value


def hits(fake, method: str, fragment: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and fragment in r.path)


def header(rec_headers: dict, name: str) -> str | None:
    return {k.lower(): v for k, v in rec_headers.items()}.get(name.lower())


def assert_no_files(ep: Path):
    assert sorted(p.name for p in ep.iterdir()) == [], "a failed generation left files behind"


def assert_secret_absent(secrets: list[str], texts: list[str], dirs: list[Path]):
    for s in secrets:
        for t in texts:
            assert s not in t
        for d in dirs:
            for p in d.rglob("*") if d.exists() else []:
                if p.is_file():
                    assert s.encode() not in p.read_bytes(), f"secret written to {p}"


def assert_segment(seg, ep: Path, n=12):
    assert seg.video_path == ep / "segment_00.mp4" and seg.last_frame_path == ep / "segment_00_last.png"
    assert video_info(seg.video_path) == (24.0, n, 64, 48)
    assert (seg.fps, seg.num_frames, seg.width, seg.height) == (24.0, n, 64, 48)
    last = read_image_rgb(seg.last_frame_path)
    assert last.shape == (48, 64, 3)
    assert last[30:40, 20:30].mean(axis=(0, 1))[1] > 120  # the green square of the last frame, where it ends


# ---- registry, parameters, pure helpers -------------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [("veo", VeoVideoGenerator), ("kling", KlingVideoGenerator)])
def test_registry_and_parameters_are_ros_typable(name, cls):
    assert backend_class(VIDEO_BACKENDS, name, "video") is cls
    params = backend_parameters(cls)
    for key in ("base_url", "model", "api_key_env", "api_key_file", "connect_timeout_s", "read_timeout_s",
                "max_retries", "backoff_base_s", "deadline_s", "poll_interval_s", "cache_dir", "max_concurrent"):
        assert key in params
    for key, (default, desc) in params.items():
        assert type(default) in (str, int, float, bool), key
        assert desc
    assert not any("key" == k or k.endswith("_key") for k in params)  # keys are never parameters
    b = cls(max_concurrent=3, fps=30.0, video_paths=[""])  # unknown node kwargs are ignored; no key needed yet
    assert b.max_concurrency == 3 and cls().max_concurrency == 2
    assert b.stats()["calls"] == 0


def test_durations_cover_the_step():
    v = VeoVideoGenerator()
    assert [v.video_seconds(d)[0] for d in (0.5, 4.0, 4.2, 6.0, 7.9, 8.0)] == [4, 4, 6, 6, 8, 8]
    s, notes = v.video_seconds(12.0)
    assert s == 8 and "at most 8 s" in notes[0]
    assert VeoVideoGenerator(resolution="1080p").video_seconds(2.0)[0] == 8
    k = KlingVideoGenerator()
    assert [k.video_seconds(d)[0] for d in (1.0, 5.0, 5.5, 10.0, 20.0)] == [5, 5, 10, 10, 10]


def test_truncate_words():
    text = " ".join(f"word{i}" for i in range(1000))
    cut = truncate_words(text, 2500)
    assert len(cut) <= 2500 and text.startswith(cut) and text[len(cut)] == " "
    assert truncate_words("short", 10) == "short"
    assert truncate_words("x" * 30, 10) == "x" * 10


@pytest.mark.parametrize("cls,env", [(VeoVideoGenerator, "GEMINI_API_KEY"), (KlingVideoGenerator, "KLING_API_KEY")])
def test_missing_key_fails_at_call_time(cls, env, tmp_path, ep, images, monkeypatch):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    b = cls(cache_dir="", base_url="http://127.0.0.1:9")  # constructing never needs the key
    e = fails(b, request(ep, images), Reason.AUTH)
    assert env in str(e)


def test_bad_parameters_fail_at_call_time(ep, images):
    e = fails(VeoVideoGenerator(resolution="2k", cache_dir=""), request(ep, images), Reason.CONFIG)
    assert "resolution" in str(e)
    e = fails(KlingVideoGenerator(mode="ultra", cache_dir=""), request(ep, images), Reason.CONFIG)
    assert "mode" in str(e)
    e = fails(VeoVideoGenerator(cache_dir="", api_key_file=str(images.ref)), request(ep, images), Reason.CONFIG)
    assert "not a text file" in str(e)  # a wrong key file is a config error, not a crash
    key_file = ep.parent / "key.txt"
    key_file.write_text("k-123456\n")
    e = fails(VeoVideoGenerator(base_url="ftp://x", cache_dir="", api_key_file=str(key_file)),
              request(ep, images), Reason.CONFIG)
    assert "base_url" in str(e)
    e = fails(VeoVideoGenerator(deadline_s=-1.0, cache_dir=""), request(ep, images), Reason.CONFIG)
    assert "deadline_s" in str(e)


# ---- Veo -------------------------------------------------------------------------------------------------
def test_veo_success_end_to_end(veo, veo_env, tmp_path, ep, images):
    b = make_veo(veo, tmp_path)
    prog = Progress()
    seg = run(b, request(ep, images, start=True, end=True), progress=prog)
    assert_segment(seg, ep)
    assert veo.submissions == [{
        "instances": [{"prompt": PROMPT,
                       "image": {"inlineData": {"mimeType": "image/png", "data": Images.b64(images.start)}},
                       "lastFrame": {"inlineData": {"mimeType": "image/png", "data": Images.b64(images.end)}}}],
        "parameters": {"aspectRatio": "16:9", "durationSeconds": "4", "resolution": "720p",
                       "personGeneration": "allow_adult", "negativePrompt": DEFAULT_NEGATIVE_PROMPT,
                       "sampleCount": 1}}]
    post = [r for r in veo.requests if r.method == "POST"][0]
    assert post.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    assert header(post.headers, "x-goog-api-key") == VEO_KEY and not post.query
    assert all(VEO_KEY not in json.dumps(r.query) for r in veo.requests)  # never in a URL
    assert hits(veo, "GET", "/operations/") == 3
    assert header(veo.download_hops[0], "x-goog-api-key") == VEO_KEY  # first hop: the API host, with the key
    assert hits(veo, "GET", "/storage/") == 1  # then the redirect
    for word in ("uploading", "submitted", "processing", "downloading", "validating", "done"):
        assert word in prog.text, word
    assert any("processing (0 s)" in d for _, _, d in prog.calls)
    assert [d for d, _, _ in prog.calls] == sorted(d for d, _, _ in prog.calls) and prog.calls[-1][:2] == (100, 100)
    assert "veo" in seg.message and "veo-3.1-generate-preview" in seg.message and "0 retries" in seg.message
    assert "24 fps" in seg.message
    st = b.stats()
    assert st["backend"] == "veo" and st["calls"] >= 5 and st["bytes_downloaded"] == len(veo.video_bytes)


def test_veo_reference_image_when_no_start_and_portrait_aspect(veo, veo_env, tmp_path, ep, images):
    img = np.zeros((64, 48, 3), np.uint8)
    write_image_rgb(images.ref, img)
    run(make_veo(veo, tmp_path, negative_prompt="", model="veo-3.1-fast-generate-preview"),
        request(ep, images, duration=5.0))
    body = veo.submissions[0]
    assert body["instances"][0]["image"]["inlineData"]["data"] == Images.b64(images.ref)
    assert "lastFrame" not in body["instances"][0]
    assert body["parameters"]["aspectRatio"] == "9:16" and body["parameters"]["durationSeconds"] == "6"
    assert "negativePrompt" not in body["parameters"]
    assert veo.requests[0].path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"


def test_veo_key_does_not_follow_redirect_to_storage_host(mp4_bytes, veo_env, tmp_path, ep, images):
    with FakeStorage() as storage, FakeVeo(mp4_bytes, api_key=VEO_KEY, storage=storage) as fake:
        seg = run(make_veo(fake, tmp_path), request(ep, images))
        assert_segment(seg, ep)
        assert header(fake.download_hops[0], "x-goog-api-key") == VEO_KEY
        assert len(storage.requests) == 1
        assert header(storage.requests[0].headers, "x-goog-api-key") is None
        assert VEO_KEY not in storage.all_text()


def test_veo_falls_back_to_bytes_base64_encoded(mp4_bytes, veo_env, tmp_path, ep, images):
    with FakeVeo(mp4_bytes, api_key=VEO_KEY, reject_inline_data=True) as fake:
        b = make_veo(fake, tmp_path)
        run(b, request(ep, images))
        assert hits(fake, "POST", "predictLongRunning") == 2
        assert fake.submissions[0]["instances"][0]["image"] == {"bytesBase64Encoded": Images.b64(images.ref),
                                                               "mimeType": "image/png"}
        assert b.image_encoding == "bytesBase64Encoded"


@pytest.mark.parametrize("reply,reason", [
    (google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"), Reason.AUTH),
    (google_error(403, "The caller does not have permission", "PERMISSION_DENIED"), Reason.PERMISSION),
    (google_error(400, "Request contains an invalid argument.", "INVALID_ARGUMENT"), Reason.BAD_REQUEST),
    (google_error(404, "models/veo-x is not found", "NOT_FOUND"), Reason.NOT_FOUND)])
def test_veo_client_errors_are_not_retried(veo, veo_env, tmp_path, ep, images, reply, reason):
    veo.inject(r":predictLongRunning$", reply, times=5)
    fails(make_veo(veo, tmp_path), request(ep, images), reason)
    assert hits(veo, "POST", "predictLongRunning") == 1
    assert_no_files(ep)


def test_veo_rejected_key_is_auth(veo, monkeypatch, tmp_path, ep, images):
    monkeypatch.setenv("EXO_TEST_VEO_KEY", "AIza-wrong-key-000000")
    e = fails(make_veo(veo, tmp_path), request(ep, images), Reason.AUTH)
    assert "GEMINI_API_KEY" in str(e) and "AIza-wrong-key-000000" not in str(e)


def test_veo_429_with_retry_after_is_retried(veo, veo_env, tmp_path, ep, images):
    veo.inject(r":predictLongRunning$", Reply(429, {"error": {"code": 429, "message": "Resource exhausted",
                                                                 "status": "RESOURCE_EXHAUSTED"}},
                                               headers={"Retry-After": "0.2"}))
    b = make_veo(veo, tmp_path)
    t0 = time.monotonic()
    seg = run(b, request(ep, images))
    assert time.monotonic() - t0 >= 0.2  # the server's wait was honoured
    assert hits(veo, "POST", "predictLongRunning") == 2
    assert b.stats()["retries"] == 1 and "1 retries" in seg.message


@pytest.mark.parametrize("status", [500, 503])
def test_veo_server_errors_are_retried(veo, veo_env, tmp_path, ep, images, status):
    veo.inject(r"/operations/", google_error(status, "backend error", "UNAVAILABLE"), times=2)
    veo.inject(r":predictLongRunning$", google_error(status, "backend error", "INTERNAL"), times=1)
    b = make_veo(veo, tmp_path)
    assert_segment(run(b, request(ep, images)), ep)
    assert b.stats()["retries"] == 3


def test_veo_server_error_after_the_retries(veo, veo_env, tmp_path, ep, images):
    veo.inject(r":predictLongRunning$", google_error(503, "overloaded", "UNAVAILABLE"), times=10)
    e = fails(make_veo(veo, tmp_path, max_retries=2), request(ep, images), Reason.SERVER)
    assert "503" in str(e) and hits(veo, "POST", "predictLongRunning") == 3


def test_veo_read_timeout(veo, veo_env, tmp_path, ep, images):
    veo.inject(r"/operations/", Reply(200, {"done": False}, hang_s=1.0), times=1)
    b = make_veo(veo, tmp_path, read_timeout_s=0.3)
    assert_segment(run(b, request(ep, images)), ep)  # a status poll is retried after the timeout
    # Creating the job is not: the service may have started (and billed) it already.
    veo.inject(r":predictLongRunning$", Reply(200, {"name": "x"}, hang_s=1.0), times=1)
    e = fails(make_veo(veo, tmp_path, read_timeout_s=0.3, cache_dir=""), request(ep, images), Reason.TIMEOUT)
    assert "0.3 s" in str(e) and "not retried" in str(e)


def test_veo_malformed_json(veo, veo_env, tmp_path, ep, images):
    veo.inject(r":predictLongRunning$", Reply(200, "{not json", content_type="application/json"))
    fails(make_veo(veo, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    veo.inject(r"/operations/", Reply(200, {"done": True, "response": {"unexpected": 1}}))
    fails(make_veo(veo, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    veo.inject(r":predictLongRunning$", Reply(200, {"name": "https://evil.example/x"}))
    fails(make_veo(veo, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    assert_no_files(ep)


def test_veo_safety_block(veo, veo_env, tmp_path, ep, images):
    veo.outcome = "blocked"
    e = fails(make_veo(veo, tmp_path), request(ep, images), Reason.CONTENT_BLOCKED)
    assert "17301" in str(e) and "prompt" in str(e)
    assert_no_files(ep)


@pytest.mark.parametrize("error,reason", [
    ({"code": 3, "message": "Image is too small.", "status": "INVALID_ARGUMENT"}, Reason.BAD_REQUEST),
    ({"code": 8, "message": "Quota exceeded for the project.", "status": "RESOURCE_EXHAUSTED"}, Reason.QUOTA),
    ({"code": 429, "message": "Too many requests, slow down."}, Reason.RATE_LIMITED),
    ({"code": 13, "message": "Internal error."}, Reason.SERVER),
    ({"code": 3, "message": "The prompt could not be submitted: it violates our usage guidelines."},
     Reason.CONTENT_BLOCKED),
    ({"code": 2, "message": "Something odd happened."}, Reason.FAILED)])
def test_veo_operation_error(veo, veo_env, tmp_path, ep, images, error, reason):
    veo.outcome, veo.op_error = "error", error
    e = fails(make_veo(veo, tmp_path), request(ep, images), reason)
    assert error["message"].rstrip(".") in str(e)
    assert_no_files(ep)


def test_veo_never_finishes_hits_the_deadline(veo, veo_env, tmp_path, ep, images):
    veo.outcome = "never"
    t0 = time.monotonic()
    e = fails(make_veo(veo, tmp_path, deadline_s=0.4), request(ep, images), Reason.DEADLINE)
    assert time.monotonic() - t0 < 2.0 and "deadline_s" in str(e)
    assert_no_files(ep)


def test_veo_result_url_404(veo, veo_env, tmp_path, ep, images):
    veo.outcome = "missing"
    e = fails(make_veo(veo, tmp_path), request(ep, images), Reason.NOT_FOUND)
    assert "again" in str(e)
    assert_no_files(ep)


@pytest.mark.parametrize("outcome", ["corrupt", "empty"])
def test_veo_bad_download_leaves_nothing(veo, veo_env, tmp_path, ep, images, outcome):
    veo.outcome = outcome
    fails(make_veo(veo, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    assert_no_files(ep)
    assert not list((tmp_path / "cache").rglob("*.mp4"))


def test_veo_truncated_download_is_bad_response(mp4_bytes, veo_env, tmp_path, ep, images):
    with FakeVeo(lambda job: mp4_bytes[: len(mp4_bytes) // 2], api_key=VEO_KEY) as fake:
        fails(make_veo(fake, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    assert_no_files(ep)


def test_veo_cancel_while_polling(veo, veo_env, tmp_path, ep, images):
    veo.outcome = "never"
    b = make_veo(veo, tmp_path, poll_interval_s=1.0, max_poll_interval_s=5.0, deadline_s=60.0)
    cancel, out = threading.Event(), {}

    def work():
        try:
            run(b, request(ep, images), cancel=cancel)
        except BaseException as e:  # noqa: BLE001
            out["e"], out["t"] = e, time.monotonic()

    th = threading.Thread(target=work)
    th.start()
    time.sleep(0.4)
    assert "e" not in out and hits(veo, "GET", "/operations/") >= 1
    t_cancel = time.monotonic()
    cancel.set()
    th.join(5.0)
    assert isinstance(out.get("e"), Canceled)
    assert out["t"] - t_cancel < 2.0
    assert_no_files(ep)


def test_veo_cache_hit_on_rerun(veo, veo_env, tmp_path, images):
    b = make_veo(veo, tmp_path)
    ep1, ep2 = tmp_path / "ep1", tmp_path / "ep2"
    run(b, request(ep1, images, start=True))
    prog = Progress()
    seg = run(b, request(ep2, images, start=True), progress=prog)
    assert len(veo.submissions) == 1 and b.stats()["cache_hits"] == 1
    assert_segment(seg, ep2)
    assert "cache" in seg.message and "cache" in prog.text
    run(b, request(tmp_path / "ep3", images, start=True, prompt="The person waves twice."))  # another prompt: a miss
    b2 = make_veo(veo, tmp_path)  # a new process with the same cache folder
    run(b2, request(tmp_path / "ep4", images, start=True))
    assert len(veo.submissions) == 2 and b2.stats()["cache_hits"] == 1
    b3 = make_veo(veo, tmp_path, cache_dir="")
    run(b3, request(tmp_path / "ep5", images, start=True))
    assert len(veo.submissions) == 3


def test_veo_key_never_leaks(veo, veo_env, tmp_path, ep, images):
    b = make_veo(veo, tmp_path)
    prog = Progress()
    seg = run(b, request(ep, images), progress=prog)
    texts = [seg.message, prog.text, repr(b), json.dumps(b.stats()), repr(b.__dict__.get("opts"))]
    veo.inject(r":predictLongRunning$", google_error(400, f"bad key header x-goog-api-key: {VEO_KEY}",
                                                    "INVALID_ARGUMENT"))
    e = fails(make_veo(veo, tmp_path, cache_dir=""), request(tmp_path / "e2", images, prompt="other"),
              Reason.BAD_REQUEST)
    veo.outcome, veo.op_error = "error", {"code": 3, "message": f"key {VEO_KEY} rejected"}
    e2 = fails(make_veo(veo, tmp_path, cache_dir=""), request(tmp_path / "e3", images, prompt="other"),
               Reason.BAD_REQUEST)
    texts += [str(e), repr(e), str(e2), repr(e2)]
    assert "***" in str(e) and "***" in str(e2)
    assert_secret_absent([VEO_KEY], texts, [tmp_path])


# ---- Kling ------------------------------------------------------------------------------------------------
def _claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_kling_success_end_to_end(kling, kling_env, tmp_path, ep, images):
    b = make_kling(kling, tmp_path)
    prog = Progress()
    seg = run(b, request(ep, images, start=True, end=True, duration=6.0), progress=prog)
    assert_segment(seg, ep)
    assert kling.submissions == [{"model_name": "kling-v3", "image": Images.b64(images.start),
                                  "image_tail": Images.b64(images.end), "prompt": PROMPT,
                                  "negative_prompt": DEFAULT_NEGATIVE_PROMPT, "mode": "std", "duration": "10"}]
    assert kling.tokens_accepted and not kling.tokens_rejected
    claims = _claims(kling.tokens_accepted[0])
    assert claims["iss"] == KLING_AK and claims["exp"] - claims["nbf"] == 1805
    assert abs(claims["exp"] - (time.time() + 1800)) < 5
    assert hits(kling, "GET", "/v1/videos/image2video/") == 3
    assert len(kling.cdn_hops) == 2 and all(header(h, "authorization") is None for h in kling.cdn_hops)
    for word in ("uploading", "submitted", "queued", "processing", "downloading", "validating", "done"):
        assert word in prog.text, word
    assert "kling" in seg.message and "kling-v3" in seg.message and "0 retries" in seg.message


def test_kling_reference_image_pro_mode_and_no_tail(kling, kling_env, tmp_path, ep, images):
    run(make_kling(kling, tmp_path, mode="pro", negative_prompt="", model="kling-v3-master"),
        request(ep, images, duration=2.0))
    assert kling.submissions == [{"model_name": "kling-v3-master", "image": Images.b64(images.ref),
                                  "prompt": PROMPT, "mode": "pro", "duration": "5"}]


def test_kling_long_prompt_is_cut_on_a_word_boundary(kling, kling_env, tmp_path, ep, images):
    long = " ".join(["The person waves slowly and calmly"] * 100)
    run(make_kling(kling, tmp_path), request(ep, images, prompt=long))
    sent = kling.submissions[0]["prompt"]
    assert len(sent) <= 2500 and long.startswith(sent) and long[len(sent)] == " "


def test_kling_single_bearer_key(mp4_bytes, monkeypatch, tmp_path, ep, images):
    monkeypatch.setenv("EXO_TEST_KLING_KEY", KLING_BEARER)
    with FakeKling(mp4_bytes, api_key=KLING_BEARER, secret_key="other") as fake:
        b = make_kling(fake, tmp_path, access_key_env="EXO_UNSET_AK", secret_key_env="EXO_UNSET_SK")
        assert_segment(run(b, request(ep, images)), ep)
        assert set(fake.tokens_accepted) == {KLING_BEARER}


def test_kling_key_files(kling, monkeypatch, tmp_path, ep, images):
    (tmp_path / "ak").write_text(f"\n{KLING_AK}\n")
    (tmp_path / "sk").write_text(f"{KLING_SK}\n")
    b = make_kling(kling, tmp_path, access_key_env="EXO_UNSET_AK", secret_key_env="EXO_UNSET_SK",
                   access_key_file=str(tmp_path / "ak"), secret_key_file=str(tmp_path / "sk"))
    run(b, request(ep, images))
    assert kling.tokens_accepted
    monkeypatch.setenv("EXO_TEST_KLING_AK", KLING_AK)
    e = fails(make_kling(kling, tmp_path, secret_key_env="EXO_UNSET_SK", cache_dir=""), request(ep, images),
              Reason.AUTH)
    assert "secret key" in str(e)


def test_kling_jwt_is_renewed_before_it_expires(kling, kling_env, tmp_path):
    b = make_kling(kling, tmp_path)
    b._get_client()
    now = [1_000_000.0]
    b._clock = lambda: now[0]
    t1 = b._bearer()
    now[0] += 1499
    assert b._bearer() == t1  # still more than 300 s to live
    now[0] += 2
    t2 = b._bearer()
    assert t2 != t1 and _claims(t2)["exp"] == int(now[0] + 1800)
    kling.clock = lambda: 1_000_000.0 + 1800
    assert kling.verify_jwt(t1) == 1004 and kling.verify_jwt(t2) == 0
    kling.clock = lambda: 1_000_000.0 - 10
    assert kling.verify_jwt(t1) == 1003
    kling.clock = time.time
    bad = make_jwt(KLING_AK, "wrong-secret", time.time(), 1800)[0]
    assert kling.verify_jwt(bad) == 1000 and kling.verify_jwt("a.b") == 1002
    assert t1 in b.secrets.secrets and t2 in b.secrets.secrets and KLING_SK in b.secrets.secrets


def test_kling_expired_token_is_renewed_once(kling, kling_env, tmp_path, ep, images):
    kling.expire_next = 1
    b = make_kling(kling, tmp_path)
    made = []
    real = b._bearer
    b._bearer = lambda renew=False: made.append(renew) or real(renew)
    assert_segment(run(b, request(ep, images)), ep)
    assert [c for _, c in kling.tokens_rejected] == [1004] and kling.tokens_accepted
    assert made[:2] == [False, True]


@pytest.mark.parametrize("reply,reason,posts", [
    (kling_error_reply(1000), Reason.AUTH, 2),  # the token is renewed once, then it is the key
    (kling_error_reply(1103, "No permission for this model"), Reason.PERMISSION, 1),
    (kling_error_reply(1102), Reason.QUOTA, 1),  # a 429 that retrying cannot fix
    (kling_error_reply(1301), Reason.CONTENT_BLOCKED, 1),
    (kling_error_reply(1201, "image_tail requires mode pro"), Reason.BAD_REQUEST, 1),
    (kling_error_reply(1102, status=200), Reason.QUOTA, 1),  # errors in an HTTP 200 reply
    (kling_error_reply(1301, status=200), Reason.CONTENT_BLOCKED, 1)])
def test_kling_final_errors(kling, kling_env, tmp_path, ep, images, reply, reason, posts):
    kling.inject(r"^/v1/videos/image2video$", reply, times=5)
    e = fails(make_kling(kling, tmp_path), request(ep, images), reason)
    assert str(reply.body["code"]) in str(e)
    assert hits(kling, "POST", "image2video") == posts
    assert_no_files(ep)


@pytest.mark.parametrize("reply", [
    kling_error_reply(1302, headers={"Retry-After": "0.1"}), kling_error_reply(1303), kling_error_reply(5000),
    kling_error_reply(5001), Reply(429, {"code": 1302, "message": "slow down"}, headers={"Retry-After": "0"}),
    Reply(503, "Service Unavailable"), kling_error_reply(1302, status=200), kling_error_reply(5000, status=200)])
def test_kling_transient_errors_are_retried(kling, kling_env, tmp_path, ep, images, reply):
    kling.inject(r"^/v1/videos/image2video$", reply, times=1)
    kling.inject(r"^/v1/videos/image2video/", reply, times=1)
    b = make_kling(kling, tmp_path)
    seg = run(b, request(ep, images))
    assert_segment(seg, ep)
    assert b.stats()["retries"] == 2 and "2 retries" in seg.message
    assert hits(kling, "POST", "image2video") == 2


def test_kling_rate_limit_after_the_retries(kling, kling_env, tmp_path, ep, images):
    kling.inject(r"^/v1/videos/image2video$", kling_error_reply(1303), times=10)
    e = fails(make_kling(kling, tmp_path, max_retries=2), request(ep, images), Reason.RATE_LIMITED)
    assert "1303" in str(e) and hits(kling, "POST", "image2video") == 3


def test_kling_read_timeout_and_malformed_json(kling, kling_env, tmp_path, ep, images):
    kling.inject(r"^/v1/videos/image2video/", Reply(200, {}, hang_s=1.0), times=1)
    assert_segment(run(make_kling(kling, tmp_path, read_timeout_s=0.3), request(ep, images)), ep)
    kling.inject(r"^/v1/videos/image2video$", Reply(200, {}, hang_s=1.0), times=1)
    e = fails(make_kling(kling, tmp_path, read_timeout_s=0.3, cache_dir=""), request(ep, images), Reason.TIMEOUT)
    assert "not retried" in str(e)  # creating a task is never retried after a read timeout (double billing)
    kling.inject(r"^/v1/videos/image2video$", Reply(200, "<html>oops</html>", content_type="application/json"))
    fails(make_kling(kling, tmp_path, cache_dir=""), request(ep, images), Reason.BAD_RESPONSE)
    kling.inject(r"^/v1/videos/image2video$", Reply(200, {"code": 0, "data": {"task_id": "../../x"}}))
    fails(make_kling(kling, tmp_path, cache_dir=""), request(ep, images), Reason.BAD_RESPONSE)
    kling.inject(r"^/v1/videos/image2video/", Reply(200, {"code": 0, "data": {"task_status": "succeed"}}))
    fails(make_kling(kling, tmp_path, cache_dir=""), request(ep, images), Reason.BAD_RESPONSE)


@pytest.mark.parametrize("outcome,reason,quoted", [("failed_safety", Reason.CONTENT_BLOCKED, "risk control"),
                                                   ("failed", Reason.FAILED, "internal error while rendering")])
def test_kling_failed_task(kling, kling_env, tmp_path, ep, images, outcome, reason, quoted):
    kling.outcome = outcome
    e = fails(make_kling(kling, tmp_path), request(ep, images), reason)
    assert quoted in str(e)
    assert_no_files(ep)


def test_kling_failed_message_is_bounded_and_redacted(kling, kling_env, tmp_path, ep, images):
    kling.outcome, kling.fail_msg = "failed", f"boom\x1b[31m\r\n {KLING_SK} " + "x" * 2000
    e = fails(make_kling(kling, tmp_path), request(ep, images), Reason.FAILED)
    assert KLING_SK not in str(e) and len(str(e)) < 500 and "\x1b" not in str(e) and "\r" not in str(e)


def test_kling_never_finishes_hits_the_deadline(kling, kling_env, tmp_path, ep, images):
    kling.outcome = "never"
    fails(make_kling(kling, tmp_path, deadline_s=0.4), request(ep, images), Reason.DEADLINE)
    assert_no_files(ep)


def test_kling_result_url_404(kling, kling_env, tmp_path, ep, images):
    kling.outcome = "missing"
    fails(make_kling(kling, tmp_path), request(ep, images), Reason.NOT_FOUND)
    assert_no_files(ep)


@pytest.mark.parametrize("outcome", ["corrupt", "empty"])
def test_kling_bad_download_leaves_nothing(kling, kling_env, tmp_path, ep, images, outcome):
    kling.outcome = outcome
    fails(make_kling(kling, tmp_path), request(ep, images), Reason.BAD_RESPONSE)
    assert_no_files(ep)


def test_kling_cdn_on_another_host(mp4_bytes, kling_env, tmp_path, ep, images):
    with FakeStorage() as storage, FakeKling(mp4_bytes, access_key=KLING_AK, secret_key=KLING_SK,
                                             storage=storage) as fake:
        assert_segment(run(make_kling(fake, tmp_path), request(ep, images)), ep)
        assert len(storage.requests) == 1 and header(storage.requests[0].headers, "authorization") is None


def test_kling_cancel_while_polling(kling, kling_env, tmp_path, ep, images):
    kling.outcome = "never"
    b = make_kling(kling, tmp_path, poll_interval_s=1.0, max_poll_interval_s=5.0, deadline_s=60.0)
    cancel, out = threading.Event(), {}

    def work():
        try:
            run(b, request(ep, images), cancel=cancel)
        except BaseException as e:  # noqa: BLE001
            out["e"], out["t"] = e, time.monotonic()

    th = threading.Thread(target=work)
    th.start()
    time.sleep(0.4)
    t_cancel = time.monotonic()
    cancel.set()
    th.join(5.0)
    assert isinstance(out.get("e"), Canceled) and out["t"] - t_cancel < 2.0


def test_kling_cache_hit_on_rerun(kling, kling_env, tmp_path, images):
    b = make_kling(kling, tmp_path)
    run(b, request(tmp_path / "ep1", images, end=True))
    seg = run(b, request(tmp_path / "ep2", images, end=True))
    assert len(kling.submissions) == 1 and b.stats()["cache_hits"] == 1
    assert_segment(seg, tmp_path / "ep2")
    run(b, request(tmp_path / "ep3", images))  # no end image: another job
    run(make_kling(kling, tmp_path, mode="pro"), request(tmp_path / "ep4", images, end=True))  # other params
    assert len(kling.submissions) == 3


def test_kling_secrets_never_leak(kling, kling_env, tmp_path, ep, images):
    b = make_kling(kling, tmp_path)
    prog = Progress()
    seg = run(b, request(ep, images), progress=prog)
    kling.inject(r"^/v1/videos/image2video$",
                 kling_error_reply(1201, f"bad signature with {KLING_SK}; header was Bearer abc.def.ghi"))
    e = fails(make_kling(kling, tmp_path, cache_dir=""), request(tmp_path / "e2", images), Reason.BAD_REQUEST)
    kling.inject(r"^/v1/videos/image2video$", kling_error_reply(1201, f"echo {KLING_SK}", status=200))
    e2 = fails(make_kling(kling, tmp_path, cache_dir=""), request(tmp_path / "e3", images), Reason.BAD_REQUEST)
    texts = [seg.message, prog.text, repr(b), json.dumps(b.stats()), str(e), repr(e), str(e2), repr(e2)]
    assert "abc.def.ghi" not in str(e) and "***" in str(e2)
    assert_secret_absent([KLING_SK] + kling.tokens_accepted, texts, [tmp_path])


# ---- both: simulated generation time, concurrency ------------------------------------------------------------
@pytest.mark.parametrize("which", ["veo", "kling"])
def test_simulated_generation_time_and_parallel_segments(which, veo, kling, veo_env, kling_env, tmp_path, images):
    fake = veo if which == "veo" else kling
    fake.generation_s = 0.1  # seconds per second of requested video (4 s Veo / 5 s Kling -> 0.4 / 0.5 s)
    b = make_veo(fake, tmp_path) if which == "veo" else make_kling(fake, tmp_path)
    reqs = [VideoRequest(tmp_path / "ep", [Step("wave", side="right", duration_s=3.0, prompt=f"{PROMPT} ({k})")
                                           for k in range(2)], k, images.ref, None, CAM) for k in range(2)]
    out, t0 = {}, time.monotonic()
    threads = [threading.Thread(target=lambda r=r: out.__setitem__(r.segment_index, run(b, r))) for r in reqs]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10.0)
    took = time.monotonic() - t0
    assert sorted(out) == [0, 1] and 0.4 <= took < 0.4 + 1.5  # in parallel, not one after the other
    assert {p.name for p in (tmp_path / "ep").iterdir()} == {"segment_00.mp4", "segment_00_last.png",
                                                             "segment_01.mp4", "segment_01_last.png"}
    assert len(fake.submissions) == 2
