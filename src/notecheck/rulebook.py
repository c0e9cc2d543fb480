"""Load and validate everything in `patterns/`: the domain knowledge lives there as data, not in code.

Each file is checked with pydantic on load, so a broken rule file fails at start-up with a message naming the file
and the field instead of misbehaving on the hundredth note.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Scalar = Union[bool, str, None, list]


class RulebookError(Exception):
    """A file in patterns/ is missing, is not JSON, or breaks its schema."""


class UnknownFamilyError(ValueError):
    """A code family was asked for that patterns/families/ does not define."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- target, context and section rules (medspaCy's own JSON formats, checked a little harder) ---------------------


def _check_regex(pattern: Any) -> Any:
    if isinstance(pattern, str):
        try:
            re.compile(pattern, re.IGNORECASE)  # the flags medspaCy compiles with: its compile is then a cache hit
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_check_regex)]  # a regex field that must compile


class TargetMetadata(_Strict):
    value: Optional[Union[str, bool]] = None
    implies: dict[str, str] = Field(default_factory=dict)
    negated_implies: dict[str, str] = Field(
        default_factory=dict,
        description="facts a negated mention documents ('no closed reduction' -> no manipulation)")
    negated_value: Optional[str] = None
    counts_when_historical: bool = False
    counts_in_any_section: bool = Field(
        default=False, description="states what was or was not done ('no reduction was performed'), so it counts even "
                                   "in a section that does not otherwise document the field (a plan)")
    ignore_negation: bool = False
    from_code: bool = False
    yields_to: list[str] = Field(
        default_factory=list,
        description="values of the same field that outrank this mention when a decisive mention states them ('cerebral "
                    "palsy' is the patient's condition; 'traumatic fracture-dislocation' says how this hip dislocated)")
    decisive: bool = Field(default=False, description="states the value of this hip outright (see yields_to)")
    fallback: bool = Field(default=False, description="a hint, not a statement: counts only when no other mention "
                                                      "names the field (an infant's age suggests a developmental hip)")


class _PatternRule(_Strict):
    """medspaCy rule fields shared by target, context and section rules; a regex pattern must compile."""

    literal: str
    category: str
    pattern: Optional[Union[str, list[dict[str, Any]]]] = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, v: Any) -> Any:
        return _check_regex(v)


class TargetRuleSpec(_PatternRule):
    attributes: Optional[dict[str, Any]] = None
    metadata: TargetMetadata = Field(default_factory=TargetMetadata)


class ContextRuleSpec(_PatternRule):
    direction: Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]
    max_scope: Optional[int] = None
    allowed_types: Optional[list[str]] = None
    excluded_types: Optional[list[str]] = None
    terminated_by: Optional[list[str]] = Field(default=None, description="cue categories that end this cue's scope "
                                               "(medspaCy's own option): a history cue stops at a HERE marker ('No "
                                               "manipulation done at our ER (hip already reduced at the referring "
                                               "hospital)')")
    metadata: Optional[dict[str, Any]] = None
    backward_scope: Optional[int] = Field(default=None, ge=1, description="a bidirectional cue's reach behind it, "
                                          "when shorter than its max_scope ahead")
    modifies_targets_within: bool = Field(default=False, description="the cue's own words hold the target it "
                                          "qualifies ('if closed reduction fails'): a target inside the cue takes "
                                          "its category too (medspaCy never pairs a cue with a target it overlaps)")


class SectionRuleSpec(_PatternRule):
    """A section header rule. medspaCy's parent sections are not offered: notecheck's matcher does not build them."""

    metadata: Optional[dict[str, Any]] = None
    max_scope: Optional[int] = None


class TargetRulesFile(_Strict):
    target_rules: list[TargetRuleSpec]


class ContextRulesFile(_Strict):
    context_rules: list[ContextRuleSpec]

    @field_validator("context_rules")
    @classmethod
    def _one_rule_per_literal(cls, v: list[ContextRuleSpec]) -> list[ContextRuleSpec]:
        """Two rules with one literal and category shadow each other (the first match wins): a data bug."""
        seen: set[tuple[str, str]] = set()
        for rule in v:
            key = (rule.literal, rule.category)
            if key in seen:
                raise ValueError(f"two rules share literal {rule.literal!r} and category {rule.category}")
            seen.add(key)
        return v


class SectionRulesFile(_Strict):
    section_rules: list[SectionRuleSpec]


# --- findings resolution policy ---------------------------------------------------------------------------------


class FieldPolicy(_Strict):
    kind: Literal["ranked", "set", "side"]
    rank: list[str] = Field(default_factory=list)
    prefer_sections: list[list[Optional[str]]] = Field(
        default_factory=list, description="tiers of sections, most trusted first; the first tier with mentions decides")
    fallback_sections: list[str] = Field(
        default_factory=list, description="sections whose mentions count only when nothing else does (billing lines)")
    reason: str = ""


class ImagingPolicy(_Strict):
    """How imaging mentions are placed before or after the reduction when no ConText cue says so."""

    pre_sections: list[str]
    post_sections: list[str] = Field(default_factory=list)
    event_fields: list[str]
    event_sections: list[list[Optional[str]]] = Field(
        description="groups of sections, in priority order, where the first reduction mention marks the event")
    any_section_event: bool = Field(
        default=False, description="when no listed section holds a reduction mention, the first one anywhere marks it")
    report_pre: Optional[Regex] = Field(default=None, description="regex over a film's own report, from the film to "
                                        "the end of its line or the next film ('Rö Becken (Schockraum, 20:52): head "
                                        "dislocated'): a film that shows the hip out was taken before the reduction")
    report_post: Optional[Regex] = Field(default=None, description="regex over a film's own report that shows the hip "
                                         "back in ('concentric', 'reduced'): taken after the reduction")
    both_values: list[str] = Field(
        default_factory=list, description="imaging done as part of the reduction itself (an arthrogram shows the hip "
                                          "before and after): counts as both before and after")
    earlier_visit: str = Field(
        default="", description="regex over a historical cue on an imaging mention that places the film at an "
                                "earlier visit ('last week', 'in August', '3 months ago'): it does not count")
    encounter_date: Optional[Regex] = Field(
        default=None, description="regex for a header label followed by the encounter's date ('Date of service:', "
                                  "'Hospitalisation:', 'Clinic date'); group 'date' the date. A film whose sentence "
                                  "carries a full date before the earliest such date is from an earlier visit")
    encounter_date_reach: int = Field(default=900, ge=1, description="characters from the top searched for it")
    work_up_sections: list[str] = Field(default_factory=list, description="sections whose films are an operation's "
                                        "own work-up, whatever their date")
    work_up_cue: Optional[Regex] = Field(default=None, description="regex over a PRE_REDUCTION cue that labels a film "
                                         "as this reduction's work-up ('pre-op', 'prior to'), whatever its date")
    same_day: Optional[Regex] = Field(default=None, description="regex for words that place a film at this encounter "
                                      "('today', 'on arrival'); between a film and a date they say the date is not "
                                      "the film's")
    earlier_days: int = Field(default=3, ge=1, description="days before the encounter's date from which a dated film "
                                                           "is an earlier visit's, not this episode's work-up")
    no_act_fields: list[str] = Field(
        default_factory=list, description="fields whose counted mention says this encounter's act was not a reduction "
                                          "(found already reduced, an arthroplasty), unless a manipulation is stated")
    act_fields: list[str] = Field(
        default_factory=list, description="fields of a treatment act (a reduction, a device applied); with no counted "
                                          "act of this encounter, no imaging is before or after one")


class IcdLaterality(_Strict):
    pattern: str
    value: Literal["left", "right", "bilateral"]


class OptionListPolicy(_Strict):
    """Template lines that list every option ("general / spinal / MAC / local") document none of them."""

    min_values: int = Field(ge=2)
    fields: list[str]
    selected_marks: str

    @field_validator("selected_marks")
    @classmethod
    def _marks_compile(cls, v: str) -> str:
        return _check_regex(v)


class BlockRule(_Strict):
    """A label or marker that puts the block after it in another episode of care than this encounter's treatment:
    a past-history list, an options or consent paragraph, text copied from an earlier note, another hospital's care,
    teaching text. The block runs to the first blank line, the next labelled line or section header, or `until`."""

    id: str
    episode: Literal["prior", "later", "planned", "elsewhere", "generic", "spoken", "negated", "considered",
                     "claim", "other_patient"]
    pattern: str = Field(description="regex matched at a line start (after any bullet or number)")
    until: Optional[str] = Field(default=None, description="regex that closes the block (an end-of-copy marker)")
    quoted: bool = Field(default=False, description="also mid-line: the cue followed by a quotation ('History "
                         "carried forward from the 11/25 visit: \"...\"') puts the quotation in the episode")
    inline_sentence: bool = Field(default=False, description="also mid-line: the block runs from the cue to the end "
                                  "of its sentence ('... R hip normal. Plan from clinic (Dr F): traction, then closed "
                                  "reduction under GA.'), whatever cues inside it would end a ConText scope")
    line_start: bool = Field(default=True, description="also read at line starts, where the block runs to the blank "
                             "line or next label; false for a sentence's cue that is never a heading ('Risks ... "
                             "discussed, including ...'), read only mid-line by `inline_sentence`")
    spans_paragraphs: bool = Field(default=False, description="a cue alone on its line heads a block that runs past "
                                   "blank lines to the next heading line or section header ('Discussion' over "
                                   "several numbered paragraphs)")
    own_line: bool = Field(default=False, description="a cue with its own text on its line covers that line only "
                           "('Differential: septic hip, teratologic'); alone on its line it still heads the list "
                           "below")
    inline_anchor: Optional[str] = Field(default=None, description="regex for a word every cue of `pattern` contains "
                                         "('option|risk|consent|plan'): the mid-line searches (quoted, "
                                         "inline_sentence) then run only near its matches, so a pattern that may "
                                         "begin at any word stays cheap")
    description: str = ""

    @field_validator("pattern", "until", "inline_anchor")
    @classmethod
    def _compiles(cls, v: Optional[str]) -> Optional[str]:
        return _check_regex(v)

    @model_validator(mode="after")
    def _read_somewhere(self) -> "BlockRule":
        if not self.line_start and not self.inline_sentence and not self.quoted:
            raise ValueError(f"block rule {self.id}: a rule not read at line starts needs inline_sentence or quoted")
        return self

    @model_validator(mode="after")
    def _anchor_needs_inline(self) -> "BlockRule":
        if self.inline_anchor is not None and not (self.inline_sentence or self.quoted):
            raise ValueError(f"block rule {self.id}: inline_anchor only narrows the mid-line searches of a quoted "
                             "or inline_sentence rule")
        return self


class ChronologyPolicy(_Strict):
    """A chronology of dated entries (a reviewer's summary of the records, a dated inpatient course): the entries dated
    before the encounter under review are earlier episodes, and those well after it later ones, whatever they say."""

    entry: str = Field(description="regex for a line that opens a dated entry; group 'date' the entry's full date")
    index_marker: str = Field(description="regex, in an entry's first line, naming it the encounter under review "
                                          "('the encounter at issue', 'index admission')")
    service_date: str = Field(description="regex for the header's date of service when no entry is marked; group "
                                          "'date' where the date begins")
    service_date_reach: int = Field(ge=0, description="characters from the note's start to look for it")
    earlier_days: int = Field(ge=1, description="an entry this many days or more before the encounter is earlier")
    later_days: Optional[int] = Field(default=None, ge=1, description="an entry this many days or more after the "
                                      "encounter is a later episode (a follow-up, a separate admission)")

    @field_validator("entry", "index_marker", "service_date")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)

    @field_validator("entry", "service_date")
    @classmethod
    def _names_the_date(cls, v: str) -> str:
        if "date" not in re.compile(v, re.IGNORECASE).groupindex:
            raise ValueError("needs a group named 'date' where the date begins")
        return v


class PatientListPolicy(_Strict):
    """A document about several patients (a night handover, a theatre day list, a morning report) that names the one
    the question is about: every other patient's item is about someone else."""

    item: Regex = Field(description="regex (multiline) for the first line of a patient's item: a list marker and an "
                        "identity (a surname in capitals, an age and sex, a record number); optional group 'num' the "
                        "item's number or letter")
    index_marker: Regex = Field(description="regex, on an item's first line, marking it as the patient asked about "
                                "('<<< CODING QUERY', '** coding flag **')")
    header_cue: Regex = Field(description="regex for a line above the first item that names the patient asked "
                              "about ('Coding review requested for UR 7730415 (bed 22, MORCOMBE) - item 2 only')")
    header_number: Regex = Field(description="regex, in such a line, for the item's number: group 'num'")
    surname: Regex = Field(description="regex for a surname in capitals, in such a line and on an item's first line")
    not_names: list[str] = Field(default_factory=list, description="words in capitals that are never a surname "
                                 "('CODING', 'ONLY', 'BED')")
    until: Regex = Field(description="regex (multiline) for a line that ends the list (a divider): the last item runs "
                         "to it")


class BlockPolicy(_Strict):
    """Block- and section-level context: ConText cues reach a few words, these reach a whole labelled block."""

    label_line: str = Field(description="regex for a line that starts a new labelled block ('Procedure:')")
    heading_line: Optional[Regex] = Field(
        default=None, description="regex (multiline) for a heading on its own line ('Learning points'): where a "
                                  "block that spans paragraphs ends")
    rules: list[BlockRule]
    present_item: Optional[Regex] = Field(
        default=None, description="regex (multiline) for a list item that speaks of now ('- Now: admitted for "
                                  "traction'): it ends a heading's planned list")
    chronology: Optional[ChronologyPolicy] = None
    patients: Optional[PatientListPolicy] = None
    keeps: dict[str, list[str]] = Field(
        default_factory=dict, description="episode -> fields whose mentions still count inside such a block "
                                          "(a prosthesis named in the past history still decides the etiology)")

    @field_validator("label_line")
    @classmethod
    def _label_compiles(cls, v: str) -> str:
        return _check_regex(v)


class FormPolicy(_Strict):
    """A form answer after a label ('Converted to open: ( ) yes (x) no', 'Closed reduction: No') decides the label."""

    option: str = Field(description="regex for one option: group 'mark' the box, group 'word' its text")
    checked: str = Field(description="regex a checked box's mark matches")
    negative: str = Field(description="regex for an answer that says no (no, none, not needed)")
    affirmative: str = Field(description="regex for an answer that says yes (yes, done)")
    plain_answer: str = Field(description="regex for 'label: answer' with no boxes; group 'word' the answer")
    blank_answer: str = Field(description="regex for a template field left unfilled ('Open reduction: ***'): the "
                                          "label documents nothing; group 'word' the placeholder")
    max_gap: int = Field(ge=0, description="characters allowed between the label and its first option")
    grid_header: Optional[Regex] = Field(
        default=None, description="regex (multiline) for a grid's header line of column labels ('   Yes   No'): a row "
                                  "of bare boxes below it answers with the label of the checked box's column")
    grid_reach: int = Field(default=2000, ge=1, description="characters above a row searched for its grid's header")
    side_option: Optional[Regex] = Field(
        default=None, description="regex for an option that names a side ('[x] Rt  [ ] Lt'): a label whose options "
                                  "are all sides was done when a side is checked, and not done when none is")
    table_done_column: Optional[Regex] = Field(
        default=None, description="regex for a pipe table's header cell naming whether a row was done ('Performed', "
                                  "'Status'): a row's cell in that column answers for the findings in the row")
    option_after: Optional[str] = Field(
        default=None, description="regex for one option written word first, box after ('Yes [ ]   No [x]'): group "
                                  "'word' its text, group 'mark' the box")

    @field_validator("option", "checked", "negative", "affirmative", "plain_answer", "blank_answer", "option_after")
    @classmethod
    def _compiles(cls, v: Optional[str]) -> Optional[str]:
        return _check_regex(v)


class Promotion(_Strict):
    """A resolved value that means something more specific when another finding is stated beside it."""

    field: str
    value: str
    to: str
    near_field: str
    near_value: str
    window: int = Field(ge=1, description="characters between the two mentions, within one paragraph")
    unless_value: Optional[str] = Field(default=None, description="a counted mention of `field` with this value "
                                        "just after the near finding, in its paragraph ('Anesthesia resident arrived; "
                                        "... No anesthesia services provided'), says that provider gave nothing")
    reason: str


class Consequence(_Strict):
    """A finding left unstated that the resolved findings settle: an open reduction of a dislocated hip is a reduction
    the surgeon did, so the manoeuvre is documented even where no manoeuvre word is written."""

    when: dict[str, str] = Field(description="resolved field -> value that must all hold")
    field: str
    value: str
    needs: str = Field(description="boolean finding that must have a counted mention (the act itself)")
    unless: list[str] = Field(default_factory=list, description="findings whose counted mention stops it ('the hip "
                                                              "remained reduced throughout')")
    reason: str


class FollowUpPolicy(_Strict):
    """A note whose heading says it is a follow-up visit documents an earlier treatment: its reduction, anaesthesia,
    device and imaging mentions are that treatment's, unless their line says the act happened at this visit."""

    heading: str = Field(description="regex searched in the note's first head_chars characters")
    heading_words: list[str] = Field(description="lower-case words one of which any heading match contains (a cheap "
                                                 "test before the regex)")
    head_chars: int = Field(ge=1)
    today: str = Field(description="regex for a line that places an act at this visit ('today', 're-reduced')")
    no_act: str = Field(description="regex, searched in the whole note, for a statement that nothing was done at this "
                                    "visit ('no procedure today'); the note is then read as a follow-up visit")
    fields: list[str]
    negation_today_fields: list[str] = Field(description="fields whose negated mention places its line at this visit "
                                                         "('Reduction manoeuvre: [ ] yes [x] no')")
    act_parts: str = Field(description="regex (multiline) for a later part of the same document that records the act "
                                       "('Intra-op summary', 'OPERATIVE NOTE'): a pre-op assessment followed by one is "
                                       "not a visit without an act")
    one_hip: Optional[Regex] = Field(default=None, description="regex for a hip named by its side ('R hip'): in an "
                                     "operation's record, a no-act statement whose clause names one hip ('R hip - "
                                     "surveillance, no intervention today') speaks of that hip, not of the operation")
    act_sections: list[str] = Field(default_factory=list, description="sections that record this visit's own "
                                    "procedure: when only a no-act statement ('no reduction manoeuvre today') made "
                                    "the note a follow-up, an act of `act_fields` such a section records in that "
                                    "statement's own paragraph ('Procedure: Pavlik harness fitted ... No reduction "
                                    "manoeuvre performed today') was done at this visit, with what it implies")
    act_fields: list[str] = Field(default_factory=list, description="fields of acts other than the one a no-act "
                                  "statement denies (a device fitted), for `act_sections`")

    @field_validator("heading", "today", "no_act", "act_parts")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)


class EventPolicy(_Strict):
    """How reduction attempts are told apart and which one decides (the encounter model)."""

    anchor_fields: list[str] = Field(description="fields whose counted mentions anchor a reduction attempt")
    gap: int = Field(ge=1, description="characters between anchors beyond which a new attempt starts")
    failed: str = Field(description="regex for an attempt that did not reduce the hip")
    succeeded: str = Field(description="regex for an attempt that reduced it")
    before: int = Field(ge=0, description="characters before an attempt where its anaesthesia may be named")
    after: int = Field(ge=0, description="characters after an attempt where its anaesthesia may be named")
    reason: str

    @field_validator("failed", "succeeded")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)


class DatedActsPolicy(_Strict):
    """An act whose own clause carries a date well before the encounter's is an earlier episode's ('#1 06/20/24 -
    reduced in OR under general', 'arthrotomy + washout R hip 02/05/25'), whether or not a word says so. The
    encounter's date is the header's (imaging.encounter_date)."""

    fields: list[str] = Field(description="fields whose mentions are acts of an episode of care")
    reach: int = Field(ge=1, description="characters between an act and its date, within one sentence")
    earlier_days: int = Field(ge=1, description="days before the encounter's date from which a dated act is an "
                                                "earlier episode's")
    later_days: Optional[int] = Field(default=None, ge=1, description="days after the encounter's last header date "
                                      "from which a dated act is a later episode's (a review of one operation "
                                      "that recounts the revision weeks later)")


class WorkingDiagnosis(_Strict):
    """A queried diagnosis ('?anterior hip dislocation') is the working diagnosis of a hip that was then reduced: when
    nothing confirms or replaces it, it names the condition treated."""

    fields: list[str] = Field(description="fields that, when no mention counts, take the mentions discounted only "
                                          "for being queried")
    acts: list[str] = Field(description="fields whose counted, stated (not implied) mention shows the hip was "
                                        "reduced")


class ArrivedReducedPolicy(_Strict):
    """A hip that arrived reduced from elsewhere ('already reduced at the referring site', 'reduced at the OSH') in a
    note whose last word on the manoeuvre is that none was done here: the reduction it recounts was the other site's,
    so the acts named before that statement are not this encounter's."""

    states: list[str] = Field(description="fields whose counted mention says the hip arrived reduced")
    elsewhere_fields: list[str] = Field(
        description="act fields whose mention, discounted as past with an elsewhere cue, says so too")
    elsewhere_cue: Regex = Field(description="regex for a past cue that places the act at another site ('at OSH', "
                                             "'at the referring hospital', 'before transfer')")
    past_cue: Regex = Field(description="regex for a past cue that places the act in an earlier episode ('in 1998', "
                                        "'previous', '2 years ago'): that act says nothing about this arrival")
    field: str = Field(description="the act field whose last plain statement decides")
    stated: Regex = Field(description="regex just after the 'not done' mention that makes it a statement about the "
                                      "encounter ('performed', 'needed'), not an attempt's outcome ('No reduction.')")
    acts: list[str] = Field(description="act fields whose counted mentions before that statement are discounted")
    further: Regex = Field(description="regex in or just before the statement ('no further manipulation') that "
                                       "implies a manoeuvre was done here after all")
    here: Optional[Regex] = Field(default=None, description="regex after the statement that places it at this site "
                                  "('No further manipulation was required or performed here'): then 'further' "
                                  "contrasts with the other site's reduction and implies none here")
    reason: str


class StructuredStatusPolicy(_Strict):
    """A machine-exported record ('{"resourceType": "Procedure", "status": "not-done", "code": {"text": "Open
    reduction ..."}}') whose status says it was not done or was entered in error: what it names did not happen."""

    status: Regex = Field(description="regex for the status entry inside a braced record")
    reach: int = Field(ge=1, description="farthest the record's braces are looked for on either side, in characters")
    keeps: list[str] = Field(default_factory=list, description="fields whose mentions in such a record still count "
                             "(the side, the etiology: facts about the patient, not the act)")


class RetractedQuotePolicy(_Strict):
    """'"for closed reduction in OR under GA" in the impression was carried over and is no longer accurate': the
    quoted words, wherever else the note carries them, are withdrawn."""

    said: Regex = Field(description="regex, right after the closing quote, for the words that withdraw the quotation")
    unsaid: Optional[Regex] = Field(default=None, description="regex ending right before the opening quote, for "
                                    "words that withdraw what follows ('Please disregard \"general endotracheal\"')")
    min_chars: int = Field(ge=1, description="shortest quotation searched for elsewhere (a one-word quote is "
                                             "too common to find its source)")


class CodeDescriptorPolicy(_Strict):
    """'CPT 27254 Open treatment ... with acetabular wall and femoral head fracture': the words after a billed code
    describe the code, not the patient; the findings they name are the claim's, not documentation."""

    fields: list[str] = Field(description="fields whose mentions in a code's descriptor do not count")
    yielding_fields: list[str] = Field(default_factory=list, description="fields whose mentions in a code's "
                                       "descriptor count only when the note states the field nowhere else "
                                       "('27258 \"... developmental - pt with DDH\"' beside a trampoline injury)")
    continuation: Regex = Field(description="regex (at a line start) for a wrapped descriptor's next line")


class DeviceOnlyPolicy(_Strict):
    """What a device-only encounter documents when the note is silent: a harness, brace, splint or traction applied
    with no reduction act and no anaesthesia named is treatment without anaesthesia (manipulation stays unstated)."""

    anesthesia: Literal["none"]
    reason: str


class CorrectionPolicy(_Strict):
    """An amendment that corrects the note ('Correction: the reduction was under general, not sedation') wins over
    what the note said before it, for the fields it names."""

    cue: str = Field(description="regex for a correction cue; its reach runs to a blank line or `reach` characters")
    reach: int = Field(ge=1)
    fields: list[str] = Field(description="fields whose earlier counted mentions yield to a corrected one")

    @field_validator("cue")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)


class DictationCommand(_Strict):
    """A spoken punctuation command left in a dictated note ('right hip normal period we talked...'): the rules read
    the punctuation it stands for, in a same-length copy, so sentences and cue scopes end where the speaker meant."""

    pattern: Regex = Field(description="regex (case-insensitive) for the spoken command, context included")
    mark: str = Field(min_length=1, max_length=2, description="what the rules read at the start of the match; the "
                                                               "rest of the match is read as spaces")
    not_after: Optional[Regex] = Field(default=None, description="regex (case-insensitive) that, matching the words "
                                                               "just before, makes it a word ('the post-op period')")


class SoundAlike(_Strict):
    """Front-end speech recognition writes a term as the everyday words it sounds like ('spike a cast' for a spica
    cast, 'coach her long and back' for Kocher-Langenbeck): the rules read the term, in the same-length copy."""

    heard: Regex = Field(description="regex (case-insensitive) for the words as recognised, context included")
    means: str = Field(min_length=1, max_length=40, description="the term the rules read instead, padded with spaces; "
                                                                "left as heard when the match is shorter than the term")


class SpokenDigits(_Strict):
    """Dictation software writes a code as the words spoken ('c p t two seven two five four'): a run of digit words
    is read as its digits (a claimed code, a date), in the same-length copy."""

    words: dict[str, str] = Field(min_length=10, description="each spoken digit word and the digit it names")
    min_run: int = Field(ge=2, description="how many digit words in a row make a number (fewer stay words: 'one "
                                           "attempt', 'two weeks')")

    @field_validator("words")
    @classmethod
    def _digits(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(w for w, d in v.items() if not (len(d) == 1 and d.isdigit()) or not w.isalpha())
        if bad:
            raise ValueError(f"spoken digit words must be letters and name one digit: {bad}")
        return v


class ValueStatement(_Strict):
    """A value of a ranked finding that the note's last plain statement of it decides, and the rules whose negation
    states it was not done ('open reduction was not required' does; 'ORIF not performed' or 'no capsulorrhaphy' names
    a step inside an open operation, not the approach)."""

    field: str
    value: str
    negated_rules: str = Field(description="regex over rule names: a plain negation of a mention of one of these "
                                           "rules says the value was not done")
    skip_sections: list[str] = Field(default_factory=list, description="sections whose negations state nothing "
                                                                       "about this encounter's act (a coder's review)")


class FieldValue(_Strict):
    """A finding field and, optionally, one of its values (any value when left out)."""

    field: str
    value: Optional[str] = None


class TitleVetoPolicy(_Strict):
    """A title is the booking: 'Operation: Open reduction +/- revision' above a body that says 'Open reduction NOT
    required'. An explicit negation of a value in the body vetoes the same value in the title sections."""

    fields: list[str] = Field(min_length=1, description="findings whose title mentions a body negation can veto")
    title_sections: list[str] = Field(min_length=1, description="section categories that name the procedure as "
                                                                "booked or billed (procedure lines, diagnoses)")
    first_line_is_title: bool = Field(default=False, description="the note's first line, before any section "
                                                                 "header, is a title too")
    title_line: Optional[Regex] = Field(default=None, description="regex matched at a line start: a labelled title "
                                        "line wherever it sits ('Op title (theatre system): ...', 'Title of "
                                        "operation: ...')")
    none_done: list[FieldValue] = Field(default_factory=list, description="counted mentions that say no such act "
                                        "was done in this encounter ('hip found reduced on arrival', 'no reduction "
                                        "manoeuvre'): one after the title vetoes every title mention of none_vetoes")
    none_vetoes: list[str] = Field(default_factory=list, description="title findings a none_done mention vetoes")
    body_decides: list[str] = Field(default_factory=list, description="single-valued findings the body decides: "
                                    "'... UNDER GA' on a short first line over a body whose only anaesthesia is "
                                    "ketamine sedation names the booking, so a title value the body never names is "
                                    "dropped")
    title_max_chars: int = Field(default=160, ge=1, description="a first line longer than this is prose, not a "
                                 "title, for body_decides")
    title_caps_lines: int = Field(default=0, ge=0, description="a line of three or more words all in capitals among "
                                  "the note's first this many lines is a title ('RÉDUCTION SOUS AG D'UNE LUXATION "
                                  "...' under the letterhead)")
    title_reach: Optional[int] = Field(default=None, ge=1, description="characters from a title section's header "
                                       "within which it names the procedure; past them the section narrates it "
                                       "('Procedure:' over the whole account) and is body")
    negation_ignore_sections: list[str] = Field(default_factory=list, description="sections whose negations speak "
                                                "of the future ('Plan: no active abduction'), not of what was done")


class OtherSitePolicy(_Strict):
    """'R tibial plateau fx, ORIF 08/09' or 'distal radius #, MUA + POP': an act whose own clause names another bone
    and not the hip is that bone's treatment."""

    fields: list[str]
    site: Regex = Field(description="regex for a body site other than the hip")
    hip: Regex = Field(description="regex for the hip and its parts; a clause naming one keeps the act")
    reach: int = Field(ge=1, description="characters either side of the mention, within its clause")
    worded: dict[str, Regex] = Field(
        default_factory=dict, description="field -> regex its mention's own words must match to be another site's "
                                          "('C5-6 fracture-dislocation' names how the spine, not the hip, was hurt; "
                                          "a fall is the patient's whatever bone is named beside it)")


class DefinedAbbreviationPolicy(_Strict):
    """'Castleford District Hospital (CDH)': a note that spells out an abbreviation gives it that meaning, so the same
    letters elsewhere in it are not our vocabulary's reading (congenital dislocation of the hip)."""

    definition: Regex = Field(description="regex for a spelled-out name and its abbreviation in brackets; group "
                                          "'words' the name, group 'abbr' the letters")
    minor_words: list[str] = Field(default_factory=list, description="words left out of the initials ('of', 'the')")
    reason: str


class LinkedPolicy(_Strict):
    """'Sedation for the reduction given by me: propofol...' names the anaesthesia of the act itself; an intubation
    in the trauma bay or an ICU airway elsewhere in the note does not outrank it."""

    field: str
    cue: Regex = Field(description="regex for the words that tie a value to the act ('anaesthesia for the reduction')")
    reach: int = Field(ge=1, description="characters after the cue, on its line, where the tied values are named")
    reason: str


class ClaimsYieldPolicy(_Strict):
    """A title or procedure line names what was booked or billed; when the body states plainly that no reduction was
    done and describes no act of its own, the title's claim does not count."""

    statement_field: str = Field(description="field whose counted negative mention is the body's statement")
    bare: Regex = Field(description="regex (full match) for a statement too bare to speak for the encounter "
                                    "('no reduction' after an attempt is the attempt's outcome)")
    claim_line: Regex = Field(description="regex matched at the start of a mention's line up to the mention: a title "
                                          "or procedure label; a line without lower-case letters is a title too")
    fields: list[str] = Field(description="fields whose positive mentions are acts (outside claim lines) or claims")
    max_line: int = Field(default=140, ge=1, description="longest claim line: a longer one narrates the act")
    claim_sections: list[str] = Field(default_factory=list, description="sections whose every line names what was "
                                      "billed ('Procedures / billing: CPT 27252 closed reduction'), not an act")
    statement_sections: list[str] = Field(default_factory=list, description="sections not counted for the statement "
                                          "field whose plain 'no further reduction required' still speaks for this "
                                          "encounter (a Plan list)")
    reason: str


class FindingsPolicy(_Strict):
    """patterns/findings.json: how mentions resolve into findings."""

    ignore_sections: list[str] = Field(default_factory=list)
    claim_only_sections: list[str] = Field(
        default_factory=list, description="sections a coder or reviewer wrote, not the clinician: only the codes "
                                          "named there count (they are the claim); their findings are opinions")
    field_ignore_sections: dict[str, list[str]] = Field(default_factory=dict)
    option_list: Optional[OptionListPolicy] = None
    blocks: Optional[BlockPolicy] = None
    overridden_by: dict[str, list[str]] = Field(
        default_factory=dict, description="field -> fields whose counted mention over the same words means something "
                                          "more specific ('remains reduced' is a state, 'trial reduction' an "
                                          "arthroplasty step): the overlapped mention does not count")
    promotions: list[Promotion] = Field(default_factory=list)
    consequences: list[Consequence] = Field(default_factory=list)
    follow_up: Optional[FollowUpPolicy] = None
    corrections: Optional[CorrectionPolicy] = None
    claims_yield: Optional[ClaimsYieldPolicy] = None
    code_descriptors: Optional[CodeDescriptorPolicy] = None
    retracted_quotes: Optional[RetractedQuotePolicy] = None
    structured_status: Optional[StructuredStatusPolicy] = None
    other_site: Optional[OtherSitePolicy] = None
    defined_abbreviations: Optional[DefinedAbbreviationPolicy] = None
    title_vetoes: Optional[TitleVetoPolicy] = None
    linked: Optional[LinkedPolicy] = None
    reduced_means_dislocated: list[str] = Field(
        default_factory=list, description="etiologies for which a documented reduction of the hip shows it was "
                                          "dislocated (a dysplastic or prosthetic hip); a traumatic reduction may be "
                                          "another joint's")
    reduction_shows_dislocation: list[str] = Field(
        default_factory=list, description="etiologies for which a stated open reduction ('head reduced easily' once "
                                          "the capsule was opened) shows the hip was dislocated, as a manoeuvre does; "
                                          "a closed 'hip reduced' or a prosthetic hip 'reduced' in a brace may only be "
                                          "its state")
    dictation: list[DictationCommand] = Field(default_factory=list)
    sound_alikes: list[SoundAlike] = Field(default_factory=list)
    spoken_digits: Optional[SpokenDigits] = None
    struck_out: list[Regex] = Field(
        default_factory=list, description="regexes for text a transcription marks as struck out "
                                          "('[crossed out: ...]'): the rules read it as spaces, so nothing in it "
                                          "counts")
    inline_sections_end_at_line_end: list[str] = Field(
        default_factory=list, description="section categories whose header, with its words on its own line "
                                          "('FHx: mum had a clicky hip'), ends with that line")
    inline_sections_end_at_blank_line: list[str] = Field(
        default_factory=list, description="section categories whose header, with its words on its own line "
                                          "('Billing: 27259', 'FHx: ...'), ends at the next blank line")
    entry_start: str = Field(
        default="", description="regex (multiline) for a line that starts a new dated entry of a multi-day document; "
                                "it ends the section before it")
    events: Optional[EventPolicy] = None
    dated_acts: Optional[DatedActsPolicy] = None
    treated_side_acts: list[str] = Field(
        default_factory=list, description="fields whose mentions mark the treated side")
    treated_side_reach: int = Field(
        default=60, ge=1, description="characters between a side and its act, within one clause")
    side_named_after: Optional[Regex] = Field(
        default=None, description="regex matched right after a side-specific finding ('Hip-TEP LEFT', 'THR (right)'): "
                                  "the side it names is the finding's; group 'left' or 'right' says which")
    normal_side: Optional[Regex] = Field(
        default=None, description="regex matched right after a side: that side is examined and normal ('R hip NAD', "
                                  "'L hip: normal'), so it names the other hip, not the affected one")
    bilateral_scope_before: Optional[Regex] = Field(
        default=None, description="regex searched in the same line just before a 'both hips' mention ('EUA both "
                                  "hips', 'US both hips'): the mention names what was examined or imaged, not the "
                                  "affected side")
    bilateral_scope_after: Optional[Regex] = Field(
        default=None, description="regex matched right after a 'both hips' mention ('both hips examined', 'bilateral "
                                  "hip spica'): the mention names what was examined or covered, not the affected side")
    bilateral_scope_before_reach: int = Field(
        default=40, ge=1, description="characters before a 'both hips' mention searched by bilateral_scope_before")
    device_only: Optional[DeviceOnlyPolicy] = None
    no_event: list[NoEventRule] = Field(
        default_factory=list, description="encounters with no reduction of their own (a revision, a hip that stayed "
                                          "reduced): the reduction's properties are then not documented")
    treated_fallback: dict[str, list[str]] = Field(
        default_factory=dict, description="field -> act fields: when the note documents one of these acts today, a "
                                          "mention of the field discounted only as past still stands (the hip being "
                                          "reduced today was dislocated, even if a date sits beside the word)")
    treated_fallback_skip_sections: list[str] = Field(
        default_factory=list, description="sections whose act mentions do not show treatment (a billing line's code "
                                          "descriptor)")
    treated_fallback_keep: str = Field(
        default=r".", description="regex for a past-tense cue that keeps such a mention in the past even so (a past-"
                                  "history heading, 'previous', 'years ago'); dates, 'sequela of' or 'at the outside "
                                  "hospital' do not")
    historical_fallback: list[str] = Field(
        default_factory=list, description="fields that, when no mention counts, take the mentions discounted only for "
                                          "being in the past: a DDH diagnosed weeks ago is still the hip's condition")
    working_diagnosis_fallback: Optional[WorkingDiagnosis] = None
    arrived_reduced: Optional[ArrivedReducedPolicy] = None
    planned_state_fallback: dict[str, list[str]] = Field(
        default_factory=dict, description="field -> values that, when no mention of the field counts, a mention "
                                          "discounted only for a plan cue still gives: 'planned treatment of a luxated "
                                          "hip (DDH)' plans the treatment, not the condition; a planned prosthesis is "
                                          "not one in place, so that value is left out")
    last_statement_wins: list[str] = Field(
        default_factory=list, description="boolean findings decided by the note's last statement of them: a title or "
                                          "booking that names a step the body later says was not done does not count")
    last_statement_wins_values: list[ValueStatement] = Field(
        default_factory=list, description="values of ranked findings decided by the note's last plain statement of "
                                          "them: a case-log line or a resident's reasoning that names an open "
                                          "reduction, before an operative report saying open reduction was not "
                                          "required, names what was booked or believed, not what was done")
    forms: Optional[FormPolicy] = None
    code_label_pattern: str = Field(
        description="regex for the text just before a CPT code that makes it a stated claim (CPT:, Charges:)")
    side_specific: dict[str, list[str]] = Field(
        default_factory=dict,
        description="field -> values that only count when on the treated side (a THA on the other hip)")
    fields: dict[str, FieldPolicy]
    booleans: list[str]
    imaging: ImagingPolicy
    icd10_laterality: list[IcdLaterality]

    def referenced_fields(self) -> list[str]:
        """Every finding name the policy refers to, for the load-time check that each one exists."""
        fu, ev, bl = self.follow_up, self.events, self.blocks
        return [*self.fields, *self.field_ignore_sections, *self.side_specific,
                *(f for fs in (bl.keeps.values() if bl else ()) for f in fs),
                *self.last_statement_wins, *(fv.field for fv in self.last_statement_wins_values),
                *self.historical_fallback, *self.planned_state_fallback,
                *(self.working_diagnosis_fallback.fields if self.working_diagnosis_fallback else ()),
                *(self.working_diagnosis_fallback.acts if self.working_diagnosis_fallback else ()),
                *self.treated_side_acts,
                *((*self.arrived_reduced.states, *self.arrived_reduced.elsewhere_fields, self.arrived_reduced.field,
                   *self.arrived_reduced.acts) if self.arrived_reduced else ()),
                *self.overridden_by, *(f for fs in self.overridden_by.values() for f in fs),
                *self.treated_fallback, *(f for fs in self.treated_fallback.values() for f in fs),
                *(p.field for p in self.promotions), *(p.near_field for p in self.promotions),
                *(f for c in self.consequences for f in (*c.when, c.field, c.needs, *c.unless)),
                *(fu.fields if fu else ()), *(fu.act_fields if fu else ()), *(ev.anchor_fields if ev else ()),
                *(self.corrections.fields if self.corrections else ()),
                *((self.claims_yield.statement_field, *self.claims_yield.fields) if self.claims_yield else ()),
                *(self.code_descriptors.fields if self.code_descriptors else ()),
                *(self.structured_status.keeps if self.structured_status else ()),
                *(self.other_site.fields if self.other_site else ()),
                *(self.other_site.worded if self.other_site else ()),
                *((*self.title_vetoes.fields, *self.title_vetoes.body_decides) if self.title_vetoes else ()),
                *((self.linked.field,) if self.linked else ()), *self.imaging.act_fields,
                *self.imaging.no_act_fields]

    @field_validator("code_label_pattern", "entry_start")
    @classmethod
    def _label_compiles(cls, v: str) -> str:
        return _check_regex(v) if v else v


# --- rule catalogue ---------------------------------------------------------------------------------------------


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^NC\d{3}$")
    name: str
    severity: Literal["error", "warning", "info"]
    message: str
    explanation: str
    examples: list[str]
    query: Optional[str] = None


class RulesFile(_Strict):
    rules: list[RuleSpec]

    @model_validator(mode="after")
    def _unique(self) -> "RulesFile":
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(dupes)}")
        return self


# --- code family ------------------------------------------------------------------------------------------------


class Condition(_Strict):
    finding: str
    in_: Optional[list[Scalar]] = Field(default=None, alias="in")
    not_in: Optional[list[Scalar]] = None

    @model_validator(mode="after")
    def _one_test(self) -> "Condition":
        if (self.in_ is None) == (self.not_in is None):
            raise ValueError("give exactly one of 'in' or 'not_in'")
        return self

    def holds(self, value: Any) -> bool:
        """A list finding (the techniques) tested against single values is tested by its items: 'in' when any item
        is listed, 'not_in' when none is; tested against lists ('in': [[]]), by the whole list."""
        listed = self.in_ if self.in_ is not None else (self.not_in or [])
        if isinstance(value, list) and not any(isinstance(x, list) for x in listed):
            found = any(v in listed for v in value)
            return found if self.in_ is not None else not found
        if self.in_ is not None:
            return value in self.in_
        return value not in (self.not_in or [])


class Requirement(_Strict):
    id: str
    description: str
    finding: str
    in_: Optional[list[Scalar]] = Field(default=None, alias="in")
    not_in: Optional[list[Scalar]] = None
    nonempty: bool = False
    rule_missing: Optional[str] = None
    rule_conflict: Optional[str] = None
    severity: Optional[Literal["error", "warning", "info"]] = None
    conflict_overrides: dict[str, str] = Field(default_factory=dict)
    not_for: list[str] = Field(default_factory=list, description="codes a common requirement does not apply to "
                                                                   "(no reduction, so no imaging before or after one)")


class IcdPrefix(_Strict):
    prefix: str
    meaning: str


class CodeSpec(_Strict):
    code: str = Field(pattern=r"^\d{5}$")
    descriptor: str
    select_when: list[Condition]
    global_days: Literal["000", "010", "090", "XXX", "YYY", "ZZZ"]
    icd10: list[IcdPrefix]
    requirements: list[Requirement]
    notes: list[str]
    siblings: str


class NoEventRule(_Strict):
    """When the findings say no reduction happened in this encounter, what the reduction's fields become."""

    when: list[Condition] = Field(min_length=1)
    reset: dict[str, Scalar] = Field(min_length=1)
    reason: str


class OutsideRule(_Strict):
    when: list[Condition]
    reason: str


class IcdEtiology(_Strict):
    prefix: str
    etiology: list[str]


class CodeCheck(_Strict):
    rule: str
    codes: list[str]
    claimed_in: list[str]


class FindingCheck(_Strict):
    rule: str
    when: list[Condition]


class ModifierRule(_Strict):
    modifier: str
    when: list[Condition]
    reason: str


class Family(_Strict):
    family: str
    title: str
    gate: list[Condition]
    gate_reason: str
    decisive_findings: list[str] = Field(
        description="findings that, when unknown, explain why no code could be selected")
    outside: list[OutsideRule]
    codes: list[CodeSpec]
    common_requirements: list[Requirement]
    icd10_etiology: list[IcdEtiology]
    finding_checks: list[FindingCheck]
    code_checks: list[CodeCheck]
    modifier_rules: list[ModifierRule]
    em_modifiers: dict[str, str]

    def code(self, code: str) -> Optional[CodeSpec]:
        return next((c for c in self.codes if c.code == code), None)


class Rulebook(BaseModel):
    """Everything loaded from patterns/, validated and cross-checked."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    root: Path
    targets: TargetRulesFile
    context: ContextRulesFile
    sections: SectionRulesFile
    findings: FindingsPolicy
    rules: dict[str, RuleSpec]
    families: dict[str, Family]

    def rule(self, rule_id: str) -> RuleSpec:
        return self.rules[rule_id]

    def family(self, name: str) -> Family:
        """The named code family, or UnknownFamilyError naming the ones that exist."""
        if name not in self.families:
            raise UnknownFamilyError(f"unknown family '{name}' (known: {', '.join(sorted(self.families))})")
        return self.families[name]


def default_patterns_dir() -> Path:
    """patterns/ ships inside the wheel as notecheck/patterns; in a source checkout it sits at the repo root."""
    packaged = Path(__file__).parent / "patterns"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "patterns"


def _read(path: Path, model: type[BaseModel], root: Path) -> Any:
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulebookError(f"{rel}: file not found") from None
    except json.JSONDecodeError as exc:
        raise RulebookError(f"{rel}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise RulebookError(f"{rel}: field {where}: {err['msg']}{more}") from None


CONTEXT_CATEGORIES = {"NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "GENERIC", "FAMILY",
                      "TERMINATE", "PSEUDO", "PRE_REDUCTION", "POST_REDUCTION", "HERE"}
# Target categories the extraction stage knows how to read besides the resolved fields and booleans.
EXTRA_TARGET_CATEGORIES = {"imaging", "cpt_code", "icd10_code", "no_reduction"}


def _finding_names() -> set[str]:
    from notecheck.models import Findings

    return set(Findings.model_fields)


def _cross_check(book: Rulebook) -> None:
    """References between files must resolve: an unknown rule id, finding or category is a data bug."""
    findings = _finding_names()
    categories = set(book.findings.fields) | set(book.findings.booleans) | EXTRA_TARGET_CATEGORIES
    for i, rule in enumerate(book.targets.target_rules):
        where = f"target_rules.json: target_rules.{i} ({rule.literal!r})"
        if rule.category not in categories:
            raise RulebookError(f"{where}: unknown category '{rule.category}' (known: {', '.join(sorted(categories))})")
        for implied in [*rule.metadata.implies, *rule.metadata.negated_implies]:
            if implied not in categories:
                raise RulebookError(f"{where}: implies unknown category '{implied}'")
    for i, crule in enumerate(book.context.context_rules):
        if crule.category not in CONTEXT_CATEGORIES:
            raise RulebookError(f"context_rules.json: context_rules.{i} ({crule.literal!r}): unknown category "
                                f"'{crule.category}' (known: {', '.join(sorted(CONTEXT_CATEGORIES))})")
        for stop in crule.terminated_by or ():
            if stop not in CONTEXT_CATEGORIES:
                raise RulebookError(f"context_rules.json: context_rules.{i} ({crule.literal!r}): terminated_by names "
                                    f"unknown category '{stop}'")
    for field_name in book.findings.referenced_fields():
        if field_name not in categories:
            raise RulebookError(f"findings.json: unknown field '{field_name}'")
    for i, ne in enumerate(book.findings.no_event):
        for ref in [*(c.finding for c in ne.when), *ne.reset]:
            if ref not in findings:
                raise RulebookError(f"findings.json: no_event.{i}: unknown finding '{ref}' "
                                    f"(known: {', '.join(sorted(findings))})")
    for name, fam in book.families.items():
        where = f"families/{name}.json"
        for ref in fam.decisive_findings:
            if ref not in findings:
                raise RulebookError(f"{where}: decisive_findings: unknown finding '{ref}'")
        conds = [*fam.gate, *(c for o in fam.outside for c in o.when), *(c for s in fam.codes for c in s.select_when),
                 *(c for m in fam.modifier_rules for c in m.when), *(c for f in fam.finding_checks for c in f.when)]
        reqs_all = [r for c in fam.codes for r in c.requirements] + fam.common_requirements
        for ref in [*(c.finding for c in conds), *(r.finding for r in reqs_all)]:
            if ref not in findings:
                raise RulebookError(f"{where}: condition or requirement refers to unknown finding '{ref}' "
                                    f"(known: {', '.join(sorted(findings))})")
    for name, fam in book.families.items():
        where = f"families/{name}.json"
        reqs = [r for c in fam.codes for r in c.requirements] + fam.common_requirements
        for req in reqs:
            for rid in [req.rule_missing, req.rule_conflict, *req.conflict_overrides.values()]:
                if rid is not None and rid not in book.rules:
                    raise RulebookError(f"{where}: requirement {req.id}: unknown rule id {rid}")
        for check in [*fam.code_checks, *fam.finding_checks]:
            if check.rule not in book.rules:
                raise RulebookError(f"{where}: code_checks: unknown rule id {check.rule}")
        codes = [c.code for c in fam.codes]
        if len(set(codes)) != len(codes):
            raise RulebookError(f"{where}: codes: duplicate code")
        for req in reqs:
            for code in req.not_for:
                if code not in codes:
                    raise RulebookError(f"{where}: requirement {req.id}: not_for names {code}, not a code of the "
                                        "family")


def load_rulebook(root: Optional[Path] = None) -> Rulebook:
    """Read and validate patterns/ (default: the packaged copy). Raises RulebookError naming file and field."""
    root = Path(root) if root is not None else default_patterns_dir()
    if not root.is_dir():
        raise RulebookError(f"{root}: patterns directory not found")
    rules_file: RulesFile = _read(root / "rules.json", RulesFile, root)
    fam_dir = root / "families"
    family_files = sorted(fam_dir.glob("*.json")) if fam_dir.is_dir() else []
    if not family_files:
        raise RulebookError(f"{fam_dir}: no code family files")
    families = {}
    for path in family_files:
        fam: Family = _read(path, Family, root)
        families[fam.family] = fam
    book = Rulebook(
        root=root,
        targets=_read(root / "target_rules.json", TargetRulesFile, root),
        context=_read(root / "context_rules.json", ContextRulesFile, root),
        sections=_read(root / "sections.json", SectionRulesFile, root),
        findings=_read(root / "findings.json", FindingsPolicy, root),
        rules={r.id: r for r in rules_file.rules},
        families=families,
    )
    _cross_check(book)
    return book


@lru_cache(maxsize=4)
def cached_rulebook(root: Optional[str] = None) -> Rulebook:
    return load_rulebook(Path(root) if root else None)
