"""Batch over a messy folder: every file gets exactly one row with the right status; Dask gives the same rows."""

import csv
import json
import shutil

import pytest
from conftest import SAMPLES
from typer.testing import CliRunner

from notecheck.batch import BatchOptions, run_batch
from notecheck.cli import app

GOOD = SAMPLES / "27252_closed_general.txt"
WRONG = SAMPLES / "wrong_27252_sedation_only.txt"


@pytest.fixture()
def messy(tmp_path):
    root = tmp_path / "notes"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(GOOD, root / "good.txt")
    shutil.copy(WRONG, root / "wrong.txt")
    shutil.copy(GOOD, root / "sub" / "deeper" / "nested.txt")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (root / "empty.txt").write_text(" \n", encoding="utf-8")
    text = GOOD.read_text(encoding="utf-8").replace("Same.", "Same, café.")
    (root / "latin1.txt").write_bytes(text.encode("cp1252"))
    (root / "big.txt").write_text("hip dislocation reduced. " * 2000, encoding="utf-8")
    (root / "ignored.md").write_text("not a note", encoding="utf-8")
    return root


EXPECTED = {"good.txt": "passed", "wrong.txt": "failed", "nested.txt": "passed", "binary.txt": "unreadable",
            "empty.txt": "unreadable", "latin1.txt": "passed", "big.txt": "unreadable"}


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_file_one_row(messy, tmp_path, jobs):
    out, table = tmp_path / "r.jsonl", tmp_path / "s.csv"
    summary = run_batch(BatchOptions(root=messy, jobs=jobs, out=out, csv_path=table, max_bytes=20_000))
    rows = _rows(out)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == sorted(EXPECTED)
    for r in rows:
        assert r["status"] == EXPECTED[r["path"].rsplit("/", 1)[-1]], r["path"]
        if r["status"] == "unreadable":
            assert r["reason"] and r["path"] in r["reason"]
        else:
            expected_code = "27250" if r["path"].endswith("wrong.txt") else "27252"
            assert r["schema_version"] and r["supported_code"] == expected_code
    latin = next(r for r in rows if r["path"].endswith("latin1.txt"))
    assert latin["warnings"]
    with table.open(encoding="utf-8") as fh:
        table_rows = list(csv.DictReader(fh))
    assert len(table_rows) == len(rows) == summary.rows_written == summary.found == 7
    assert summary.unreadable == 3 and summary.failed == 1 and summary.passed == 3
    wrong = next(t for t in table_rows if t["path"].endswith("wrong.txt"))
    assert wrong["supported_code"] == "27250" and "anesthesia" in wrong["failed_requirements"]


def test_resume_skips_done_and_tolerates_a_torn_line(messy, tmp_path):
    out = tmp_path / "r.jsonl"
    run_batch(BatchOptions(root=messy, jobs=1, out=out, max_bytes=20_000))
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40], encoding="utf-8")  # crash mid-write
    summary = run_batch(BatchOptions(root=messy, jobs=1, out=out, resume=True, max_bytes=20_000))
    assert summary.skipped == 3 and summary.checked == 4
    paths = [json.loads(line)["path"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(set(paths)) == len(paths) == 7


def test_cli_exit_codes_and_summary(messy, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["batch", str(messy), "--out", str(tmp_path / "r.jsonl"), "-j", "1",
                              "--max-bytes", "20000", "-f", "json"])
    assert res.exit_code == 1
    summary = json.loads(res.stdout)
    assert summary["notes_found"] == summary["rows_written"] == 7
    assert summary["unreadable"] == 3 and summary["top_gaps"]
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(GOOD, clean / "a.txt")
    assert runner.invoke(app, ["batch", str(clean), "-j", "1"]).exit_code == 0
    assert runner.invoke(app, ["batch", str(clean), "--resume"]).exit_code == 2


def test_dask_engine_matches_local(messy, tmp_path):
    pytest.importorskip("dask.distributed")
    local, dask_out = tmp_path / "local.jsonl", tmp_path / "dask.jsonl"
    run_batch(BatchOptions(root=messy, jobs=1, out=local, max_bytes=20_000))
    run_batch(BatchOptions(root=messy, jobs=2, out=dask_out, engine="dask", max_bytes=20_000))
    assert _rows(local) == _rows(dask_out)


def test_unknown_family_fails_fast(messy, tmp_path):
    res = CliRunner().invoke(app, ["batch", str(messy), "--family", "nope", "-j", "2", "-q", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown family" in res.output


def test_non_utf8_file_name_gets_its_own_row(tmp_path):
    import os

    root = tmp_path / "n"
    root.mkdir()
    shutil.copy(GOOD, root / "ok.txt")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as fh:
        fh.write(GOOD.read_bytes())
    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(root=root, jobs=1, out=out))
    rows = _rows(out)
    assert len(rows) == 2 == summary.rows_written
    assert {r["status"] for r in rows} == {"passed"}
    assert any("\\xe9" in r["path"] for r in rows)


def test_resume_keeps_failures_in_the_exit_code(messy, tmp_path):
    out = str(tmp_path / "r.jsonl")
    args = ["batch", str(messy), "-j", "1", "-q", "--max-bytes", "20000", "--resume", "-o", out]
    assert CliRunner().invoke(app, args).exit_code == 1
    assert CliRunner().invoke(app, args).exit_code == 1  # nothing new checked, but failures are still there
