"""HTML report in real headless Chromium (highlights at the right characters, no script runs), SARIF, dashboard."""

import html.parser
import json
import shutil
import subprocess

import pytest
from conftest import ROOT, SAMPLES
from typer.testing import CliRunner

from notecheck.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it "
                                                            "with apt-get where it can)")
HOSTILE = (SAMPLES / "wrong_27252_converted_to_open.txt").read_text(encoding="utf-8") + (
    "\nADDENDUM: <script>document.body.setAttribute('data-pwned','1')</script> "
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"> & <b>bold</b> Left hip.\n")


def _chromium(tmp_path, url, *extra):
    profile = tmp_path / "profile"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)
    return proc


class _Marks(html.parser.HTMLParser):
    """Collect the text of <pre id=note>, and for each evidence id the character ranges of its <mark> segments."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_note = False
        self.depth = 0
        self.text = []
        self.pos = 0
        self.stack = []
        self.ranges = {}
        self.body_attrs = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body_attrs = attrs
        if tag == "pre" and attrs.get("id") == "note":
            self.in_note = True
        elif self.in_note:
            self.stack.append((tag, attrs.get("data-ev"), self.pos))

    def handle_endtag(self, tag):
        if tag == "pre" and self.in_note and not self.stack:
            self.in_note = False
        elif self.in_note and self.stack:
            name, ev, start = self.stack.pop()
            if name == "mark" and ev:
                for eid in ev.split():
                    self.ranges.setdefault(eid, []).append((start, self.pos))

    def handle_data(self, data):
        if self.in_note:
            self.text.append(data)
            self.pos += len(data)


@needs_chromium
def test_html_report_in_chromium(tmp_path):
    note = tmp_path / "hostile.txt"
    note.write_text(HOSTILE, encoding="utf-8")
    report = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["check", str(note), "-f", "html", "-o", str(report)])
    assert res.exit_code == 1 and report.exists()
    result = json.loads(CliRunner().invoke(app, ["check", str(note), "-f", "json"]).stdout)
    page = report.read_text(encoding="utf-8")
    assert "<script>document" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")

    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, report.as_uri(), "--window-size=1200,1600", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-500:]
    dom = _chromium(tmp_path, report.as_uri(), "--dump-dom").stdout
    parser = _Marks()
    parser.feed(dom)
    assert "data-pwned" not in parser.body_attrs  # neither the <script> nor the onerror ran
    assert "".join(parser.text) == HOSTILE  # the note is shown exactly, as text
    assert 'id="claimed">27252<' in dom and 'id="supported">27253<' in dom
    for i, ev in enumerate(result["evidence"]):
        ranges = sorted(parser.ranges.get(f"ev{i}", []))
        assert ranges, f"evidence {i} not highlighted"
        assert ranges[0][0] == ev["start"] and ranges[-1][1] == ev["end"], (i, ranges, ev)
        covered = sum(b - a for a, b in ranges)
        assert covered == ev["end"] - ev["start"]


@needs_chromium
def test_batch_dashboard_in_chromium(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("27252_closed_general.txt", "wrong_27252_sedation_only.txt"):
        shutil.copy(SAMPLES / name, notes / name)
    (notes / "bin.txt").write_bytes(b"\x00\x01" * 50)
    dash, per_note = tmp_path / "dash.html", tmp_path / "reports"
    res = CliRunner().invoke(app, ["batch", str(notes), "-j", "1", "-q", "--html", str(dash), "--html-dir", str(per_note)])
    assert res.exit_code == 1
    dom = _chromium(tmp_path, dash.as_uri(), "--dump-dom").stdout
    assert 'id="n-checked">3<' in dom and 'id="n-unreadable">1<' in dom and 'id="n-failed">1<' in dom
    assert "<svg" in dom and "NC112" in dom
    assert len(list(per_note.glob("*.html"))) == 2
    assert "wrong_27252_sedation_only" in dom and 'href="reports/' in dom


def test_sarif_validates_against_the_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(app, ["check", str(SAMPLES / "wrong_27252_converted_to_open.txt"), "-f", "sarif"])
    log = json.loads(res.stdout)
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "notecheck"
    ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"NC001", "NC131"} <= ids
    regions = [r["locations"][0]["physicalLocation"].get("region") for r in run["results"]]
    text = (SAMPLES / "wrong_27252_converted_to_open.txt").read_text(encoding="utf-8")
    for res_, region in zip(run["results"], regions):
        assert res_["level"] in ("error", "warning", "note")
        if region:
            assert 0 <= region["charOffset"] < region["charOffset"] + region["charLength"] <= len(text)
