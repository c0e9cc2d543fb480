"""Render a CheckResult for a person (text) or a program (JSON), and the rule and code catalogues."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any, Optional

from notecheck.models import CheckResult, Evidence
from notecheck.rulebook import CodeSpec, Family, Rulebook, RuleSpec

_VERDICT = {
    "supported": "SUPPORTED",
    "supported_with_gaps": "SUPPORTED WITH GAPS",
    "needs_correction": "NEEDS CORRECTION",
    "not_supported": "NOT SUPPORTED",
    "no_claim": "NO CLAIMED CODE",
    "no_code": "NO FAMILY CODE",
}
_WIDTH = 100


def _quote(e: Evidence) -> str:
    flags = [name[3:] for name in ("is_negated", "is_hypothetical", "is_historical", "is_family", "is_uncertain")
             if getattr(e, name)]
    where = f"{e.section or 'no section'}, chars {e.start}-{e.end}"
    tail = f"; {', '.join(flags)}" if flags else ""
    counted = "" if e.counted else " [not counted]"
    return f'"{e.text}" ({where}{tail}){counted}'


def error_summary(result: CheckResult) -> str:
    """'1 error must be resolved (NC103)': the part of the headline that agrees with the exit code."""
    rules = sorted({i.rule for i in result.issues if i.severity == "error"})
    count = sum(i.severity == "error" for i in result.issues)
    if not count:
        return ""
    return f"{count} error{'s' if count != 1 else ''} must be resolved ({', '.join(rules)})"


def headline(result: CheckResult) -> str:
    """Verdict, codes and, whenever the note fails, its errors: the headline never reads as a pass on exit 1."""
    verdict = _VERDICT[result.verdict]
    supported = result.supported_code or "no code in this family"
    if result.claimed_code is None:
        text = f"{verdict} - the documentation supports {supported}"
    elif result.claimed_code == result.supported_code:
        text = f"{verdict} - claimed {result.claimed_code} matches the documentation"
    else:
        text = f"{verdict} - claimed {result.claimed_code}, the documentation supports {supported}"
    errors = error_summary(result)
    return f"{text}; {errors}" if errors else text


def _headline(result: CheckResult) -> str:
    return f"{result.source}: {headline(result)}"


def render_text(result: CheckResult, verbose: bool = False) -> str:
    """Verdict first, then each requirement with its quoted evidence, then issues and their queries."""
    lines = [_headline(result), f"  Why: {result.supported_reason}"]
    target = result.claimed_code or result.supported_code
    if result.requirements:
        lines += ["", f"Requirements for {target}:"]
        for req in result.requirements:
            found = f" - found: {req.found}" if req.found not in (None, "") else ""
            lines.append(f"  [{req.status:<8}] {req.description}{found}")
            shown = req.evidence if verbose else req.evidence[:3]
            for e in shown:
                lines.append(f"               {_quote(e)}")
            if len(req.evidence) > len(shown):
                lines.append(f"               ... {len(req.evidence) - len(shown)} more (use --verbose)")
    if result.issues:
        lines += ["", "Issues:"]
        for issue in result.issues:
            lines.append(f"  {issue.severity:<7} {issue.rule} {issue.name}: {issue.message}")
            if issue.query:
                wrapped = textwrap.wrap(issue.query, _WIDTH - 18)
                lines.append(f"          Query: {wrapped[0]}")
                lines += [f"                 {w}" for w in wrapped[1:]]
    events = result.findings.events
    if len(events) > 1 or any(e.outcome == "failed" for e in events):
        lines += ["", "Reduction attempts (the last one that succeeded decides):"]
        for e in events:
            mark = "  -> decides" if e.deciding else ""
            lines.append(f"  {e.index}. {e.approach}, anaesthesia {e.anesthesia}, {e.outcome} (at {e.start}){mark}")
    if result.modifiers:
        lines += ["", "Modifiers:"]
        lines += [f"  {m.modifier:<3} {m.reason}" for m in result.modifiers]
    if result.warnings:
        lines += ["", "Input notes:"] + [f"  {w}" for w in result.warnings]
    counts = {s: sum(1 for i in result.issues if i.severity == s) for s in ("error", "warning", "info")}
    lines += ["", f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info."]
    return "\n".join(lines)


def render_json(result: CheckResult) -> str:
    return result.model_dump_json(indent=2)


def result_schema() -> str:
    return json.dumps(CheckResult.model_json_schema(), indent=2)


_SENTENCE_BREAK = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)(?<!\bcf)(?<!\bapprox)\.\s")


def first_sentence(text: str) -> str:
    """The first sentence, not cut at 'e.g.' or 'i.e.'."""
    found = _SENTENCE_BREAK.search(text)
    return (text[: found.start()] if found else text.rstrip(".")) + "."


def plural(count: int, noun: str) -> str:
    """'1 note', '2 notes'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_rules(book: Rulebook, rule_id: Optional[str] = None, as_json: bool = False) -> str:
    rules = [book.rules[rule_id]] if rule_id else sorted(book.rules.values(), key=lambda r: r.id)
    if as_json:
        return json.dumps([r.model_dump() for r in rules], indent=2)
    if rule_id is None:
        return "\n".join(f"{r.id}  {r.severity:<7}  {r.name:<36} {first_sentence(r.explanation)}"
                         for r in rules)
    return _rule_detail(rules[0])


def _rule_detail(r: RuleSpec) -> str:
    out = [f"{r.id} {r.name} ({r.severity})", "", textwrap.fill(r.explanation, _WIDTH), "",
           f"Message: {r.message}"]
    if r.query:
        out.append(f"Query:   {r.query}")
    out += ["Examples:"] + [f"  - {e}" for e in r.examples]
    return "\n".join(out)


def render_codes(fam: Family, code: Optional[str] = None, as_json: bool = False) -> str:
    specs = [fam.code(code)] if code else fam.codes
    if as_json:
        return json.dumps([s.model_dump(by_alias=True) for s in specs if s], indent=2)
    if code is None:
        head = [fam.title, ""]
        lines = [f"{s.code}  global {s.global_days}  {s.descriptor}" for s in sorted(fam.codes, key=lambda s: s.code)]
        return "\n".join(head + lines)
    return _code_detail(specs[0])


def _cond_text(conds) -> str:
    parts = []
    for c in conds:
        if c.in_ is not None:
            vals = " or ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in c.in_)
            parts.append(f"{c.finding} is {vals}")
        else:
            vals = " or ".join(str(v) for v in (c.not_in or []))
            parts.append(f"{c.finding} is not {vals}")
    return "; ".join(parts)


def _code_detail(s: CodeSpec) -> str:
    out = [f"{s.code}: {s.descriptor}", "", f"Selected when: {_cond_text(s.select_when)}",
           "Documentation requirements:"]
    for r in s.requirements:
        rules = ", ".join(x for x in {r.rule_missing, r.rule_conflict} if x)
        out.append(f"  - {r.description} [{rules}]")
    out += [f"Siblings: {s.siblings}", f"Global period: {s.global_days} days",
            "ICD-10-CM categories that fit:"] + [f"  - {i.prefix}: {i.meaning}" for i in s.icd10]
    out += ["Modifier and bundling notes:"] + [f"  - {n}" for n in s.notes]
    return "\n".join(out)


_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_sarif(results: list[CheckResult], book: Rulebook) -> str:
    """SARIF 2.1.0: one run of the tool `notecheck`, its rule catalogue, one result per issue with a char region."""
    from notecheck.version import __version__

    rules = sorted(book.rules.values(), key=lambda r: r.id)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    driver = {
        "name": "notecheck",
        "version": __version__,
        "informationUri": "https://example.invalid/notecheck",
        "rules": [{
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.message.split("{")[0].strip() or r.name},
            "fullDescription": {"text": r.explanation},
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            "help": {"text": r.explanation + (f" Query: {r.query}" if r.query else "")},
        } for r in rules],
    }
    out_results, artifacts = [], []
    for result in results:
        uri = result.source if result.source not in ("-", "<stdin>") else "stdin"
        artifacts.append({"location": {"uri": uri}})
        for issue in result.issues:
            artifact = {"uri": uri, "index": len(artifacts) - 1}
            location: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact}}
            if issue.evidence:
                e = issue.evidence[0]
                location["physicalLocation"]["region"] = {"charOffset": e.start, "charLength": e.end - e.start}
            entry: dict[str, Any] = {
                "ruleId": issue.rule,
                "ruleIndex": rule_index[issue.rule],
                "level": _SARIF_LEVEL[issue.severity],
                "message": {"text": issue.message + (f" Query: {issue.query}" if issue.query else "")},
                "locations": [location],
                "properties": {"claimedCode": result.claimed_code, "supportedCode": result.supported_code},
            }
            out_results.append(entry)
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "artifacts": artifacts, "results": out_results,
                  "columnKind": "unicodeCodePoints"}],
    }
    return json.dumps(log, indent=2)
