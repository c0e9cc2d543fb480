"""Never crash on input, never lose or invent text, never leak a note: property tests and PHI hygiene."""

import json
import logging
import random
import socket
import string

import pytest
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from notecheck.cli import app
from notecheck.models import CheckResult
from notecheck.reading import ReadError, decode

NOTES = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.txt"))]
KEYWORDS = ("dislocat", "reduc", "anesth", "sedat", "general", "closed", "open", "fractur", "left", "right", "pipkin",
            "pavlik", "spica", "traction", "arthroplast", "tha", "ddh", "short", "tenotom", "cpt", "2725", "2726")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


def _valid(checker, text: str) -> CheckResult:
    result = checker.check(text)
    CheckResult.model_validate_json(result.model_dump_json())
    for ev in result.evidence:
        assert text[ev.start:ev.end] == ev.text
    assert checker.check(text).model_dump() == result.model_dump()  # deterministic
    return result


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_arbitrary_text_never_raises(checker, text):
    _valid(checker, text)


@SETTINGS
@given(st.lists(st.sampled_from(["\r\n", "\r", "\n", "\f", "\x00", "\t", "\u2028", "\xa0", "[ ]", "[x]", ":", "-",
                                 "Hip", "dislocation", "no", "not", "general", "GA", "CR'd", "L", "R", "27252", "S73.0"]),
                max_size=60))
def test_structural_noise_never_raises(checker, parts):
    _valid(checker, " ".join(parts))


def _mutate(text: str, rng: random.Random) -> str:
    """Random edits that avoid the clinical key words: whitespace, case of other words, junk between lines."""
    out = []
    for word in text.split(" "):
        low = word.lower()
        if any(k in low for k in KEYWORDS):
            out.append(word)
            continue
        roll = rng.random()
        if roll < 0.05:
            continue  # deletion
        if roll < 0.10:
            word = word.upper()
        elif roll < 0.15:
            word = word + rng.choice(["  ", "\t", " ~ ", " ** "])
        elif roll < 0.18:
            word = word + " " + "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 6)))
        out.append(word)
    return " ".join(out)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(NOTES) - 1), st.integers(min_value=0, max_value=10**6))
def test_mutated_real_notes(checker, index, seed):
    text = _mutate(NOTES[index], random.Random(seed))
    _valid(checker, text)


def test_crlf_and_lone_cr_give_the_same_findings(checker):
    for note in NOTES[:6]:
        base = checker.check(note)
        for variant in (note.replace("\n", "\r\n"), note.replace("\n", "\r")):
            result = _valid(checker, variant)
            assert result.supported_code == base.supported_code
            assert result.findings.model_dump(exclude={"cpt_codes", "icd10_codes", "events"}) == \
                base.findings.model_dump(exclude={"cpt_codes", "icd10_codes", "events"})
            # Event offsets move with the line endings; what each attempt was does not.
            assert [e.model_dump(exclude={"start", "end"}) for e in result.findings.events] == \
                [e.model_dump(exclude={"start", "end"}) for e in base.findings.events]


@pytest.mark.parametrize("data, ok", [
    ("\ufeffhip note".encode("utf-8"), True),
    ("hip note é".encode("utf-16"), True),
    ("hip note é".encode("cp1252"), True),
    (b"\x00\x01\x02binary\x00", False),
    (b"", False),
    (b" \r\n\t\f ", False),
])
def test_decode_accepts_text_and_refuses_the_rest(data, ok):
    if ok:
        assert "hip note" in decode(data, "x").text
    else:
        with pytest.raises(ReadError):
            decode(data, "x")


SENTINELS = ["QZXSENTINELNAME", "QZXSENTINELMRN", "QZXSENTINELDRUG", "QZXSENTINELPLACE"]
PHI_NOTE = (f"Patient {SENTINELS[0]} MRN {SENTINELS[1]}.\nPREOPERATIVE DIAGNOSIS: Left posterior hip dislocation after "
            f"a fall at {SENTINELS[3]}.\nANESTHESIA: General by Dr. {SENTINELS[0]}.\nPROCEDURE: Closed reduction under "
            f"{SENTINELS[2]} and general anesthesia. No femoral head fracture.\nCPT: 27252-LT\n")


def test_no_note_text_in_logs_or_errors(checker, tmp_path, caplog):
    from loguru import logger

    captured: list[str] = []
    sink = logger.add(lambda m: captured.append(str(m)), level="TRACE")
    try:
        with caplog.at_level(logging.DEBUG):
            checker.check(PHI_NOTE)
            runner = CliRunner()
            note = tmp_path / "n.txt"
            note.write_text(PHI_NOTE, encoding="utf-8")
            runner.invoke(app, ["check", str(note)])
            bad = tmp_path / "bad.txt"
            bad.write_bytes(PHI_NOTE.encode("utf-8") + b"\x00\x00\x00")
            res = runner.invoke(app, ["check", str(bad)])
            assert res.exit_code == 2
            errors = res.output
            big = runner.invoke(app, ["check", str(note), "--max-bytes", "10"])
            errors += big.output
            errors += runner.invoke(app, ["check", str(note), "--code", "ABCDE"]).output
            errors += runner.invoke(app, ["batch", str(tmp_path), "-j", "1", "-f", "json"]).output
    finally:
        logger.remove(sink)
    everything = "\n".join(captured) + "\n".join(r.getMessage() for r in caplog.records) + errors
    for s in SENTINELS:
        assert s not in everything


def test_checking_opens_no_network_connection(checker, monkeypatch):
    attempts = []

    def refuse(self, *args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, *a))
    from notecheck import Checker

    fresh = Checker()  # building the pipeline must not download anything either
    assert fresh.check(PHI_NOTE).supported_code == "27252"
    assert not attempts


def test_unpaired_surrogate_is_a_clear_error_without_text(checker):
    with pytest.raises(ValueError) as info:
        checker.check("QZXSENTINELNAME hip \udcff dislocation")
    assert "surrogate" in str(info.value) and "QZXSENTINEL" not in str(info.value)


def test_service_limits_each_note_in_a_batch(checker):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from notecheck.service import create_app

    client = TestClient(create_app(checker, max_bytes=5000))
    res = client.post("/v1/check/batch", json={"notes": [{"text": "hip " * 100}, {"text": "x" * 4000}]})
    assert res.status_code == 200 and len(res.json()["results"]) == 2
    big = client.post("/v1/check/batch", content=json.dumps({"notes": [{"text": "x" * 6000}]}),
                      headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    assert big.status_code == 413


@pytest.mark.parametrize("disguise", [
    lambda t: t.replace("27252", "27252\u200b"),                   # a zero-width space after the billed code
    lambda t: t.replace(" ", " \u200b"),                             # one after every space
    lambda t: t.replace("27252", "\uff12\uff17\uff12\uff15\uff12"),  # full-width digits
    lambda t: t.replace(" ", "\u00a0", 40).replace("hip", "hi\u200dp", 1),
])
def test_invisible_characters_do_not_flip_a_failing_note(checker, disguise):
    """EHR exports carry zero-width spaces, joiners and full-width forms: the verdict must not change, and the report
    says the note carried them."""
    text = (SAMPLES / "wrong_27252_sedation_only.txt").read_text(encoding="utf-8")
    base = checker.check(text)
    assert base.claimed_code == "27252" and base.has_errors
    result = checker.check(disguise(text))
    assert result.claimed_code == base.claimed_code and result.supported_code == base.supported_code
    assert result.has_errors
    assert any("invisible or full-width" in w for w in result.warnings)
    for e in result.evidence:
        assert disguise(text)[e.start:e.end] == e.text


def test_a_note_over_a_million_characters_is_checked_everywhere(checker, tmp_path):
    """Issue 15 item 3: spaCy's 1,000,000-character guard (E088) is for its parser; this pipeline has none, so a long
    note under the byte limit is checked by the CLI, batch and the service alike, with the same answer."""
    base = (SAMPLES / "wrong_27252_sedation_only.txt").read_text(encoding="utf-8")
    padding = "Nursing flowsheet: vitals stable, pain controlled, no events overnight.\n" * 15_000
    text = base + "\n" + padding
    assert 1_000_000 < len(text) < 2_000_000
    note = tmp_path / "long.txt"
    note.write_text(text, encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["check", str(note), "--format", "json"])
    assert res.exit_code == 1, res.output[-300:]
    assert json.loads(res.stdout)["supported_code"] == "27250"
    out = tmp_path / "rows.jsonl"
    runner.invoke(app, ["batch", str(tmp_path), "-j", "1", "-q", "-o", str(out)])
    row = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert (row["status"], row["supported_code"]) == ("failed", "27250")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from notecheck.service import create_app

    client = TestClient(create_app(checker, max_bytes=3_000_000))
    answer = client.post("/v1/check", json={"text": text})
    assert answer.status_code == 200 and answer.json()["supported_code"] == "27250"


# Long runs of one kind of character, as hostile input or broken exports carry them, after the words that open the
# rules' cues ('reported', '?', 'decision', 'without', 'Comparison:'). A rule whose regex can split such a run in many
# ways ('(?:[A-Za-z]\w*\s*){1,4}' over 'xxxx...', ' +comma' tried at every space of a run, '\s+(?:an?\s+)?(?=...)'
# after 'reported') backtracks without bound or in quadratic time: one note stalls a worker, a batch or the service.
RUN = 50_000
RUNS = {"letters": "x" * RUN, "spaces": " " * RUN, "tabs": "\t" * RUN, "words": "hip " * (RUN // 4),
        "slashes": "ab / " * (RUN // 5), "brackets": "(x " * (RUN // 3), "dashes": "- " * (RUN // 2),
        "digits": "1" * RUN, "colons": ": " * (RUN // 2), "dots": "." * RUN, "capitals": "ABC " * (RUN // 4),
        "quotes": '"a ' * (RUN // 3), "blank lines": "\n" * RUN}
CUES = ("X-ray reported", "CT pelvis?", "the decision", "without", "Comparison:", "GA was", "Procedure requested:")


@pytest.mark.timeout(90)  # linear reading takes seconds; a rule that backtracks fails here instead of stalling
@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS.keys())
def test_long_runs_of_one_character_are_read_in_passing(checker, run):
    text = "Left hip dislocation." + "".join(f"\n{cue}{run}" for cue in CUES[:3]) + \
        "\nClosed reduction of the left hip under sedation." + "".join(f"\n{cue}{run}" for cue in CUES[3:])
    result = _valid(checker, text)
    assert result.findings.approach == "closed" and result.findings.laterality == "left"
    assert result.findings.reduction
