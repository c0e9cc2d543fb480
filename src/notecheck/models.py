"""Pydantic models at notecheck's boundaries: findings, evidence and the check report.

These are the contract a program reads (`--format json`, the Python API); `notecheck schema` prints their JSON Schema.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"

Etiology = Literal["traumatic", "developmental", "congenital", "pathological", "post_arthroplasty", "unknown"]
Approach = Literal["closed", "open", "unknown"]
Anesthesia = Literal["general", "regional", "mac", "moderate_sedation", "local", "none", "unknown"]
AnesthesiaBy = Literal["separate_provider", "surgeon", "unknown"]
Technique = Literal["abduction", "splint", "traction"]
Laterality = Literal["left", "right", "bilateral", "unknown"]
Severity = Literal["error", "warning", "info"]
RequirementStatus = Literal["met", "missing", "conflict", "not_applicable"]
Verdict = Literal["supported", "supported_with_gaps", "needs_correction", "not_supported", "no_claim", "no_code"]


class Evidence(BaseModel):
    """One mention in the note: what was matched, where, and whether it counts as documentation."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(description="Finding the mention bears on, e.g. 'anesthesia'.")
    value: Optional[str] = Field(description="Value the mention supports, e.g. 'general'; null for codes.")
    text: str = Field(description="Exact text; note[start:end] == text.")
    start: int = Field(description="Start character offset into the note as given.")
    end: int = Field(description="End character offset (exclusive).")
    section: Optional[str] = Field(description="Section category the mention is in, or null before any header.")
    rule: str = Field(description="Literal of the target rule that matched.")
    is_negated: bool = False
    is_hypothetical: bool = False
    is_historical: bool = False
    is_family: bool = False
    is_uncertain: bool = False
    modifiers: list[str] = Field(default_factory=list, description="ConText trigger texts that modified it.")
    counted: bool = Field(description="True when the mention counts as documentation of its value.")
    labelled: bool = Field(default=False, description="A code written right after a CPT, charge or billing label.")


class ReductionEvent(BaseModel):
    """One reduction attempt of this encounter, in narrative order, with what belongs to it."""

    index: int = Field(description="1-based, in the order the note tells them")
    start: int = Field(description="Character offset of the event's first mention.")
    end: int = Field(description="Character offset just past the event's last mention.")
    approach: Approach
    anesthesia: Anesthesia = Field(description="Anaesthesia named with this attempt ('unknown' when none is).")
    outcome: Literal["succeeded", "failed", "unknown"]
    deciding: bool = Field(description="The final successful attempt (else the last one): its properties decide.")


class Findings(BaseModel):
    """What the note documents, resolved from the mentions that count."""

    etiology: Etiology = "unknown"
    approach: Approach = "unknown"
    anesthesia: Anesthesia = "unknown"
    anesthesia_by: AnesthesiaBy = "unknown"
    surgeon_role_stated: bool = False
    manipulation: Optional[bool] = None
    technique: list[Technique] = Field(default_factory=list)
    imaging_pre: bool = False
    imaging_post: bool = False
    fluoroscopy: bool = False
    laterality: Laterality = "unknown"
    acetabular_wall_fracture: bool = False
    femoral_head_fracture: bool = False
    femoral_shortening: bool = False
    tenotomy: bool = False
    hip_dislocation: bool = False
    reduction: bool = False
    no_reduction: bool = False
    arthroplasty_performed: bool = False
    cpt_codes: list[str] = Field(default_factory=list)
    icd10_codes: list[str] = Field(default_factory=list)
    events: list[ReductionEvent] = Field(
        default_factory=list,
        description="Reduction attempts of this encounter; the deciding one's anaesthesia wins over failed ones'.")


class Resolution(BaseModel):
    """Why a finding took the value it did when mentions disagreed."""

    field: str
    value: str
    candidates: list[str]
    reason: str


class RequirementResult(BaseModel):
    id: str
    description: str
    status: RequirementStatus
    finding: str
    found: Optional[str] = Field(description="The finding's value as documented.")
    evidence: list[Evidence] = Field(default_factory=list)


class Issue(BaseModel):
    rule: str = Field(description="Stable rule id, e.g. NC111.")
    name: str
    severity: Severity
    message: str
    query: Optional[str] = Field(default=None, description="Compliant, non-leading physician query for a gap.")
    evidence: list[Evidence] = Field(default_factory=list)


class SectionSpan(BaseModel):
    """A section of the note as the sectionizer found it: its category and the header's character offsets."""

    category: str
    title: str
    start: int = Field(description="Start of the header.")
    title_end: int = Field(description="End of the header text.")
    end: int = Field(description="End of the section body.")


class Modifier(BaseModel):
    modifier: str
    reason: str


class CheckResult(BaseModel):
    """The report for one note: verdict, findings with evidence, requirements, issues and modifiers."""

    schema_version: str = SCHEMA_VERSION
    source: str = Field(description="Where the note came from: a path, '-' for stdin, or a caller's id.")
    family: str
    claimed_code: Optional[str]
    claimed_from: Optional[Literal["option", "note"]]
    supported_code: Optional[str]
    supported_reason: str
    verdict: Verdict
    findings: Findings
    evidence: list[Evidence]
    resolutions: list[Resolution]
    requirements: list[RequirementResult]
    issues: list[Issue]
    modifiers: list[Modifier]
    warnings: list[str] = Field(default_factory=list, description="Notes about reading the input.")
    sections: list[SectionSpan] = Field(default_factory=list, description="Sections found in the note.")

    @property
    def has_errors(self) -> bool:
        return any(issue.severity == "error" for issue in self.issues)
