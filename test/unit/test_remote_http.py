"""The remote-client core: retry policy, Retry-After, cancellation, redirects, downloads, secrets, cache."""
from __future__ import annotations

import email.utils
import threading
import time

import pytest

from exoactor.progress import Canceled
from exoactor.remote import RemoteClient, RemoteError, SecretSource, load_secret
from exoactor.remote.cache import ResultCache, cache_key
from exoactor.remote.http import parse_retry_after
from fakes.base import FakeService, Reply

KEY = "k-SECRET-0123456789"


class Echo(FakeService):
    def route(self, rec):
        if rec.path == "/ok":
            return Reply(200, {"ok": True})
        if rec.path == "/redirect-away":
            return Reply(302, "", {"Location": f"{self.other}/blob"})
        if rec.path == "/blob":
            return Reply(200, b"v" * 5000)
        return Reply(404, {"error": {"message": "no such thing"}})


@pytest.fixture
def svc():
    with Echo() as a, Echo() as b:
        a.other = b.base_url
        yield a, b


def client(url, **kw):
    sec = SecretSource()
    sec.add(KEY)
    return RemoteClient("t", url, headers={"x-api-key": KEY}, secrets=sec, backoff_base_s=0.01, read_timeout_s=0.5,
                        **kw)


def test_retry_after_is_honoured_then_success(svc):
    a, _ = svc
    a.inject("/ok", Reply(429, {"error": {"message": "slow"}}, {"Retry-After": "0.3"}), times=2)
    c = client(a.base_url)
    t0 = time.monotonic()
    assert c.json("GET", "ok") == {"ok": True}
    assert time.monotonic() - t0 >= 0.6 and c.stats.retries == 2


def test_retry_after_longer_than_allowed_fails_at_once(svc):
    a, _ = svc
    a.inject("/ok", Reply(503, {}, {"Retry-After": "3600"}))
    with pytest.raises(RemoteError, match="retry after 3600") as e:
        client(a.base_url, max_retry_after_s=10).json("GET", "ok")
    assert e.value.reason == "server_error"


def test_other_4xx_are_not_retried_and_say_why(svc):
    a, _ = svc
    for status, reason in ((400, "bad_request"), (401, "auth"), (403, "permission"), (404, "not_found")):
        a.inject("/ok", Reply(status, {"error": {"message": f"echo {KEY}"}}))
        c = client(a.base_url)
        with pytest.raises(RemoteError) as e:
            c.json("GET", "ok")
        assert e.value.reason == reason and c.stats.retries == 0 and KEY not in str(e.value)


def test_5xx_retried_out_reports_server_error(svc):
    a, _ = svc
    a.inject("/ok", Reply(500, {"error": {"message": "boom"}}), times=10)
    c = client(a.base_url, max_retries=2)
    with pytest.raises(RemoteError, match="server error") as e:
        c.json("GET", "ok")
    assert e.value.reason == "server_error" and c.stats.retries == 2 and c.stats.calls == 3


def test_job_creation_is_not_retried_after_a_read_timeout(svc):
    a, _ = svc
    a.inject("/ok", Reply(200, {"ok": True}, hang_s=1.5), times=1)
    c = client(a.base_url)
    with pytest.raises(RemoteError, match="not retried") as e:
        c.json("POST", "ok", json_body={}, idempotent=False)
    assert e.value.reason == "timeout" and c.stats.calls == 1
    a.inject("/ok", Reply(200, {"ok": True}, hang_s=1.5), times=1)
    assert c.json("GET", "ok") == {"ok": True}  # idempotent requests are retried


def test_malformed_json_is_a_bad_response(svc):
    a, _ = svc
    a.inject("/ok", Reply(200, "<html>oops</html>"))
    with pytest.raises(RemoteError, match="not valid JSON") as e:
        client(a.base_url).json("GET", "ok")
    assert e.value.reason == "bad_response"


def test_cancel_interrupts_a_request_in_flight(svc):
    a, _ = svc
    a.inject("/ok", Reply(200, {}, hang_s=5), times=5)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled):
        client(a.base_url, max_retries=0).json("GET", "ok", cancel=cancel)
    assert time.monotonic() - t0 < 1.0


def test_poll_deadline_and_cancel(svc):
    a, _ = svc
    c = client(a.base_url)
    with pytest.raises(RemoteError, match="did not finish") as e:
        c.poll(lambda: None, cancel=threading.Event(), deadline_s=0.3, what="job", interval_s=0.05)
    assert e.value.reason == "deadline"
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Canceled):
        c.poll(lambda: None, cancel=cancel, deadline_s=60, what="job", interval_s=10)
    assert time.monotonic() - t0 < 0.6


def test_redirects_keep_the_key_on_the_api_host(svc, tmp_path):
    a, b = svc
    out = client(a.base_url).download("redirect-away", tmp_path / "v.bin")
    assert out.read_bytes() == b"v" * 5000
    assert KEY in str(a.requests[-1].headers) and KEY not in b.all_text()


def test_download_is_checked_and_atomic(svc, tmp_path):
    a, _ = svc
    a.inject("/blob", Reply(200, b""))
    with pytest.raises(RemoteError, match="empty"):
        client(a.base_url).download("blob", tmp_path / "v.bin")

    def reject(path):
        raise RemoteError("bad_response", "not a video")

    with pytest.raises(RemoteError, match="not a video"):
        client(a.base_url).download("blob", tmp_path / "v.bin", validate=reject)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after(later) <= 31


def test_secrets_from_env_or_file_never_in_messages(tmp_path, monkeypatch):
    monkeypatch.delenv("EXO_TEST_KEY", raising=False)
    with pytest.raises(RemoteError, match="EXO_TEST_KEY") as e:
        load_secret(["EXO_TEST_KEY"], "")
    assert e.value.reason == "auth"
    monkeypatch.setenv("EXO_TEST_KEY", KEY)
    assert load_secret(["EXO_TEST_KEY"], "") == KEY
    f = tmp_path / "key"
    f.write_text(f"\n  {KEY}  \n")
    assert load_secret(["NOPE"], str(f)) == KEY
    with pytest.raises(RemoteError) as e:
        load_secret(["NOPE"], str(tmp_path / "missing"))
    assert e.value.reason == "config"
    s = SecretSource([KEY])
    assert KEY not in s.redact(f"bad key {KEY}; Authorization: Bearer abc.def.ghi ?key={KEY}&x=1")


def test_bad_configuration_is_reported(svc):
    with pytest.raises(RemoteError, match="base_url") as e:
        RemoteClient("t", "ftp://x")
    assert e.value.reason == "config"


def test_cache_round_trip(tmp_path):
    cache = ResultCache(tmp_path / "c", "veo")
    k = cache_key(image="abc", prompt="wave", model="m", params={"a": 1})
    assert k == cache_key(params={"a": 1}, model="m", prompt="wave", image="abc")
    assert cache.get(k, ".mp4") is None
    src = tmp_path / "x.mp4"
    src.write_bytes(b"data")
    cache.put(k, src, ".mp4")
    assert cache.fetch(k, ".mp4", tmp_path / "y.mp4") and (tmp_path / "y.mp4").read_bytes() == b"data"
    assert not ResultCache("", "veo").enabled
