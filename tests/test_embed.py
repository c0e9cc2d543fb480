"""The three ways a scribe vendor embeds notecheck: Python API, spaCy component, HTTP service (real server)."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import spacy
from conftest import ROOT, SAMPLES

import notecheck

WRONG = (SAMPLES / "wrong_27252_sedation_only.txt").read_text(encoding="utf-8")
GOOD = (SAMPLES / "27252_closed_general.txt").read_text(encoding="utf-8")


def test_python_api(checker):
    result = checker.check(WRONG, note_id="draft-1")
    assert isinstance(result, notecheck.CheckResult)
    assert (result.source, result.claimed_code, result.supported_code) == ("draft-1", "27252", "27250")
    assert checker.check(GOOD, code="27250").claimed_code == "27250"
    many = list(checker.check_many([WRONG, GOOD, WRONG], codes=[None, "27252", "27250"], batch_size=2))
    assert [r.supported_code for r in many] == ["27250", "27252", "27250"]
    assert [r.claimed_code for r in many] == ["27252", "27252", "27250"]
    assert many[2].verdict == "supported" and not many[2].has_errors


def test_api_is_thread_safe(checker):
    from concurrent.futures import ThreadPoolExecutor

    texts = [WRONG, GOOD] * 8
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda t: checker.check(t).supported_code, texts))
    assert codes == ["27250", "27252"] * 8


def test_spacy_component_does_not_clobber_host_pipeline():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "DRUG", "pattern": "propofol"}])
    nlp.add_pipe("notecheck")  # found through spaCy's entry points
    doc = nlp(WRONG)
    assert [e.text for e in doc.ents] == ["propofol"] * len([e for e in doc.ents])
    assert doc.ents and all(e.label_ == "DRUG" for e in doc.ents)
    assert doc._.notecheck.supported_code == "27250"
    for ev in doc._.notecheck.evidence:
        assert doc.text[ev.start:ev.end] == ev.text
    from spacy.tokens import Doc, DocBin

    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())  # the report survives serialisation
    assert restored._.notecheck.supported_code == "27250"
    DocBin(store_user_data=True, docs=[doc]).to_bytes()
    doc2 = nlp.make_doc(GOOD)
    doc2._.notecheck_code = "27250"
    for _, proc in nlp.pipeline:
        doc2 = proc(doc2)
    assert doc2._.notecheck.claimed_code == "27250"


def test_public_api_passes_mypy_strict():
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--follow-imports=silent",
                           str(ROOT / "src" / "notecheck" / "checker.py"), str(ROOT / "src" / "notecheck" / "models.py")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


# --- HTTP: a real server on a loopback port -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "notecheck", "serve", "--port", str(port), "--token", "t0ken",
                             "--max-bytes", "20000", "--max-batch", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.communicate()[0][-2000:])
    yield base
    proc.terminate()
    logs = proc.communicate(timeout=10)[0]
    # PHI hygiene: the server logged requests, and not one word of the notes.
    assert "request id=" in logs
    assert "Nakamura" not in logs and "propofol" not in logs.lower()


def _call(base, path, body=None, token="t0ken", raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_http_check_and_batch(server):
    status, body = _call(server, "/v1/check", {"text": WRONG, "note_id": "n-7"})
    assert status == 200 and body["source"] == "n-7" and body["supported_code"] == "27250"
    status, body = _call(server, "/v1/check/batch", {"notes": [{"text": WRONG}, {"text": GOOD, "code": "27250"}]})
    assert status == 200 and [r["supported_code"] for r in body["results"]] == ["27250", "27252"]
    status, rules = _call(server, "/v1/rules")
    assert status == 200 and any(r["id"] == "NC111" for r in rules)
    status, health = _call(server, "/healthz", token=None)
    assert status == 200 and health["status"] == "ok"


def test_http_rejects_bad_requests_without_echoing_text(server):
    status, body = _call(server, "/v1/check", {"text": "Zed Nakamura hip", "code": "abc"})
    assert status == 422 and "Nakamura" not in json.dumps(body)
    assert _call(server, "/v1/check", raw=b"{not json")[0] == 422
    assert _call(server, "/v1/check", {"note": "missing text"})[0] == 422
    assert _call(server, "/v1/check", {"text": "x" * 30000})[0] == 413
    status, body = _call(server, "/v1/check/batch", {"notes": [{"text": GOOD}] * 4})
    assert status == 422 and "batch limit" in body["error"]


def test_http_token(server):
    assert _call(server, "/v1/check", {"text": GOOD}, token=None)[0] == 401
    assert _call(server, "/v1/check", {"text": GOOD}, token="wrong")[0] == 401


class _SlowChecker:
    """Stands in for a Checker whose check takes longer than the service's time limit."""

    def __init__(self, real):
        self.book, self.family, self.real = real.book, real.family, real

    def check(self, text, code=None, note_id=None):
        time.sleep(0.5)
        return self.real.check(text, code=code, note_id=note_id)


def test_http_timeout_is_a_clear_503(checker):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from notecheck.service import create_app

    client = TestClient(create_app(_SlowChecker(checker), timeout=0.1))
    res = client.post("/v1/check", json={"text": WRONG})
    assert res.status_code == 503 and "longer than" in res.json()["error"] and res.json()["request_id"]
    assert client.get("/healthz").status_code == 200  # the service is still answering
