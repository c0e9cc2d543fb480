"""Checking notes in a worker process: one pipeline per process, one row per note.

Shared by the local process pool (`batch`) and the Dask engine (`dask_engine`), so that neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from notecheck.reading import DEFAULT_MAX_BYTES, ReadError, display_path, read_note

_CHECKER = None
_SETTINGS: dict[str, Any] = {}


def init_worker(patterns_dir: Optional[str], family: str, max_bytes: int, html_dir: Optional[str] = None) -> None:
    """Build the pipeline once per worker process."""
    global _CHECKER
    from notecheck.checker import Checker

    _CHECKER = Checker(patterns_dir=patterns_dir, family=family)
    _SETTINGS.update(max_bytes=max_bytes, html_dir=html_dir)


def _html_name(path: str) -> str:
    """A flat, safe file name for a note's HTML report, unique per input path."""
    import hashlib

    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(path).stem)[:60]
    return f"{stem}-{hashlib.sha1(path.encode('utf-8')).hexdigest()[:8]}.html"


def report_row(result: Any, path: str) -> dict[str, Any]:
    """A results row: the JSON report plus the note's path and a status (passed | failed)."""
    row = {"path": path, "status": "failed" if result.has_errors else "passed", "reason": None}
    row.update(result.model_dump(mode="json"))
    return row


def check_path(path: str) -> dict[str, Any]:
    """One row for one file: the report plus path and status, or an unreadable row. Never raises."""
    if _CHECKER is None:
        init_worker(None, "hip_dislocation", DEFAULT_MAX_BYTES)
    assert _CHECKER is not None
    shown = display_path(path)
    try:
        note = read_note(path, max_bytes=_SETTINGS.get("max_bytes", DEFAULT_MAX_BYTES))
    except ReadError as exc:
        return {"path": shown, "status": "unreadable", "reason": display_path(str(exc))}
    try:
        result = _CHECKER.check_text(note.text, source=shown, warnings=note.warnings)
        row = report_row(result, shown)
        html_dir = _SETTINGS.get("html_dir")
        if html_dir:
            from notecheck.html_report import render_html

            target = Path(html_dir) / _html_name(shown)
            target.write_text(render_html(result, note.text), encoding="utf-8")
            row["html_report"] = str(target)
        return row
    except Exception as exc:  # noqa: BLE001 - one bad note must not stop a batch; the type only, never text
        return {"path": shown, "status": "unreadable", "reason": f"{shown}: internal error ({type(exc).__name__})"}


def check_paths(paths: list[str]) -> list[dict[str, Any]]:
    return [check_path(p) for p in paths]




def check_chunk(paths: list[str], init_args: tuple) -> list[dict[str, Any]]:
    """Rows for a chunk of file paths, building this process's pipeline first if it has none (a Dask worker)."""
    if _CHECKER is None:
        init_worker(*init_args)
    return [check_path(p) for p in paths]


def checker_for(patterns_dir: Optional[str] = None) -> Any:
    """This process's Checker, built on first use."""
    if _CHECKER is None:
        init_worker(patterns_dir, "hip_dislocation", DEFAULT_MAX_BYTES)
    return _CHECKER
