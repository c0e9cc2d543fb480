"""The command line as a coder uses it: reports, exit codes, clear one-line errors, catalogues."""

import json
import re
import subprocess
import sys

import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from notecheck.cli import app

runner = CliRunner()
WRONG = SAMPLES / "wrong_27252_sedation_only.txt"
GOOD = SAMPLES / "27252_closed_general.txt"


def test_text_report_leads_with_verdict_and_queries():
    res = runner.invoke(app, ["check", str(WRONG)])
    assert res.exit_code == 1
    first = res.stdout.splitlines()[0]
    assert "NOT SUPPORTED" in first and "27252" in first and "27250" in first
    assert "Requirements for 27252:" in res.stdout
    assert "NC112" in res.stdout and "Query:" in res.stdout


def test_clean_note_exits_zero():
    res = runner.invoke(app, ["check", str(GOOD)])
    assert res.exit_code == 0, res.stdout
    assert "SUPPORTED" in res.stdout.splitlines()[0]


def test_json_has_the_documented_keys():
    res = runner.invoke(app, ["check", str(GOOD), "--format", "json"])
    data = json.loads(res.stdout)
    for key in ("schema_version", "source", "claimed_code", "supported_code", "findings", "evidence",
                "requirements", "issues", "modifiers"):
        assert key in data
    assert set(data["findings"]) >= {"etiology", "approach", "anesthesia", "manipulation", "technique", "imaging_pre",
                                     "imaging_post", "fluoroscopy", "laterality", "acetabular_wall_fracture",
                                     "femoral_head_fracture", "femoral_shortening", "tenotomy", "cpt_codes",
                                     "icd10_codes"}
    assert {r["status"] for r in data["requirements"]} <= {"met", "missing", "conflict", "not_applicable"}


def test_code_option_overrides_the_note():
    res = runner.invoke(app, ["check", str(GOOD), "--code", "27250", "--format", "json"])
    data = json.loads(res.stdout)
    assert data["claimed_code"] == "27250" and data["claimed_from"] == "option"
    assert "NC113" in {i["rule"] for i in data["issues"]}
    assert res.exit_code == 1


def test_stdin(tmp_path):
    res = runner.invoke(app, ["check", "-", "-f", "json"], input=GOOD.read_text(encoding="utf-8"))
    assert json.loads(res.stdout)["source"] == "<stdin>"


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"\xef\xbb\xbfPatient Zed Quimby hip \xff\xfe", "not valid UTF-8"),
        (b"   \n\n", "empty"),
        (b"Zed Quimby\x00\x01", "binary"),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11 Zed Quimby", "binary"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_note_text(tmp_path, content, needle):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "notecheck", "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert needle in proc.stderr and str(bad) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and "Quimby" not in proc.stderr
    assert proc.stdout == ""


def test_latin1_and_utf16_are_read_with_a_warning(tmp_path):
    text = GOOD.read_text(encoding="utf-8").replace("Same.", "Same, café.")
    for name, data in (("latin.txt", text.encode("cp1252", errors="replace")), ("utf16.txt", text.encode("utf-16"))):
        note = tmp_path / name
        note.write_bytes(data)
        res = runner.invoke(app, ["check", str(note), "-f", "json"])
        report = json.loads(res.stdout)
        assert report["supported_code"] == "27252" and report["warnings"], name


def test_size_limit(tmp_path):
    res = runner.invoke(app, ["check", str(GOOD), "--max-bytes", "100"])
    assert res.exit_code == 2 and "limit" in res.output


def test_missing_file_and_directory(tmp_path):
    for path in (tmp_path / "nope.txt", tmp_path):
        res = runner.invoke(app, ["check", str(path)])
        assert res.exit_code == 2
        assert str(path) in res.output


def test_unknown_code_is_a_usage_error():
    res = runner.invoke(app, ["check", str(GOOD), "--code", "99213"])
    assert res.exit_code == 2 and "99213" in res.output


def test_bom_and_crlf_are_normal(tmp_path):
    raw = GOOD.read_text(encoding="utf-8").replace("\n", "\r\n")
    note = tmp_path / "crlf.txt"
    note.write_bytes(b"\xef\xbb\xbf" + raw.encode("utf-8"))
    res = runner.invoke(app, ["check", str(note), "-f", "json"])
    data = json.loads(res.stdout)
    assert data["supported_code"] == "27252"
    for ev in data["evidence"]:
        assert raw[ev["start"]:ev["end"]] == ev["text"]


def test_schema_is_json_schema_of_the_report():
    res = runner.invoke(app, ["schema"])
    schema = json.loads(res.stdout)
    assert schema["title"] == "CheckResult"
    assert {"claimed_code", "supported_code", "issues", "findings"} <= set(schema["properties"])


def test_rules_lists_every_rule_and_explains_one():
    res = runner.invoke(app, ["rules"])
    ids = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    assert {"NC001", "NC101", "NC111", "NC115", "NC142", "NC171", "NC181"} <= set(ids)
    one = runner.invoke(app, ["rules", "nc111"])
    assert one.exit_code == 0 and "NC111" in one.stdout and "Query:" in one.stdout
    assert runner.invoke(app, ["rules", "NC999"]).exit_code == 2


def test_codes_explains_one_code():
    res = runner.invoke(app, ["codes", "27257"])
    assert res.exit_code == 0
    for part in ("27257", "Selected when", "Documentation requirements", "Siblings", "Global period: 010",
                 "Q65", "Modifier"):
        assert part in res.stdout
    listing = runner.invoke(app, ["codes"])
    assert all(code in listing.stdout for code in ("27250", "27254", "27259", "27266"))
    assert runner.invoke(app, ["codes", "12345"]).exit_code == 2


def test_help_teaches():
    res = runner.invoke(app, ["--help"])
    assert "Exit codes" in res.stdout and "notecheck check" in res.stdout


ICD_CONTRADICTS = """OPERATIVE NOTE
Diagnosis: developmental dysplasia of the left hip, dislocated. ICD-10: S73.015A
Procedure: closed reduction of left hip under general anesthesia, spica cast. CPT 27257
The left hip was gently manipulated and reduced under general anesthesia given by the anesthesiologist.
Arthrogram before and after reduction confirmed concentric reduction. A hip spica cast was applied.
"""


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_headline_agrees_with_exit_code_when_the_claimed_code_matches_but_an_error_remains(tmp_path, fmt):
    """Issue 16 item 2: the claimed code is the documented one, yet an ICD-10 code contradicts the etiology (error).
    The verdict must not read as a pass while the exit code and batch status say the note fails."""
    note = tmp_path / "icd.txt"
    note.write_text(ICD_CONTRADICTS, encoding="utf-8")
    res = runner.invoke(app, ["check", str(note), "--format", fmt])
    assert res.exit_code == 1
    if fmt == "json":
        data = json.loads(res.stdout)
        assert data["verdict"] == "needs_correction"
        assert data["claimed_code"] == data["supported_code"] == "27257"
        assert [i["rule"] for i in data["issues"] if i["severity"] == "error"] == ["NC103"]
    elif fmt == "text":
        first = res.stdout.splitlines()[0]
        assert "NEEDS CORRECTION" in first and "1 error must be resolved (NC103)" in first
        assert "SUPPORTED" not in first
    else:
        assert "NEEDS CORRECTION" in res.stdout and "1 error must be resolved (NC103)" in res.stdout
    out = tmp_path / "results.jsonl"
    batch = runner.invoke(app, ["batch", str(tmp_path), "-j", "1", "-q", "-o", str(out)])
    assert batch.exit_code == 1
    row = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert (row["status"], row["verdict"]) == ("failed", "needs_correction")


FAILED_SEDATION_THEN_OR = """EMERGENCY DEPARTMENT PROCEDURE NOTE
Right posterior hip dislocation after a motor vehicle collision.
Attempt 1: procedural sedation with propofol performed by me; Allis maneuver unsuccessful.
Attempt 2: further propofol given by me; Captain Morgan technique unsuccessful.
Orthopaedics consulted. In the OR Dr. Lee (orthopaedics) reduced the right hip closed under general anesthesia given
by the anesthesiologist, Dr. Park. Post-reduction films concentric.
CPT 27252
"""


def test_no_modifier_47_when_an_anesthesiologist_gave_the_general_anesthesia(tmp_path):
    """Issue 16 item 1: sedation 'by me' in failed ED attempts does not make the surgeon the giver of the general
    anesthesia that an anesthesiologist gave for the reduction that succeeded; modifier 47 is not suggested."""
    note = tmp_path / "or.txt"
    note.write_text(FAILED_SEDATION_THEN_OR, encoding="utf-8")
    data = json.loads(runner.invoke(app, ["check", str(note), "--format", "json"]).stdout)
    assert data["findings"]["anesthesia"] == "general" and data["supported_code"] == "27252"
    assert data["findings"]["anesthesia_by"] == "separate_provider"
    assert "47" not in [m["modifier"] for m in data["modifiers"]]
    text = runner.invoke(app, ["check", str(note)]).stdout
    assert "  47 " not in text


def test_each_requirement_cites_each_span_once_and_only_the_deciding_value(tmp_path):
    """Issue 16 item 4: two rules over the same characters ('closed reduction' as approach and as its implied
    manipulation) are cited once; a met requirement cites the mentions of the value found, not a contradicting ICD
    code; a mention's modifiers are listed once each."""
    note = tmp_path / "n.txt"
    note.write_text(ICD_CONTRADICTS, encoding="utf-8")
    data = json.loads(runner.invoke(app, ["check", str(note), "--format", "json"]).stdout)
    for req in data["requirements"]:
        spans = [(e["start"], e["end"]) for e in req["evidence"]]
        assert len(spans) == len(set(spans)), req["id"]
    etiology = next(r for r in data["requirements"] if r["finding"] == "etiology")
    assert etiology["status"] == "met" and etiology["evidence"]
    assert {e["value"] for e in etiology["evidence"]} == {"developmental"}
    for e in data["evidence"]:
        assert len(e["modifiers"]) == len(set(e["modifiers"]))


def test_rule_list_and_batch_summary_read_as_text(tmp_path):
    """Issue 16 item 5: the rule list is not cut at 'e.g.'; one note is '1 note'."""
    listing = runner.invoke(app, ["rules"]).stdout
    nc182 = next(line for line in listing.splitlines() if line.startswith("NC182"))
    assert "e.g." in nc182 and not nc182.rstrip().endswith("e.g.")
    (tmp_path / "a.txt").write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    res = runner.invoke(app, ["batch", str(tmp_path), "-j", "1"])
    # '1 notes' as a count, not the '8.1 notes/s' rate that follows it
    assert "Checked 1 note in" in res.output and re.search(r"(?<![\d.])1 notes\b(?!/)", res.output) is None


def test_html_report_says_none_for_a_note_without_gaps():
    """Issue 16 item 5: an empty gaps table reads 'None', not an empty grid."""
    page = runner.invoke(app, ["check", str(GOOD), "--format", "html"]).stdout
    table = page[page.index('<table id="issues">'):]
    table = table[: table.index("</table>")]
    assert ">None</td>" in table
