"""`notecheck eval --by-writer` and `--record-first-run`: a set's first blind run is saved once and keeps being
reported, rescored against labels corrected since."""

import json
import shutil

from conftest import ROOT
from typer.testing import CliRunner

from notecheck.cli import app

runner = CliRunner()


def _set(tmp_path, name, ids):
    folder = tmp_path / name
    folder.mkdir()
    for note_id in ids:
        src = ROOT / "writers" / note_id[:3] / note_id
        shutil.copy(src.with_suffix(".txt"), folder)
        shutil.copy(src.with_suffix(".json"), folder)
    return folder


def test_first_run_is_recorded_once_and_rescored_against_corrected_labels(tmp_path):
    a = _set(tmp_path, "wa", ["w09-001", "w09-002"])
    _set(tmp_path, "wb", ["w09-003"])
    first = runner.invoke(app, ["eval", str(a), "--record-first-run", "--format", "json"])
    assert first.exit_code == 0, first.output
    assert (a / "FIRST_RUN.json").is_file()
    again = runner.invoke(app, ["eval", str(a), "--record-first-run"])
    assert again.exit_code == 2 and "recorded once" in again.output

    # Correct one label after the first run: the first run is rescored against it, predictions unchanged.
    saved = json.loads((a / "FIRST_RUN.json").read_text())
    case = saved["results"][0]
    label_path = a / f"{case['id']}.json"
    label = json.loads(label_path.read_text())
    label["expected_code"] = case["predicted_code"] if case["gold_code"] != case["predicted_code"] else "27999"
    label["mismatch"] = label["claimed_code"] is not None and label["claimed_code"] != label["expected_code"]
    label_path.write_text(json.dumps(label))
    res = runner.invoke(app, ["eval", str(tmp_path), "--by-writer", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = {r["group"]: r for r in json.loads(res.output)}
    assert set(rows) == {"wa", "wb"}
    assert rows["wb"]["first_run"] is None and rows["wb"]["now"]["scored"] == 1
    now_a, first_a = rows["wa"]["now"], rows["wa"]["first_run"]
    assert first_a["scored"] == 2
    right_before = sum(r["gold_code"] == r["predicted_code"] for r in saved["results"])
    right_after = right_before + (1 if label["expected_code"] == case["predicted_code"] else -1)
    assert first_a["code_correct"] == right_after
    assert now_a["code_correct"] == right_after  # same code, same predictions
    text = runner.invoke(app, ["eval", str(tmp_path), "--by-writer"])
    assert "Leave-one-writer-out" in text.output and "wa" in text.output
