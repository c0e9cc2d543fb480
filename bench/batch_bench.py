"""Benchmark `notecheck batch` (not a test): notes/s for --jobs 1 and --jobs 2, and peak RSS of the whole batch.

    python bench/batch_bench.py [--notes 2000]

Makes N notes by copying the corpus and sample notes round-robin into a temporary folder, runs the real CLI once per
--jobs setting, samples the summed RSS of the CLI process and its workers every 50 ms, and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_kb(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                stack.extend(int(k) for k in kids)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run(folder: Path, jobs: int, exe: str) -> dict:
    out = folder.parent / f"results-{jobs}.jsonl"
    cmd = [exe, "-m", "notecheck", "batch", str(folder), "--jobs", str(jobs), "--out", str(out), "-f", "json"]
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, tree_rss_kb(proc.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    stdout, _ = proc.communicate()
    t.join()
    wall = time.perf_counter() - start
    summary = json.loads(stdout)
    return {"jobs": jobs, "notes": summary["notes_checked"], "wall_s": round(wall, 2),
            "notes_per_s": round(summary["notes_checked"] / wall, 1), "peak_rss_mb": round(peak / 1024, 1),
            "rows": summary["rows_written"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=2000)
    args = ap.parse_args()
    sources = sorted((ROOT / "corpus").glob("*.txt")) + sorted((ROOT / "sample_notes").glob("*.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "notes"
        folder.mkdir()
        for i, src in zip(range(args.notes), itertools.cycle(sources)):
            sub = folder / f"d{i % 20:02d}"
            sub.mkdir(exist_ok=True)
            shutil.copy(src, sub / f"n{i:05d}.txt")
        words = sum(len(s.read_text(encoding="utf-8", errors="replace").split()) for s in sources) / len(sources)
        results = [run(folder, jobs, sys.executable) for jobs in (1, 2)]
    print(f"{args.notes} notes (mean {words:.0f} words), machine CPUs: {__import__('os').cpu_count()}")
    print(f"{'jobs':>4} {'notes':>6} {'wall s':>7} {'notes/s':>8} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['jobs']:>4} {r['notes']:>6} {r['wall_s']:>7} {r['notes_per_s']:>8} {r['peak_rss_mb']:>12}")
    print(f"speed-up jobs 2 / jobs 1: {results[1]['notes_per_s'] / results[0]['notes_per_s']:.2f}x")


if __name__ == "__main__":
    main()
