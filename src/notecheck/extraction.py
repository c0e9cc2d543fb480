"""Turn matched, ConText-modified spans into one `Findings` object with its evidence (component `notecheck_findings`).

Every mention becomes an `Evidence` record (even negated or hypothetical ones, so a reviewer sees what was ignored and
why); only mentions that count feed the findings. How conflicting mentions resolve is data (patterns/findings.json).
"""


import bisect
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import TypeAdapter
from spacy.language import Language
from spacy.tokens import Doc, Span

from notecheck.fastregex import forget_matching_text, matching_text
from notecheck.models import Evidence, Findings, ReductionEvent, Resolution, SectionSpan
from notecheck.rulebook import BlockPolicy, FieldPolicy, FindingsPolicy, FormPolicy, Rulebook, cached_rulebook

SPAN_GROUP = "notecheck"
ORIGINAL_TEXT_KEY = "notecheck.original_text"
_FLAG_ATTRS = ("is_negated", "is_hypothetical", "is_historical", "is_family", "is_uncertain")
# The Span flag each ConText category sets (ConText's span_attrs); extraction reads the same facts from the graph.
CONTEXT_FLAGS = {
    "NEGATED_EXISTENCE": "is_negated",
    "POSSIBLE_EXISTENCE": "is_uncertain",
    "HISTORICAL": "is_historical",
    "HYPOTHETICAL": "is_hypothetical",
    "FAMILY": "is_family",
    "PRE_REDUCTION": "is_pre_reduction",
    "POST_REDUCTION": "is_post_reduction",
}

for _name in ("findings", "evidence", "resolutions", "note_sections"):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=None)
for _attr in (*_FLAG_ATTRS, "is_pre_reduction", "is_post_reduction"):
    if not Span.has_extension(_attr):
        Span.set_extension(_attr, default=False)


@dataclass(slots=True)
class Mention:
    """A target span with what it means; the working form before it becomes Evidence."""

    field: str
    value: Any
    start: int
    end: int
    text: str
    section: Optional[str]
    rule: str
    flags: dict[str, bool]
    modifiers: list[tuple[str, str, int]]  # (category, text, start_char)
    counted: bool
    meta: dict[str, Any] = field(default_factory=dict)

    labelled: bool = False

    def derive(self, field_name: str, value: Any, rule: str, meta: dict[str, Any],
               counted: Optional[bool] = None) -> "Mention":
        """A mention implied by this one (same words, another field)."""
        return Mention(field_name, value, self.start, self.end, self.text, self.section, rule, self.flags,
                       self.modifiers, self.counted if counted is None else counted, meta, self.labelled)

    def evidence_row(self, field_name: Optional[str] = None) -> dict[str, Any]:
        """The fields of this mention's Evidence; rows are validated into Evidence all at once (one call, not one per
        mention)."""
        val = self.value
        return {
            "field": field_name or self.field,
            "value": None if val is None else str(val).lower() if isinstance(val, bool) else str(val),
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "section": self.section,
            "rule": self.rule,
            "modifiers": [m[1] for m in self.modifiers],
            "counted": self.counted,
            "labelled": self.labelled,
            **self.flags,
        }


_EVIDENCE_LIST = TypeAdapter(list[Evidence])


def _quotable_text(doc: Doc) -> str:
    """The note as the caller gave it (the pipeline may have read a same-length normalised copy)."""
    text = matching_text(doc).text
    original = doc.user_data.get(ORIGINAL_TEXT_KEY)
    return original if isinstance(original, str) and len(original) == len(text) else text


def _section_finder(doc: Doc) -> Any:
    """token index -> section category (None before any header), by bisection over the sections' first tokens."""
    rows = []
    for sec in getattr(doc._, "sections", None) or []:
        if sec.category is not None:
            first = sec.title_start if sec.title_start is not None else sec.body_start
            rows.append((first, sec.body_end, sec.category))
    rows.sort()
    firsts = [r[0] for r in rows]

    def section_of(token: int) -> Optional[str]:
        k = bisect.bisect_right(firsts, token) - 1
        while k >= 0:
            if token < rows[k][1]:
                return rows[k][2]
            k -= 1
        return None

    return section_of


_Target = tuple[int, int, str, int, int, int, Any]  # start_char, end_char, label, start, end, label id, rule


def _targets(doc: Doc, prepared: Any) -> list[_Target]:
    """Every target span with its rule: what our target matcher recorded on this run (a Doc run through the pipeline
    again keeps the earlier run's spans in its group too), else the Spans of medspaCy's own matcher."""
    if prepared.targets is not None:
        starts, lengths = prepared.token_rows(doc)
        strings, names = doc.vocab.strings, {}
        out = []
        for start, end, label, rule in prepared.targets:
            name = names.get(label)
            if name is None:
                name = names[label] = strings[label]
            out.append((starts[start], starts[end - 1] + lengths[end - 1], name, start, end, label, rule))
        return out
    spans = list(doc.spans[SPAN_GROUP]) if SPAN_GROUP in doc.spans else []
    return [(s.start_char, s.end_char, s.label_, s.start, s.end, s.label, s._.target_rule) for s in spans
            if s._.target_rule is not None]


_EPISODE_FLAG = {"prior": "is_historical", "elsewhere": "is_historical", "planned": "is_hypothetical",
                 "generic": "is_hypothetical", "negated": "is_negated"}
_Block = tuple[int, int, str, str, str, int]  # start, end, episode, rule id, cue text, cue start
_COMPILED: dict[int, Any] = {}
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")
_CLAUSE_BREAK = re.compile(r"\n|[.;](?:\s|$)")


def _block_regexes(bp: BlockPolicy) -> tuple[Any, Any, list[Any]]:
    """One alternation over every block cue (one scan of the note), the labelled-line regex and the end markers."""
    key = id(bp)
    if key not in _COMPILED:
        cues = "|".join(f"(?P<b{i}>{r.pattern})" for i, r in enumerate(bp.rules))
        # Matched at line starts only (a few dozen tries per note, not one per character).
        scan = re.compile(r"(?im)[ \t]*(?:[-*\u2022>]+[ \t]*|\d{1,2}[.)][ \t]*)?(?:" + cues + ")")
        label = re.compile(bp.label_line, re.IGNORECASE | re.MULTILINE)
        until = [re.compile(r.until, re.IGNORECASE | re.MULTILINE) if r.until else None for r in bp.rules]
        _COMPILED[key] = (scan, label, until)
    return _COMPILED[key]


def _blocks(text: str, header_starts: list[int], bp: BlockPolicy) -> list[_Block]:
    """Blocks whose label or marker puts them in another episode. A block runs from its cue to the first blank line,
    the next section header or (when the cue line carries its own text) the next labelled line; a rule's `until`
    marker closes a copied block instead, across blank lines and headers."""
    scan, label, until = _block_regexes(bp)
    out: list[_Block] = []
    blanks: Optional[list[int]] = None
    closings: dict[int, list[tuple[int, int]]] = {}
    starts = [0]
    newline = text.find("\n")
    while newline != -1:
        starts.append(newline + 1)
        newline = text.find("\n", newline + 1)
    for line_start in starts:
        found = scan.match(text, line_start)
        if found is None:
            continue
        k = int(next(name for name, v in found.groupdict().items() if v is not None)[1:])
        rule = bp.rules[k]
        start = found.start()
        line_end = text.find("\n", start)
        line_end = len(text) if line_end == -1 else line_end
        end = None
        if until[k] is not None:
            if k not in closings:  # one scan per rule and note, not one per block
                closings[k] = [(m.start(), m.end()) for m in until[k].finditer(text)]
            i = bisect.bisect_left(closings[k], (line_end, -1))
            if i < len(closings[k]):
                end = closings[k][i][1]
        if end is None:
            end = len(text)
            if blanks is None:
                blanks = [m.start() for m in _BLANK_LINE.finditer(text)]
            i = bisect.bisect_left(blanks, line_end)
            if i < len(blanks):
                end = blanks[i]
            k_h = bisect.bisect_right(header_starts, line_end)
            if k_h < len(header_starts):
                end = min(end, header_starts[k_h])
            if text[found.end():line_end].strip(" \t:-*"):  # the cue line has its own text: a label, not a heading
                nxt = label.search(text, line_end + 1, end) if line_end < end else None
                if nxt is not None:
                    end = nxt.start()
        out.append((start, end, rule.episode, rule.id, text[start:line_end].strip()[:60], start))
    return out


_FORM_LINE = 240  # an answer sits on the label's line, within this many characters
_FORM_MARKS = frozenset("[(:?=-\u2610\u2611\u2612\u25a1\u25a0")


def _form_answer(text: str, end: int, fp: FormPolicy) -> Optional[tuple[str, int]]:
    """'Label: ( ) yes (x) no' or 'Label: No' right after a mention: ('negative' | 'affirmative', answer offset)."""
    head = text[end : end + fp.max_gap + 2]
    if not _FORM_MARKS.intersection(head):  # most mentions run on into prose: no answer can follow them
        return None
    line_end = text.find("\n", end, end + _FORM_LINE)
    rest = text[end : min(len(text), end + _FORM_LINE) if line_end == -1 else line_end]
    if not rest:
        return None
    res = _form_regexes(fp)
    plain = res[4].match(rest)
    if plain is not None:
        return "negative", end + plain.start("word")
    first = True
    answer = None
    for opt in res[0].finditer(rest):
        if first and (opt.start() > fp.max_gap or rest[: opt.start()].strip(" \t:?=-")):
            return None
        first = False
        if not res[1].search(opt.group("mark")):
            continue
        word = opt.group("word").strip()
        if res[2].match(word):
            answer = ("negative", end + opt.start("word"))
        elif res[3].match(word):
            answer = ("affirmative", end + opt.start("word"))
    return answer


def _form_regexes(fp: FormPolicy) -> tuple[Any, ...]:
    key = id(fp)
    if key not in _COMPILED:
        _COMPILED[key] = tuple(re.compile(p, re.IGNORECASE) for p in
                               (fp.option, fp.checked, fp.negative, fp.affirmative, fp.plain_answer))
    return _COMPILED[key]


def _header_starts(doc: Doc) -> list[int]:
    starts = []
    for sec in getattr(doc._, "sections", None) or []:
        if sec.category is not None and sec.title_start is not None:
            starts.append(doc[sec.title_start].idx)
    return sorted(starts)


def _mentions(doc: Doc, policy: FindingsPolicy) -> list[Mention]:
    prepared = matching_text(doc)
    section_of = _section_finder(doc)
    # Within one field keep the longest match: "general anesthesia" beats the bare "anesthesia" inside it.
    by_field: dict[str, list[_Target]] = {}
    for row in _targets(doc, prepared):
        by_field.setdefault(row[2], []).append(row)
    kept: list[_Target] = []
    for group in by_field.values():
        # Sorted by start, longest first: a span is inside a strictly longer one when an earlier span reaches past
        # its end, or reaches exactly its end from an earlier start. One pass, so long notes stay linear.
        group.sort(key=lambda r: (r[0], r[0] - r[1]))
        reach, reach_start = -1, -1
        for row in group:
            start_char, end_char = row[0], row[1]
            inside = reach > end_char or (reach == end_char and reach_start < start_char)
            if end_char > reach:
                reach, reach_start = end_char, start_char
            if not inside:
                kept.append(row)
    kept.sort(key=lambda r: (r[0], r[2]))
    out: list[Mention] = []
    text, token_starts = prepared.text, prepared.token_starts(doc)
    quote = _quotable_text(doc)
    # ConText's graph holds each target's modifiers: read them there, not through five Span extensions per target.
    modifiers_of: dict[tuple[int, int, int], list[Any]] = {}
    graph = doc._.context_graph if Doc.has_extension("context_graph") else None
    for target, modifier in getattr(graph, "edges", None) or []:
        modifiers_of.setdefault((target.start, target.end, target.label), []).append(modifier)
    code_label = re.compile(policy.code_label_pattern)
    blocks = _blocks(text, _header_starts(doc), policy.blocks) if policy.blocks is not None else []
    block_starts = [b[0] for b in blocks]
    block_reach = list(itertools.accumulate((b[1] for b in blocks), max))  # furthest end of any earlier block
    keeps = policy.blocks.keeps if policy.blocks is not None else {}
    for start_char, end_char, label, first, end, label_id, rule in kept:
        key = (first, end, label_id)
        meta = dict(rule.metadata or {})
        modifiers = modifiers_of.get(key, ())
        flags = dict.fromkeys(_FLAG_ATTRS, False)
        for attribute, setting in (rule.attributes or {}).items():  # a TargetRule may set a flag itself
            if attribute in flags:
                flags[attribute] = bool(setting)
        for mod in modifiers:
            flag = CONTEXT_FLAGS.get(mod.category)
            if flag in flags:
                flags[flag] = True
        section = section_of(first)
        mods = []
        for mod in modifiers:
            ms, me = mod.modifier_span
            last = doc[me - 1]
            mods.append((mod.category, text[token_starts[ms] : last.idx + len(last)], token_starts[ms]))
        if policy.forms is not None and label not in ("cpt_code", "icd10_code"):
            answer = _form_answer(text, end_char, policy.forms)
            if answer is not None:
                flags["is_negated"] = answer[0] == "negative"
                mods.append(("FORM_" + answer[0].upper(), text[answer[1] : answer[1] + 20].split("\n")[0].strip(),
                             answer[1]))
        if meta.get("ignore_negation"):
            flags["is_negated"] = False
        in_block = None
        k_b = bisect.bisect_right(block_starts, start_char) - 1
        # Blocks can nest (a consent line inside a copied note): the innermost holding it decides. Stop once no
        # earlier block reaches this far, so a long note stays linear.
        while k_b >= 0 and block_reach[k_b] > start_char:
            if blocks[k_b][0] <= start_char < blocks[k_b][1]:
                in_block = blocks[k_b]
                break
            k_b -= 1
        if in_block is not None and label not in keeps.get(in_block[2], ()):
            flags[_EPISODE_FLAG[in_block[2]]] = True
            mods.append(("BLOCK_" + in_block[2].upper(), f"{in_block[3]}: {in_block[4]}", in_block[5]))
        value = meta.get("value")
        counted = not (flags["is_hypothetical"] or flags["is_family"] or flags["is_uncertain"])
        counted = counted and (not flags["is_historical"] or bool(meta.get("counts_when_historical")))
        counted = counted and (in_block is None or in_block[2] == "negated" or label in keeps.get(in_block[2], ()))
        counted = counted and section not in policy.ignore_sections
        counted = counted and section not in policy.field_ignore_sections.get(label, ())
        if flags["is_negated"]:
            negated_value = meta.get("negated_value")
            if negated_value is not None and counted:
                value = negated_value
            else:
                counted = False
        mention = Mention(
            field=label,
            value=value,
            start=start_char,
            end=end_char,
            text=quote[start_char:end_char],
            section=section,
            rule=rule.literal,
            flags=flags,
            modifiers=mods,
            counted=counted,
            meta=meta,
        )
        if label == "cpt_code":
            mention.labelled = bool(code_label.search(quote[max(0, start_char - 24) : start_char]))
        out.append(mention)
        if flags["is_negated"] and not (flags["is_hypothetical"] or flags["is_family"] or flags["is_uncertain"]):
            for implied_field, implied_value in (meta.get("negated_implies") or {}).items():
                out.append(mention.derive(implied_field, implied_value, f"{rule.literal} (negated: {implied_field} "
                                          f"{implied_value})", {"implied": True}, counted=True))
        if not flags["is_negated"] and counted:
            for implied_field, implied_value in (meta.get("implies") or {}).items():
                out.append(mention.derive(implied_field, implied_value, f"{rule.literal} (implies {implied_field})",
                                          {"implied": True, "from_code": bool(meta.get("from_code"))}))
    if policy.option_list is not None:
        _discount_option_lists(text, out, policy)
    if policy.overridden_by:
        _discount_overridden(out, policy.overridden_by)
    if policy.follow_up is not None:
        _discount_follow_up(text, out, policy.follow_up)
    return out


def _discount_follow_up(text: str, mentions: list[Mention], fu: Any) -> None:
    """A follow-up visit's note recounts the treatment it follows; only acts placed at this visit count."""
    key = id(fu)
    if key not in _COMPILED:
        _COMPILED[key] = (re.compile(fu.heading, re.IGNORECASE | re.MULTILINE),
                          re.compile(fu.today, re.IGNORECASE))
    heading, today = _COMPILED[key]
    head = text[: fu.head_chars].lower()
    if not any(word in head for word in fu.heading_words):  # most notes: no follow-up wording at all
        return
    found = heading.search(text, 0, fu.head_chars)
    if found is None:
        return
    cue = found.group(0).strip()[:60]
    lines: dict[int, bool] = {}
    for m in mentions:
        if not m.counted or m.field not in fu.fields:
            continue
        start = text.rfind("\n", 0, m.start) + 1
        if start not in lines:
            end = text.find("\n", m.end)
            lines[start] = today.search(text, start, len(text) if end == -1 else end) is not None
        if not lines[start]:
            m.counted = False
            m.modifiers.append(("FOLLOW_UP_VISIT", cue, found.start()))


def _promote(values: dict[str, Any], by_field: dict[str, list[Mention]], promo: Any, text: str,
             resolutions: list[Resolution]) -> None:
    """'Sedation given by the anaesthetics registrar' is MAC: a resolved value becomes the more specific one when the
    finding that makes it so is stated beside one of its mentions (same paragraph, within the window)."""
    if values.get(promo.field) != promo.value:
        return
    near = sorted((n for n in by_field.get(promo.near_field, []) if n.counted and n.value == promo.near_value),
                  key=lambda n: n.start)
    near_starts = [n.start for n in near]
    for m in by_field.get(promo.field, []):
        if not m.counted or m.value != promo.value:
            continue
        first = bisect.bisect_left(near_starts, m.start - promo.window)
        for n in near[first : bisect.bisect_right(near_starts, m.end + promo.window)]:
            lo, hi = min(m.start, n.start), max(m.end, n.end)
            if hi - lo <= promo.window and _BLANK_LINE.search(text, lo, hi) is None:
                values[promo.field] = promo.to
                resolutions.append(Resolution(field=promo.field, value=promo.to, candidates=[promo.value, promo.to],
                                              reason=promo.reason))
                return


def _events(text: str, by_field: dict[str, list[Mention]], ep: Any, rank: list[str]) -> list[ReductionEvent]:
    """Reduction attempts in narrative order: counted anchor mentions grouped while they stay close and in one
    paragraph; each takes the anaesthesia named around it and an outcome from its own words. The last attempt that
    succeeded decides (else the last one)."""
    key = id(ep)
    if key not in _COMPILED:
        _COMPILED[key] = (re.compile(ep.failed, re.IGNORECASE), re.compile(ep.succeeded, re.IGNORECASE))
    failed, succeeded = _COMPILED[key]
    anchors = sorted((m for f in ep.anchor_fields for m in by_field.get(f, [])
                      if m.counted and m.value not in (None, False, "false")), key=lambda m: m.start)
    groups: list[list[Mention]] = []
    for m in anchors:
        if groups and m.start - groups[-1][-1].end <= ep.gap \
                and _BLANK_LINE.search(text, groups[-1][-1].end, m.start) is None:
            groups[-1].append(m)
        else:
            groups.append([m])
    anesthesia = sorted((m for m in by_field.get("anesthesia", []) if m.counted and str(m.value) in rank),
                        key=lambda m: m.start)
    anesthesia_starts = [m.start for m in anesthesia]
    events = []
    for i, group in enumerate(groups, 1):
        start, end = group[0].start, max(m.end for m in group)
        para_start = 0
        for blank in _BLANK_LINE.finditer(text, max(0, start - ep.before), start):
            para_start = blank.end()
        following = _BLANK_LINE.search(text, end, end + ep.after)
        para_end = following.start() if following is not None else len(text)
        lo, hi = max(start - ep.before, para_start), min(end + ep.after, para_end)
        own = [str(m.value) for m in anesthesia[bisect.bisect_left(anesthesia_starts, lo):
                                                bisect.bisect_left(anesthesia_starts, hi)]]
        words = text[start : min(end + ep.after, para_end)]
        outcome = "failed" if failed.search(words) else "succeeded" if succeeded.search(words) else "unknown"
        approach = "open" if any(m.field == "approach" and m.value == "open" for m in group) else "closed"
        events.append(ReductionEvent(index=i, start=start, end=end, approach=approach,
                                     anesthesia=min(own, key=rank.index) if own else "unknown", outcome=outcome,
                                     deciding=False))
    if events:
        done = [e for e in events if e.outcome == "succeeded"]
        (done[-1] if done else events[-1]).deciding = True
    return events


def _negation_is_close(m: Mention, reach: int = 12) -> bool:
    """'No femoral shortening' or 'shortening was not needed' state it; 'not tight after femoral shortening' does
    not: the negation cue must sit right beside the mention."""
    return any(cat == "FORM_NEGATIVE" or (cat == "NEGATED_EXISTENCE" and m.start - reach <= start <= m.end + reach)
               for cat, _, start in m.modifiers)


def _only_historical(m: Mention, policy: FindingsPolicy) -> bool:
    """Discounted for being in the past and for nothing else (not negated, planned, doubtful, another person's, in an
    ignored section or block)."""
    f = m.flags
    return (f["is_historical"] and not (f["is_negated"] or f["is_hypothetical"] or f["is_uncertain"] or f["is_family"])
            and m.section not in policy.ignore_sections and m.value is not None
            and not any(cat.startswith("BLOCK_") or cat in ("OPTION_LIST", "OVERRIDDEN", "OTHER_SIDE")
                        for cat, _, _ in m.modifiers))


def _discount_overridden(mentions: list[Mention], overridden_by: dict[str, list[str]]) -> None:
    """'The hip remains reduced' is a state and 'trial reduction' an arthroplasty step: where a more specific field's
    counted mention covers the same words, the general mention (and what it implies) does not count."""
    specific_fields = {f for fs in overridden_by.values() for f in fs}
    specific = sorted((m for m in mentions if m.counted and m.field in specific_fields), key=lambda m: m.start)
    if not specific:
        return
    starts = [m.start for m in specific]
    longest = max(m.end - m.start for m in specific)
    for m in mentions:
        over = overridden_by.get(m.field)
        if not over or not m.counted:
            continue
        window = specific[bisect.bisect_left(starts, m.start - longest) : bisect.bisect_left(starts, m.end)]
        for s in window:
            if s.field in over and s.start < m.end and m.start < s.end:
                m.counted = False
                m.modifiers.append(("OVERRIDDEN", f"({s.field}: {s.text})", s.start))
                break


_OPTION_GAP = re.compile(r"(?:[\s/,|;:()\[\]\u2610\u25a1-]|\bor\b|\band\b)*", re.IGNORECASE)


def _longest_chain(text: str, group: list[Mention]) -> int:
    """Distinct values in the longest run of mentions separated only by list punctuation ("GA / spinal / MAC"):
    a sentence that names three anaesthetics in passing ("spinal, light sedation with propofol") is no list."""
    ordered = sorted(group, key=lambda m: m.start)
    best, run, prev = 0, set(), None
    for m in ordered:
        if prev is not None and m.start >= prev.end and _OPTION_GAP.fullmatch(text, prev.end, m.start) is None:
            run = set()
        run.add(m.value)
        best = max(best, len(run))
        prev = m if prev is None or m.end > prev.end else prev
    return best


def _discount_option_lists(text: str, mentions: list[Mention], policy: FindingsPolicy) -> None:
    """A line naming many values of one field without marking one is template boilerplate, not documentation."""
    opt = policy.option_list
    assert opt is not None
    marks = re.compile(opt.selected_marks)
    by_line: dict[tuple[int, str], list[Mention]] = {}
    for m in mentions:
        if m.field in opt.fields and m.value is not None and not m.meta.get("implied"):
            line_start = text.rfind("\n", 0, m.start) + 1
            by_line.setdefault((line_start, m.field), []).append(m)
    for (line_start, _field), group in by_line.items():
        if len({m.value for m in group}) < opt.min_values or _longest_chain(text, group) < opt.min_values:
            continue
        line_end = text.find("\n", line_start)
        line = text[line_start : line_end if line_end != -1 else len(text)]
        if marks.search(line):
            continue
        for m in group:
            if m.counted:
                m.counted = False
                m.modifiers.append(("OPTION_LIST", "(template option list)", line_start))


def _first_tier(pool: list[Mention], tiers: list[list[str]]) -> list[Mention]:
    """Mentions from the most trusted tier of sections that has any; all of them when no tier has."""
    for tier in tiers:
        chosen = [m for m in pool if m.section in tier]
        if chosen:
            return chosen
    return pool


def _ranked(field_name: str, ms: list[Mention], fp: FieldPolicy, resolutions: list[Resolution]) -> Optional[str]:
    rank, prefer, reason = fp.rank, fp.prefer_sections, fp.reason
    counted = [m for m in ms if m.counted and m.value is not None]
    direct = [m for m in counted if not m.meta.get("from_code") and m.section not in fp.fallback_sections]
    pool = direct or counted
    pool = _first_tier(pool, prefer)
    values = [str(m.value) for m in pool if str(m.value) in rank]
    if not values:
        return None
    chosen = min(values, key=rank.index)
    distinct = sorted(set(values), key=rank.index)
    if len(distinct) > 1:
        resolutions.append(Resolution(field=field_name, value=chosen, candidates=distinct, reason=reason))
    return chosen


def _treated_sides(text: str, pool: list[Mention], acts: list[Mention], reach: int) -> set[str]:
    """Sides named beside an act of treatment ('closed reduction of the left hip', 'L hip reduced'): the treated
    structure, which an examination of both hips or a device on both legs does not change."""
    sides = set()
    acts = sorted(acts, key=lambda a: a.start)
    starts = [a.start for a in acts]
    for m in pool:
        for a in acts[bisect.bisect_left(starts, m.start - reach) : bisect.bisect_right(starts, m.end + reach)]:
            lo, hi = min(m.start, a.start), max(m.end, a.end)
            if hi - lo <= reach and _CLAUSE_BREAK.search(text, lo, hi) is None:
                sides.add(m.value)
                break
    return sides


def _side(ms: list[Mention], prefer: list[list[str]], reason: str, codes: list[str], policy: FindingsPolicy,
          resolutions: list[Resolution], text: str = "", acts: Optional[list[Mention]] = None) -> str:
    counted = [m for m in ms if m.counted and m.value in ("left", "right", "bilateral")]
    pool = _first_tier(counted, prefer)
    values = [m.value for m in pool]
    treated = _treated_sides(text, counted, acts or [], policy.treated_side_reach) if acts else set()
    if treated and len(set(values)) > 1:
        one = {v for v in treated if v != "bilateral"}
        if len(one) == 1 and "bilateral" not in treated:
            chosen = one.pop()
            resolutions.append(Resolution(field="laterality", value=chosen, candidates=sorted(set(values)),
                                          reason="the side named with the reduction or device is the treated one"))
            return chosen
    if not values:
        for code in codes:
            for rule in policy.icd10_laterality:
                if re.match(rule.pattern, code):
                    return rule.value
        return "unknown"
    one_sided = {v for v in values if v != "bilateral"}
    # 'Bilateral' or 'both hips' often describes an exam, positioning or a device; the case is bilateral when the
    # treated-side mentions name both sides, or name no one side at all.
    if "bilateral" in values and len(one_sided) != 1:
        chosen = "bilateral"
    else:
        counts = Counter(values)
        chosen = max(counts, key=lambda v: (counts[v], -values.index(v)))
    if len(set(values)) > 1:
        resolutions.append(Resolution(field="laterality", value=chosen, candidates=sorted(set(values)), reason=reason))
    return chosen


def _discount_other_side(side: str, mentions: list[Mention], policy: FindingsPolicy) -> None:
    """'L THA 2021' in a note about a right hip dislocation says nothing about the right hip."""
    if side not in ("left", "right"):
        return
    sides = [m for m in mentions if m.field == "laterality" and m.value in ("left", "right")]
    for m in mentions:
        if not m.counted or str(m.value) not in policy.side_specific.get(m.field, []):
            continue
        own = [s.value for s in sides if s.start < m.end and m.start < s.end]
        if own and own[0] != side:
            m.counted = False
            m.modifiers.append(("OTHER_SIDE", f"(other side: {own[0]})", m.start))


def _imaging(mentions: list[Mention], policy: FindingsPolicy) -> list[tuple[Mention, Optional[str]]]:
    """Place each imaging mention before or after the reduction: ConText cue first, else section, else position."""
    ip = policy.imaging
    event = None
    for group in ip.event_sections:
        events = [m.start for m in mentions if m.counted and m.field in ip.event_fields and m.section in group
                  and m.value not in (False, "false")]
        if events:
            event = min(events)
            break
    if event is None and ip.any_section_event:
        events = [m.start for m in mentions if m.counted and m.field in ip.event_fields
                  and m.value not in (False, "false")]
        event = min(events) if events else None
    placed = []
    for m in mentions:
        if m.field != "imaging":
            continue
        when: Optional[str] = None
        cues = [(abs(start - m.start), cat) for cat, _, start in m.modifiers
                if cat in ("PRE_REDUCTION", "POST_REDUCTION")]
        if cues:
            when = "pre" if min(cues)[1] == "PRE_REDUCTION" else "post"
        elif m.section in ip.pre_sections:
            when = "pre"
        elif m.section in ip.post_sections:
            when = "post"
        elif event is not None:
            when = "pre" if m.start < event else "post"
        placed.append((m, when))
    return placed


def extract(doc: Doc, book: Rulebook) -> tuple[Findings, list[Evidence], list[Resolution]]:
    """Resolve all mentions in a processed Doc into Findings, Evidence and the reasons for each conflict."""
    policy = book.findings
    mentions = _mentions(doc, policy)
    resolutions: list[Resolution] = []
    by_field: dict[str, list[Mention]] = {}
    for m in mentions:
        by_field.setdefault(m.field, []).append(m)
    rows: list[dict[str, Any]] = []
    icd = []
    for m in by_field.get("icd10_code", []):
        code = m.text.upper()
        if m.counted and code not in icd:
            icd.append(code)
    cpt = []
    for m in by_field.get("cpt_code", []):
        if m.counted and m.text not in cpt:
            cpt.append(m.text)

    treated = [name for name, acts in policy.treated_fallback.items()
               if any(m.counted and m.value not in (None, False, "false")
                      and m.section not in policy.treated_fallback_skip_sections
                      for a in acts for m in by_field.get(a, []))]
    keep_past = re.compile(policy.treated_fallback_keep, re.IGNORECASE)
    for name in [*policy.historical_fallback, *treated]:
        ms = by_field.get(name, [])
        if ms and not any(m.counted for m in ms):
            for m in ms:
                if _only_historical(m, policy) and (name in policy.historical_fallback or not any(
                        keep_past.search(text) for cat, text, _ in m.modifiers if cat == "HISTORICAL")):
                    m.counted = True
                    m.modifiers.append(("HISTORICAL_FALLBACK", "(nothing current; the past state stands)", m.start))
    values: dict[str, Any] = {}
    # The treated side is resolved first: side-specific mentions (a THA on the other hip) are discounted against it.
    for name, fp in policy.fields.items():
        if fp.kind == "side":
            acts = [m for f in policy.treated_side_acts for m in by_field.get(f, [])
                    if m.counted and m.value not in (None, False, "false")]
            values[name] = _side(by_field.get(name, []), fp.prefer_sections, fp.reason, icd, policy, resolutions,
                                 matching_text(doc).text, acts)
            _discount_other_side(values[name], mentions, policy)
    for name, fp in policy.fields.items():
        ms = by_field.get(name, [])
        if fp.kind == "ranked":
            values[name] = _ranked(name, ms, fp, resolutions)
        elif fp.kind == "set":
            seen: list[str] = []
            for m in _first_tier([m for m in ms if m.counted], fp.prefer_sections):
                if m.value is not None and m.value not in seen:
                    seen.append(str(m.value))
            values[name] = seen
    events: list[ReductionEvent] = []
    if policy.events is not None:
        rank = policy.fields["anesthesia"].rank
        events = _events(matching_text(doc).text, by_field, policy.events, rank)
        deciding = next((e for e in events if e.deciding), None)
        chosen = values.get("anesthesia")
        failed_spans = [(e.start - policy.events.before, e.end + policy.events.after) for e in events
                        if e.outcome == "failed"]
        failed_los = [lo for lo, _ in failed_spans]

        def in_failed(pos: int) -> bool:
            i = bisect.bisect_right(failed_los, pos) - 1
            return i >= 0 and pos < failed_spans[i][1]

        # The deepest anaesthesia named stands unless every mention of it belongs to an attempt that failed.
        only_failed = chosen is not None and failed_spans and all(
            in_failed(m.start) for m in by_field.get("anesthesia", []) if m.counted and m.value == chosen)
        if only_failed and deciding is not None and deciding.anesthesia != "unknown" \
                and chosen != deciding.anesthesia:
            resolutions.append(Resolution(field="anesthesia", value=deciding.anesthesia,
                                          candidates=sorted({values.get("anesthesia") or "unknown",
                                                             deciding.anesthesia}),
                                          reason=policy.events.reason))
            values["anesthesia"] = deciding.anesthesia
    for promo in policy.promotions:
        _promote(values, by_field, promo, matching_text(doc).text, resolutions)
    booleans = {name: any(m.counted for m in by_field.get(name, [])) for name in policy.booleans}
    for name in policy.last_statement_wins:
        # The last plain statement (done, or explicitly not done) decides; plans, history and doubt are not statements.
        said = [m for m in by_field.get(name, []) if m.counted or (
            m.flags["is_negated"] and not (m.flags["is_hypothetical"] or m.flags["is_historical"]
                                           or m.flags["is_uncertain"] or m.flags["is_family"])
            and _negation_is_close(m))]
        if said and booleans.get(name) and not said[-1].counted:
            booleans[name] = False
            for m in said[:-1]:
                if m.counted:
                    m.counted = False
                    m.modifiers.append(("LATER_NEGATION", f"(later: not done @{said[-1].start})", said[-1].start))

    imaging_pre = imaging_post = fluoroscopy = False
    for m, when in _imaging(mentions, policy):
        field_name = f"imaging_{when}" if when and m.counted else "imaging"
        rows.append(m.evidence_row(field_name))
        both = m.counted and m.value in policy.imaging.both_values
        if m.counted and (when == "pre" or both):
            imaging_pre = True
        if m.counted and (when == "post" or both):
            imaging_post = True
        if m.counted and m.value == "fluoroscopy":
            fluoroscopy = True
    # Built last, so that discounts applied during resolution (other side, option lists) show in the evidence.
    rows += [m.evidence_row() for m in mentions if m.field != "imaging"]
    rows.sort(key=lambda e: (e["start"], e["field"]))
    evidence: list[Evidence] = _EVIDENCE_LIST.validate_python(rows)

    if policy.device_only is not None and values.get("technique") and values.get("approach") != "open" \
            and not booleans.get("reduction") and values.get("manipulation") != "true" \
            and values.get("anesthesia") in (None, "unknown"):
        values["anesthesia"] = policy.device_only.anesthesia
        resolutions.append(Resolution(field="anesthesia", value=policy.device_only.anesthesia,
                                      candidates=["unknown", policy.device_only.anesthesia],
                                      reason=policy.device_only.reason))
    manipulation = values.get("manipulation")
    findings = Findings(
        etiology=values.get("etiology") or "unknown",
        approach=values.get("approach") or "unknown",
        anesthesia=values.get("anesthesia") or "unknown",
        anesthesia_by=values.get("anesthesia_by") or "unknown",
        surgeon_role_stated=booleans.get("surgeon_role", False),
        manipulation=None if manipulation is None else manipulation == "true",
        technique=values.get("technique", []),
        imaging_pre=imaging_pre,
        imaging_post=imaging_post,
        fluoroscopy=fluoroscopy,
        laterality=values.get("laterality", "unknown"),
        acetabular_wall_fracture=booleans.get("acetabular_wall_fracture", False),
        femoral_head_fracture=booleans.get("femoral_head_fracture", False),
        femoral_shortening=booleans.get("femoral_shortening", False),
        tenotomy=booleans.get("tenotomy", False),
        hip_dislocation=booleans.get("hip_dislocation", False),
        reduction=booleans.get("reduction", False),
        no_reduction=any(m.counted for m in by_field.get("no_reduction", [])),
        arthroplasty_performed=booleans.get("arthroplasty_performed", False),
        cpt_codes=cpt,
        icd10_codes=icd,
        events=events,
    )
    return findings, evidence, resolutions


class FindingsComponent:
    """spaCy component: sets doc._.findings, doc._.evidence and doc._.resolutions."""

    def __init__(self, book: Rulebook):
        self.book = book

    def __call__(self, doc: Doc) -> Doc:
        doc._.findings, doc._.evidence, doc._.resolutions = extract(doc, self.book)
        doc._.note_sections = section_spans(doc)
        forget_matching_text(doc)
        return doc


def section_spans(doc: Doc) -> list[SectionSpan]:
    """The sectionizer's sections as character offsets, for reports that mark headers in the note."""
    text = _quotable_text(doc)
    out = []
    for sec in getattr(doc._, "sections", None) or []:
        if sec.category is None or sec.title_start is None:
            continue
        start = doc[sec.title_start].idx
        last_title = doc[sec.title_end - 1] if sec.title_end > sec.title_start else None
        title_end = last_title.idx + len(last_title) if last_title is not None else start
        last = doc[min(sec.body_end, len(doc)) - 1]
        out.append(SectionSpan(category=sec.category, title=text[start:title_end].strip(), start=start,
                               title_end=title_end, end=last.idx + len(last)))
    return out


@Language.factory("notecheck_findings", default_config={"patterns_dir": None})
def make_findings_component(nlp: Language, name: str, patterns_dir: Optional[str]) -> FindingsComponent:
    return FindingsComponent(cached_rulebook(patterns_dir))
