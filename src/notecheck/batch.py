"""`notecheck batch DIR`: check a folder of notes in parallel, streaming one row per file as it goes.

Rows are written (and flushed) as results arrive, so an interrupted batch keeps everything already checked and
`--resume` skips it. Only counters are kept for the summary, so memory stays flat however many notes there are.
Every input file yields exactly one row: a report, or an `unreadable` row with the reason.
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Optional

from notecheck.reading import DEFAULT_MAX_BYTES, display_path
from notecheck.reporting import plural
from notecheck.worker import check_chunk, check_path, check_paths, init_worker

CSV_FIELDS = ["path", "status", "claimed_code", "supported_code", "verdict", "errors", "warnings",
              "failed_requirements", "reason"]


# --- discovering notes --------------------------------------------------------------------------------------------


def find_notes(root: Path, pattern: str = "*.txt") -> Iterator[Path]:
    """Files under ROOT matching PATTERN, recursively, in a stable (sorted) order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.match(pattern):
                yield path


# --- output -------------------------------------------------------------------------------------------------------


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    issues = row.get("issues") or []
    failed = [r["id"] for r in row.get("requirements") or [] if r["status"] in ("missing", "conflict")]
    return {
        "path": row["path"],
        "status": row["status"],
        "claimed_code": row.get("claimed_code") or "",
        "supported_code": row.get("supported_code") or "",
        "verdict": row.get("verdict") or "",
        "errors": sum(1 for i in issues if i["severity"] == "error"),
        "warnings": sum(1 for i in issues if i["severity"] == "warning"),
        "failed_requirements": ";".join(failed),
        "reason": row.get("reason") or "",
    }


def already_done(results: Path) -> dict[str, str]:
    """Path -> status for rows already in a results file (for --resume). A torn last line is ignored."""
    done: dict[str, str] = {}
    if not results.exists():
        return done
    with results.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
                done[row["path"]] = row.get("status", "")
            except (ValueError, KeyError, TypeError):
                continue
    return done


def _drop_torn_tail(results: Path) -> None:
    """A crash can leave half a line at the end; cut it so appended rows start on a line of their own."""
    with results.open("rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


@dataclass
class Summary:
    """Counters only: the summary never holds reports, so memory does not grow with the batch."""

    found: int = 0
    skipped: int = 0
    checked: int = 0
    rows_written: int = 0
    passed: int = 0
    failed: int = 0
    unreadable: int = 0
    mismatches: int = 0
    by_code: Counter = field(default_factory=Counter)
    gaps: Counter = field(default_factory=Counter)
    confusion: dict[str, Counter] = field(default_factory=dict)
    failing: list[dict[str, Any]] = field(default_factory=list)
    more_failing: int = 0
    previous_failing: int = 0  # failing rows already in the results file when resuming
    seconds: float = 0.0
    MAX_FAILING = 2000  # rows kept for the dashboard; the results file has them all

    def _keep_failing(self, row: dict[str, Any]) -> None:
        if len(self.failing) >= self.MAX_FAILING:
            self.more_failing += 1
            return
        rules = sorted({i["rule"] for i in row.get("issues", []) if i["severity"] == "error"})
        self.failing.append({"path": row["path"], "status": row["status"], "claimed_code": row.get("claimed_code"),
                             "supported_code": row.get("supported_code"), "rules": " ".join(rules),
                             "reason": row.get("reason"), "html_report": row.get("html_report")})

    def add(self, row: dict[str, Any]) -> None:
        self.checked += 1
        status = row["status"]
        if status == "unreadable":
            self.unreadable += 1
            self._keep_failing(row)
            return
        claimed = row.get("claimed_code") or "none"
        self.confusion.setdefault(claimed, Counter())[row.get("supported_code") or "none"] += 1
        if status == "failed":
            self._keep_failing(row)
        self.passed += status == "passed"
        self.failed += status == "failed"
        self.by_code[row.get("supported_code") or "none"] += 1
        if row.get("claimed_code") and row.get("claimed_code") != row.get("supported_code"):
            self.mismatches += 1
        for rule in {i["rule"] for i in row.get("issues", []) if i["severity"] in ("error", "warning")}:
            self.gaps[rule] += 1

    def as_dict(self) -> dict[str, Any]:
        readable = max(1, self.checked - self.unreadable)
        return {
            "notes_found": self.found, "skipped_resume": self.skipped, "notes_checked": self.checked,
            "rows_written": self.rows_written, "passed": self.passed, "failed": self.failed,
            "unreadable": self.unreadable, "failing_before_resume": self.previous_failing,
            "claimed_code_mismatches": self.mismatches,
            "by_supported_code": dict(sorted(self.by_code.items())),
            "top_gaps": [{"rule": r, "notes": n, "share": round(n / readable, 4)}
                         for r, n in self.gaps.most_common(10)],
            "seconds": round(self.seconds, 2),
            "notes_per_second": round(self.checked / self.seconds, 1) if self.seconds else None,
        }

    def render(self) -> str:
        d = self.as_dict()
        lines = [
            f"Checked {plural(d['notes_checked'], 'note')} in {d['seconds']} s"
            + (f" ({d['notes_per_second']} notes/s)" if d["notes_per_second"] else "")
            + (f"; {d['skipped_resume']} skipped as already done" if d["skipped_resume"] else ""),
            f"  passed {d['passed']}, failed {d['failed']}, unreadable {d['unreadable']}; "
            f"rows written {d['rows_written']} of {d['notes_found'] - d['skipped_resume']} files to do",
            f"  claimed-code mismatches: {d['claimed_code_mismatches']}",
            "  by supported code: " + ", ".join(f"{k} {v}" for k, v in d["by_supported_code"].items()),
        ]
        if d["top_gaps"]:
            lines.append("  most frequent documentation gaps:")
            lines += [f"    {g['rule']}  {plural(g['notes'], 'note')} ({100 * g['share']:.1f}%)" for g in d["top_gaps"]]
        return "\n".join(lines)


class Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool, stream: IO[str] = sys.stderr):
        self.total, self.enabled, self.stream = total, enabled, stream
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, failed: int, unreadable: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.2 and done < self.total):
            return
        self.last = now
        rate = done / (now - self.start) if now > self.start else 0.0
        width = 30
        filled = int(width * done / self.total) if self.total else width
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}  "
                          f"failed {failed}  unreadable {unreadable}  {rate:.0f} notes/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# --- running ------------------------------------------------------------------------------------------------------


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_local(paths: list[str], jobs: int, init_args: tuple) -> Iterator[dict[str, Any]]:
    """Rows in input order. One pipeline per worker process, built by the pool initializer."""
    if jobs <= 1:
        init_worker(*init_args)
        for p in paths:
            yield check_path(p)
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(processes=jobs, initializer=init_worker, initargs=init_args) as pool:
        for rows in pool.imap(check_paths, _chunks(paths, 8)):
            yield from rows


def run_dask(paths: list[str], init_args: tuple, scheduler: Optional[str], jobs: int) -> Iterator[dict[str, Any]]:
    """The same rows through Dask: a LocalCluster without an address, the given scheduler with one."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("the dask engine needs the optional extra: pip install 'notecheck[dask]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(check_chunk, chunk, init_args, pure=False) for chunk in _chunks(paths, 16)]
        for fut in futures:  # in order, so rows match the local engine's order
            yield from fut.result()
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@dataclass
class BatchOptions:
    root: Path
    pattern: str = "*.txt"
    jobs: int = 0
    out: Optional[Path] = None
    csv_path: Optional[Path] = None
    resume: bool = False
    progress: bool = False
    engine: str = "local"
    scheduler: Optional[str] = None
    patterns_dir: Optional[str] = None
    family: str = "hip_dislocation"
    max_bytes: int = DEFAULT_MAX_BYTES
    html_dashboard: Optional[Path] = None
    html_dir: Optional[Path] = None


def write_dashboard(summary: Summary, target: Path) -> None:
    from notecheck.html_report import render_dashboard

    links = {}
    for row in summary.failing:
        if row.get("html_report"):
            rel = os.path.relpath(row["html_report"], target.parent)
            links[row["path"]] = rel
    target.write_text(render_dashboard(summary.as_dict(), {k: dict(v) for k, v in summary.confusion.items()},
                                       summary.failing, summary.more_failing, links), encoding="utf-8")


def run_batch(opts: BatchOptions, on_row: Optional[Callable[[dict[str, Any]], None]] = None) -> Summary:
    """Check every note under opts.root, writing rows as they arrive; returns the counters."""
    summary = Summary()
    started = time.perf_counter()
    all_paths = [str(p) for p in find_notes(opts.root, opts.pattern)]
    summary.found = len(all_paths)
    done = already_done(opts.out) if (opts.resume and opts.out) else {}
    paths = [p for p in all_paths if display_path(p) not in done]
    summary.previous_failing = sum(1 for p in all_paths if done.get(display_path(p)) in ("failed", "unreadable"))
    summary.skipped = len(all_paths) - len(paths)
    jobs = opts.jobs or os.cpu_count() or 1
    if opts.html_dir:
        opts.html_dir.mkdir(parents=True, exist_ok=True)
    init_args = (opts.patterns_dir, opts.family, opts.max_bytes, str(opts.html_dir) if opts.html_dir else None)

    if opts.resume and opts.out and opts.out.exists():
        _drop_torn_tail(opts.out)
    mode = "a" if opts.resume else "w"
    out_fh = opts.out.open(mode, encoding="utf-8") if opts.out else None
    csv_exists = opts.csv_path is not None and opts.csv_path.exists() and opts.resume
    csv_fh = opts.csv_path.open(mode, encoding="utf-8", newline="") if opts.csv_path else None
    writer = csv.DictWriter(csv_fh, fieldnames=CSV_FIELDS) if csv_fh else None
    if writer and not csv_exists:
        writer.writeheader()
    progress = Progress(len(paths), opts.progress)
    rows: Iterable[dict[str, Any]] = (
        run_dask(paths, init_args, opts.scheduler, jobs) if opts.engine == "dask" else run_local(paths, jobs, init_args)
    )
    try:
        for row in rows:
            if out_fh:
                out_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                out_fh.flush()
            if writer and csv_fh:
                writer.writerow(csv_row(row))
                csv_fh.flush()
            summary.rows_written += 1
            summary.add(row)
            if on_row:
                on_row(row)
            progress.update(summary.checked, summary.failed, summary.unreadable)
    finally:
        progress.close()
        summary.seconds = time.perf_counter() - started
        for fh in (out_fh, csv_fh):
            if fh:
                fh.close()
    if opts.html_dashboard:
        write_dashboard(summary, opts.html_dashboard)
    return summary
