"""Dask integration: the same per-note rows as `notecheck batch`, computed on a Dask cluster.

One notecheck pipeline is built per worker process (cached in this module) and reused for every partition, never per
note. Used by `notecheck batch --engine dask`; the helpers below are also the documented recipe for running over a
dask.bag of files or a column of note texts and writing JSONL partitions.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from notecheck.reading import DEFAULT_MAX_BYTES
from notecheck.worker import check_chunk, checker_for, report_row


def check_texts(records: Iterable[dict[str, Any]], patterns_dir: Optional[str] = None) -> list[dict[str, Any]]:
    """Rows for records {"id": ..., "text": ..., "code": optional}: for notes held in a table, not in files."""
    checker = checker_for(patterns_dir)
    rows = []
    for rec in records:
        result = checker.check_text(rec["text"], source=str(rec["id"]), claimed_code=rec.get("code"))
        rows.append(report_row(result, str(rec["id"])))
    return rows


def bag_of_files(paths: list[str], npartitions: int = 8):  # pragma: no cover - thin recipe helper
    """A dask.bag of result rows (as JSON lines) for FILES; write with `.to_textfiles('out/*.jsonl')`."""
    import dask.bag as db

    init_args = (None, "hip_dislocation", DEFAULT_MAX_BYTES, None)
    return (db.from_sequence(paths, npartitions=npartitions)
            .map_partitions(lambda part: check_chunk(list(part), init_args))
            .map(lambda row: json.dumps(row, ensure_ascii=False)))
