"""Compare findings with a code family's documentation requirements: supported code, claimed code, issues.

All code-specific knowledge comes from the family file in patterns/families/; this module only knows how to evaluate
conditions and requirements and how to phrase issues from the rule catalogue.
"""

from __future__ import annotations

from typing import Any, Optional

from notecheck.models import (
    CheckResult,
    Evidence,
    Findings,
    Issue,
    Modifier,
    RequirementResult,
    Resolution,
    SectionSpan,
)
from notecheck.rulebook import Condition, Family, Requirement, Rulebook

DEFAULT_FAMILY = "hip_dislocation"
_UNKNOWN = (None, "unknown")
_LABELS = {
    "moderate_sedation": "moderate sedation",
    "mac": "monitored anesthesia care (MAC)",
    "none": "no anesthesia",
    "post_arthroplasty": "post-arthroplasty",
}


class ValidationInputError(ValueError):
    """The caller asked for something the rulebook does not know (an unknown family or claimed code)."""


def _label(value: Any) -> str:
    if isinstance(value, list):
        return " or ".join(_label(v) for v in value)
    return _LABELS.get(str(value), str(value).lower() if isinstance(value, bool) else str(value))


def _value(findings: Findings, name: str) -> Any:
    if not hasattr(findings, name):
        raise ValidationInputError(f"rule data refers to unknown finding '{name}'")
    return getattr(findings, name)


def _holds(conds: list[Condition], findings: Findings) -> bool:
    return all(c.holds(_value(findings, c.finding)) for c in conds)


def _why(conds: list[Condition], findings: Findings) -> str:
    parts = []
    for c in conds:
        v = _value(findings, c.finding)
        shown = ("yes" if v else "no") if isinstance(v, bool) else _label(v)
        parts.append(f"{c.finding.replace('_', ' ')} {shown}")
    return ", ".join(parts)


def select_code(findings: Findings, fam: Family) -> tuple[Optional[str], str]:
    """The first code (in the family file's order) whose conditions the documentation meets, with the reason."""
    if not _holds(fam.gate, findings):
        return None, fam.gate_reason
    for rule in fam.outside:
        if _holds(rule.when, findings):
            return None, rule.reason
    for spec in fam.codes:
        if _holds(spec.select_when, findings):
            return spec.code, f"Documented: {_why(spec.select_when, findings)}."
    unknown = [n for n in fam.decisive_findings if _value(findings, n) == "unknown"]
    if unknown:
        return None, f"The note does not document the {' or the '.join(unknown)}, so no code can be selected."
    documented = ", ".join(f"{n} {_label(_value(findings, n))}" for n in fam.decisive_findings)
    return None, f"No code in the family fits the documented {documented}."


def claimed_from_note(evidence: list[Evidence], fam: Family) -> Optional[str]:
    """First family CPT code on a billing line, else the first family code written anywhere in the note."""
    family_codes = {c.code for c in fam.codes}
    codes = [e for e in evidence if e.field == "cpt_code" and (e.value or e.text) in family_codes]
    # A billing line states the claim even when worded conditionally; elsewhere a code in a plan or a guess
    # ("likely 27258") is not a claim.
    billing = [e for e in codes if (e.section == "billing" or e.labelled) and not e.is_negated]
    chosen = billing or [e for e in codes if e.counted]
    return (chosen[0].value or chosen[0].text) if chosen else None


def _field_evidence(evidence: list[Evidence], finding: str) -> list[Evidence]:
    return [e for e in evidence if e.field == finding]


def _check_requirement(req: Requirement, findings: Findings, evidence: list[Evidence]) -> tuple[str, Optional[str]]:
    """Status (met | missing | conflict) and the rule id for a gap."""
    value = _value(findings, req.finding)
    if req.nonempty:
        return ("met", None) if value else ("missing", req.rule_missing)
    ok = value in req.in_ if req.in_ is not None else value not in (req.not_in or [])
    if ok:
        return "met", None
    if isinstance(value, bool) and value is False:
        negated = any(e.is_negated for e in _field_evidence(evidence, req.finding))
        return ("conflict", req.rule_conflict) if negated else ("missing", req.rule_missing)
    if value in _UNKNOWN:
        return "missing", req.rule_missing
    override = req.conflict_overrides.get(str(value))
    return "conflict", override or req.rule_conflict


class _Issues:
    def __init__(self, book: Rulebook, params: dict[str, Any]):
        self.book, self.params, self.items = book, params, []

    def add(self, rule_id: str, evidence: Optional[list[Evidence]] = None, severity: Optional[str] = None,
            **extra: Any) -> None:
        spec = self.book.rule(rule_id)
        params = {**self.params, **extra}
        self.items.append(
            Issue(
                rule=spec.id,
                name=spec.name,
                severity=severity or spec.severity,
                message=spec.message.format_map(_Defaulting(params)),
                query=spec.query.format_map(_Defaulting(params)) if spec.query else None,
                evidence=evidence or [],
            )
        )


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "unknown"


def validate(
    findings: Findings,
    evidence: list[Evidence],
    resolutions: list[Resolution],
    book: Rulebook,
    *,
    source: str,
    claimed_code: Optional[str] = None,
    family: str = DEFAULT_FAMILY,
    warnings: Optional[list[str]] = None,
    sections: Optional[list[SectionSpan]] = None,
) -> CheckResult:
    """Decide the supported code, check the claimed (else supported) code's requirements and list every issue."""
    fam = book.family(family)
    if claimed_code is not None and fam.code(claimed_code) is None:
        raise ValidationInputError(
            f"code {claimed_code} is not in the {family} family (known: {', '.join(c.code for c in fam.codes)})")
    claimed_from = "option" if claimed_code else None
    if claimed_code is None:
        claimed_code = claimed_from_note(evidence, fam)
        claimed_from = "note" if claimed_code else None
    supported, supported_reason = select_code(findings, fam)
    target = fam.code(claimed_code or supported or "")

    side = findings.laterality
    params: dict[str, Any] = {
        "claimed": claimed_code or "the code",
        "supported": supported or "no code in this family",
        "reason": supported_reason,
        "laterality_text": f"{side} " if side in ("left", "right") else "",
    }
    issues = _Issues(book, params)
    requirements: list[RequirementResult] = []

    if claimed_code and claimed_code != supported:
        issues.add("NC001", [e for e in evidence if e.field == "cpt_code" and (e.value or e.text) == claimed_code][:1])
    if not claimed_code and supported:
        issues.add("NC002")
    if supported is None:
        issues.add("NC004")

    if target is not None:
        for req in [*target.requirements, *fam.common_requirements]:
            if target.code in req.not_for:
                continue
            status, rule_id = _check_requirement(req, findings, evidence)
            value = _value(findings, req.finding)
            ev = _field_evidence(evidence, req.finding)
            found_text = None if value is None else str(value).lower() if isinstance(value, bool) else value
            # Show what decided the finding first: counted mentions of the resolved value, then the rest.
            shown = sorted((e for e in ev if e.value is not None or e.is_negated),
                           key=lambda e: (not e.counted, e.value != found_text and not isinstance(found_text, list)))
            if status == "met":
                shown = [e for e in shown if e.counted]
                if isinstance(found_text, str):  # the mentions that decided it, not counted ones of another value
                    shown = [e for e in shown if e.value == found_text] or shown
            # Each span once: two rules over the same characters (or a mention and what it implies) cite it once.
            seen_spans: set[tuple[int, int]] = set()
            shown = [e for e in shown if (e.start, e.end) not in seen_spans and not seen_spans.add((e.start, e.end))]
            requirements.append(
                RequirementResult(
                    id=req.id,
                    description=req.description,
                    status=status,
                    finding=req.finding,
                    found=None if value is None else _label(value) if not isinstance(value, list) else ", ".join(value),
                    evidence=shown,
                )
            )
            if rule_id is not None:
                expected = _label(req.in_) if req.in_ is not None else f"not {_label(req.not_in or [])}"
                issues.add(rule_id, ev, severity=req.severity, expected=expected, found=_label(value))

        documented = findings.etiology
        for icd in findings.icd10_codes:
            for mapping in fam.icd10_etiology:
                if icd.startswith(mapping.prefix):
                    reference = documented if documented != "unknown" else None
                    if reference is not None and reference not in mapping.etiology:
                        coded = [e for e in evidence if e.field == "icd10_code" and e.text.upper() == icd][:1]
                        issues.add("NC103", coded, icd=icd, icd_etiology=_label(mapping.etiology),
                                   found=_label(reference))
        for check in fam.finding_checks:
            if _holds(check.when, findings):
                fields = {c.finding for c in check.when}
                issues.add(check.rule, [e for e in evidence if e.field in fields and e.counted])
        for check in fam.code_checks:
            billed = [c for c in findings.cpt_codes if c in check.codes]
            if billed and target.code in check.claimed_in:
                issues.add(check.rule, [e for e in evidence if e.field == "cpt_code" and (e.value or e.text) in billed],
                           codes=", ".join(billed), claimed=target.code)

    for res in resolutions:
        issues.add("NC191", [e for e in evidence if e.field == res.field and e.counted], field=res.field,
                   candidates=", ".join(res.candidates), value=res.value, reason=res.reason)

    modifiers: list[Modifier] = []
    if target is not None:
        for rule in fam.modifier_rules:
            if _holds(rule.when, findings):
                modifiers.append(Modifier(modifier=rule.modifier, reason=rule.reason))
        em = fam.em_modifiers.get(target.global_days)
        if em:
            modifiers.append(Modifier(
                modifier=em,
                reason=f"Only if a separately identifiable E/M is billed with {target.code} "
                       f"({target.global_days}-day global period); not applied automatically."))

    errors = any(i.severity == "error" for i in issues.items)
    gaps = any(i.severity in ("error", "warning") for i in issues.items)
    if claimed_code is None:
        verdict = "no_claim" if supported else "no_code"
    elif claimed_code != supported:
        verdict = "not_supported"
    else:
        # The claimed code is the documented one; an error-severity issue (e.g. an ICD-10 code contradicting the
        # etiology) still fails the note, so the verdict must not read as a pass.
        verdict = "needs_correction" if errors else "supported_with_gaps" if gaps else "supported"

    order = {"error": 0, "warning": 1, "info": 2}
    return CheckResult(
        source=source,
        family=family,
        claimed_code=claimed_code,
        claimed_from=claimed_from,
        supported_code=supported,
        supported_reason=supported_reason,
        verdict=verdict,
        findings=findings,
        evidence=evidence,
        resolutions=resolutions,
        requirements=requirements,
        issues=sorted(issues.items, key=lambda i: (order[i.severity], i.rule)),
        modifiers=modifiers,
        warnings=warnings or [],
        sections=sections or [],
    )
