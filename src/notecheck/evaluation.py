"""`notecheck eval DIR`: measure the checker against gold labels (supported code, mismatch detection, each field).

Labels are one JSON object per note (`ID.json` beside `ID.txt`) in the format of the accuracy issue. Cases marked
`"unscored": true` are reported but left out of every total.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notecheck.checker import Checker
from notecheck.models import CheckResult, Evidence
from notecheck.reading import ReadError, read_note

# The held-out scoring convention (docs/labelling.md): careful coders split on whether a spica held in abduction is
# "abduction" or "splint", so both score as one class, immobilisation, beside traction.
TECHNIQUE_CLASSES = {"abduction": "immobilisation", "splint": "immobilisation", "traction": "traction"}
FIRST_RUN = "FIRST_RUN.json"
FIELDS = ["etiology", "approach", "anesthesia", "manipulation", "technique", "imaging_pre", "imaging_post",
          "laterality", "fractures", "femoral_shortening", "tenotomy"]
NONE = "none"


class Fractures(BaseModel):
    acetabular_wall: bool
    femoral_head: bool


class Label(BaseModel):
    """Gold label for one note."""

    model_config = ConfigDict(extra="ignore")

    id: str
    claimed_code: Optional[str]
    expected_code: Optional[str]
    etiology: str
    approach: str
    anesthesia: str
    manipulation: Optional[bool]
    technique: list[str]
    imaging_pre: bool
    imaging_post: bool
    laterality: str
    fractures: Fractures
    femoral_shortening: bool
    tenotomy: bool
    mismatch: bool
    traps: str = ""
    unscored: bool = False


class FieldError(BaseModel):
    id: str
    field: str
    gold: Any
    predicted: Any
    evidence: list[str] = Field(default_factory=list)


class CaseResult(BaseModel):
    id: str
    group: str = Field(default=".", description="the writer set: first folder under the evaluated directory")
    unscored: bool
    gold_code: Optional[str]
    predicted_code: Optional[str]
    claimed_code: Optional[str]
    gold_mismatch: bool
    predicted_mismatch: bool
    errors: list[FieldError]
    read_error: Optional[str] = None
    predicted: dict[str, Any] = Field(default_factory=dict, description="every scored field as predicted")


class EvalReport(BaseModel):
    directory: str
    cases: int
    scored: int
    code_accuracy: float
    code_correct: int
    confusion: dict[str, dict[str, int]] = Field(description="gold code -> predicted code -> count ('none' = no code)")
    mismatch_precision: float
    mismatch_recall: float
    mismatch_tp: int
    mismatch_fp: int
    mismatch_fn: int
    field_accuracy: dict[str, float]
    results: list[CaseResult]


def _predicted(result: CheckResult, name: str) -> Any:
    f = result.findings
    if name == "fractures":
        return {"acetabular_wall": f.acetabular_wall_fracture, "femoral_head": f.femoral_head_fracture}
    value = getattr(f, name)
    return sorted(value) if isinstance(value, list) else value


def _gold(label: Label, name: str) -> Any:
    value = getattr(label, name)
    if name == "fractures":
        return value.model_dump()
    return sorted(value) if isinstance(value, list) else value


def _same(name: str, gold: Any, predicted: Any) -> bool:
    if name == "technique":
        return {TECHNIQUE_CLASSES.get(v, v) for v in gold} == {TECHNIQUE_CLASSES.get(v, v) for v in predicted}
    return gold == predicted


_EVIDENCE_FIELDS = {
    "fractures": ("acetabular_wall_fracture", "femoral_head_fracture"),
    "imaging_pre": ("imaging_pre", "imaging", "imaging_post"),
    "imaging_post": ("imaging_post", "imaging", "imaging_pre"),
}


def _evidence_for(evidence: list[Evidence], name: str) -> list[str]:
    fields = _EVIDENCE_FIELDS.get(name, (name,))
    out = []
    for e in evidence:
        if e.field in fields:
            flags = [k[3:] for k in ("is_negated", "is_hypothetical", "is_historical", "is_family", "is_uncertain")
                     if getattr(e, k)]
            mark = "" if e.counted else f" [not counted: {', '.join(flags or e.modifiers) or 'section'}]"
            out.append(f"{e.field}={e.value} '{e.text}' @{e.start} ({e.section}){mark}")
    return out


def load_labels(directory: Path) -> list[tuple[Path, Label]]:
    """Every *.txt with a *.json label beside it; a broken label is an input error naming the file."""
    pairs = []
    for txt in sorted(directory.rglob("*.txt")):
        label_path = txt.with_suffix(".json")
        if not label_path.exists():
            continue
        try:
            label = Label.model_validate_json(label_path.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ValueError(f"{label_path}: field {where}: {first['msg']}") from None
        pairs.append((txt, label))
    return pairs


def evaluate(directory: Path, checker: Optional[Checker] = None) -> EvalReport:
    checker = checker or Checker()
    pairs = load_labels(directory)
    codes = [c.code for c in checker.book.families[checker.family].codes]
    results: list[CaseResult] = []
    for txt, label in pairs:
        try:
            note = read_note(str(txt))
        except ReadError as exc:
            results.append(CaseResult(id=label.id, group=_group(directory, txt), unscored=label.unscored,
                                      gold_code=label.expected_code,
                                      predicted_code=None, claimed_code=None, gold_mismatch=label.mismatch,
                                      predicted_mismatch=False, errors=[], read_error=str(exc)))
            continue
        result = checker.check_note(note)
        predicted = {name: _predicted(result, name) for name in FIELDS}
        errors = [FieldError(id=label.id, field=name, gold=_gold(label, name), predicted=predicted[name],
                             evidence=_evidence_for(result.evidence, name))
                  for name in FIELDS if not _same(name, _gold(label, name), predicted[name])]
        if result.supported_code != label.expected_code:
            errors.insert(0, FieldError(id=label.id, field="code", gold=label.expected_code,
                                        predicted=result.supported_code, evidence=[result.supported_reason]))
        results.append(CaseResult(id=label.id, group=_group(directory, txt), unscored=label.unscored,
                                  gold_code=label.expected_code, predicted_code=result.supported_code,
                                  claimed_code=result.claimed_code, gold_mismatch=label.mismatch,
                                  predicted_mismatch=result.claimed_code is not None
                                  and result.claimed_code != result.supported_code,
                                  errors=errors, predicted=predicted))
    return summarise(str(directory), results, codes)


def _group(directory: Path, txt: Path) -> str:
    parts = txt.relative_to(directory).parts
    return parts[0] if len(parts) > 1 else "."


def summarise(directory: str, results: list[CaseResult], codes: list[str]) -> EvalReport:
    """Totals over case results (all of a directory, or one writer's set)."""
    keys = sorted(codes) + [NONE]
    confusion = {g: {p: 0 for p in keys} for g in keys}
    field_right = {f: 0 for f in FIELDS}
    tp = fp = fn = correct = scored = 0
    for r in results:
        if r.unscored:
            continue
        scored += 1
        if r.read_error:  # unreadable scored cases count as wrong everywhere
            fn += r.gold_mismatch
            continue
        wrong = {e.field for e in r.errors}
        for name in FIELDS:
            field_right[name] += name not in wrong
        correct += r.predicted_code == r.gold_code
        g, p = r.gold_code or NONE, r.predicted_code or NONE
        confusion.setdefault(g, {k: 0 for k in keys})
        confusion[g][p] = confusion[g].get(p, 0) + 1
        tp += r.gold_mismatch and r.predicted_mismatch
        fp += (not r.gold_mismatch) and r.predicted_mismatch
        fn += r.gold_mismatch and not r.predicted_mismatch

    def ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 1.0

    return EvalReport(
        directory=directory,
        cases=len(results),
        scored=scored,
        code_accuracy=ratio(correct, scored),
        code_correct=correct,
        confusion=confusion,
        mismatch_precision=ratio(tp, tp + fp),
        mismatch_recall=ratio(tp, tp + fn),
        mismatch_tp=tp,
        mismatch_fp=fp,
        mismatch_fn=fn,
        field_accuracy={f: ratio(field_right[f], scored) for f in FIELDS},
        results=results,
    )


def render_eval_text(report: EvalReport, show_cases: bool = True) -> str:
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    lines = [
        f"notecheck eval {report.directory}: {report.cases} labelled notes, {report.scored} scored",
        "",
        f"Supported code accuracy: {pct(report.code_accuracy)} ({report.code_correct}/{report.scored})",
        f"Mismatch detection: precision {pct(report.mismatch_precision)}, recall {pct(report.mismatch_recall)} "
        f"(tp {report.mismatch_tp}, fp {report.mismatch_fp}, fn {report.mismatch_fn})",
        "",
        "Per-field accuracy:",
    ]
    lines += [f"  {name:<20} {pct(acc)}" for name, acc in report.field_accuracy.items()]
    keys = list(next(iter(report.confusion.values())).keys()) if report.confusion else []
    lines += ["", "Confusion (rows gold, columns predicted):", "  gold\\pred " + " ".join(f"{k:>5}" for k in keys)]
    for gold, row in report.confusion.items():
        if any(row.values()):
            lines.append(f"  {gold:<9} " + " ".join(f"{row.get(k, 0) or '.':>5}" for k in keys))
    wrong = [r for r in report.results if r.errors or r.read_error]
    if show_cases and wrong:
        lines += ["", "Wrong cases:"]
        for r in wrong:
            tag = " (unscored)" if r.unscored else ""
            if r.read_error:
                lines.append(f"  {r.id}{tag}: unreadable: {r.read_error}")
                continue
            for e in r.errors:
                lines.append(f"  {r.id}{tag} {e.field}: gold {json.dumps(e.gold)}, predicted {json.dumps(e.predicted)}")
                lines += [f"      {ev}" for ev in e.evidence[:6]]
    return "\n".join(lines)


def rescore(saved: EvalReport, directory: Path, codes: list[str]) -> EvalReport:
    """A saved run's predictions scored against the labels as they are now (labels may have been corrected by the
    second labeller since): this is how a writer set's first, blind run keeps counting after its errors were used."""
    labels = {label.id: label for _, label in load_labels(directory)}
    results = []
    for old in saved.results:
        label = labels.get(old.id)
        if label is None or old.read_error or not old.predicted:
            continue
        errors = [FieldError(id=label.id, field=name, gold=_gold(label, name), predicted=old.predicted[name])
                  for name in FIELDS if not _same(name, _gold(label, name), old.predicted[name])]
        if old.predicted_code != label.expected_code:
            errors.insert(0, FieldError(id=label.id, field="code", gold=label.expected_code,
                                        predicted=old.predicted_code))
        results.append(old.model_copy(update={"unscored": label.unscored, "gold_code": label.expected_code,
                                              "gold_mismatch": label.mismatch, "errors": errors}))
    return summarise(saved.directory, results, codes)


class WriterRow(BaseModel):
    group: str
    now: EvalReport
    first_run: Optional[EvalReport] = None


def by_writer(report: EvalReport, directory: Path, codes: list[str]) -> list[WriterRow]:
    """One row per writer set: today's figures and, where the set holds a FIRST_RUN.json, its first blind run."""
    rows = []
    for group in sorted({r.group for r in report.results}):
        now = summarise(f"{report.directory}/{group}", [r for r in report.results if r.group == group], codes)
        first = None
        saved = directory / group / FIRST_RUN
        if saved.is_file():
            first = rescore(EvalReport.model_validate_json(saved.read_text(encoding="utf-8")), directory / group,
                            codes)
        rows.append(WriterRow(group=group, now=now, first_run=first))
    return rows


def render_by_writer(rows: list[WriterRow]) -> str:
    pct = lambda x: f"{100 * x:5.1f}%"  # noqa: E731

    def cells(r: Optional[EvalReport]) -> str:
        if r is None:
            return f"{'-':>7} {'-':>7} {'-':>7} {'':<14}"
        low = min(r.field_accuracy, key=lambda k: r.field_accuracy[k])
        return f"{pct(r.code_accuracy):>7} {pct(r.mismatch_recall):>7} {pct(r.field_accuracy[low]):>7} {low:<14}"

    head = f"{'set':<8} {'notes':>5} | {'first blind run: code':>21} {'mm R':>7} {'lowest field':>22} | " \
           f"{'now: code':>9} {'mm R':>7} {'lowest field':>22}"
    lines = [head, "-" * len(head)]
    firsts = []
    for row in rows:
        lines.append(f"{row.group:<8} {row.now.scored:>5} | {cells(row.first_run):>52} | {cells(row.now)}")
        if row.first_run is not None:
            firsts += [r for r in row.first_run.results]
    if firsts:
        pooled = summarise("first runs", firsts, list(next(iter(rows)).now.confusion)[:-1])
        lines += ["", f"Leave-one-writer-out (every set scored by the code as it was before its own errors were "
                      f"seen): code {pct(pooled.code_accuracy).strip()} ({pooled.code_correct}/{pooled.scored}), "
                      f"mismatch recall {pct(pooled.mismatch_recall).strip()}"]
    return "\n".join(lines)
