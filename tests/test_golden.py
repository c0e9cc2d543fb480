"""Every sample note's supported code and flagged issues match the expected result beside it, through the real CLI."""

import json
import subprocess
import sys

import pytest
from conftest import SAMPLES

NOTES = sorted(SAMPLES.glob("*.txt"))


def _expected(note):
    return json.loads(note.with_suffix(".expected.json").read_text(encoding="utf-8"))


def test_every_family_code_has_a_sample():
    supported = {_expected(n)["supported_code"] for n in NOTES}
    family = {"27250", "27252", "27253", "27254", "27256", "27257", "27258", "27259", "27265", "27266"}
    assert family <= supported
    assert any(_expected(n)["claimed_code"] not in (None, _expected(n)["supported_code"]) for n in NOTES)


@pytest.mark.parametrize("note", NOTES, ids=[n.stem for n in NOTES])
def test_sample_through_real_cli(note):
    proc = subprocess.run([sys.executable, "-m", "notecheck", "check", str(note), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    exp = _expected(note)
    assert result["claimed_code"] == exp["claimed_code"]
    assert result["supported_code"] == exp["supported_code"]
    flagged = sorted({i["rule"] for i in result["issues"] if i["severity"] in ("error", "warning")})
    assert flagged == sorted(exp["issues"])
    has_error = any(i["severity"] == "error" for i in result["issues"])
    assert proc.returncode == (1 if has_error else 0)
    text = note.read_text(encoding="utf-8-sig")
    for ev in result["evidence"]:
        assert text[ev["start"]:ev["end"]] == ev["text"]
    for issue in result["issues"]:
        if issue["severity"] == "error" and issue["rule"] not in ("NC001",):
            assert issue["query"], issue["rule"]
