"""Turn matched, ConText-modified spans into one `Findings` object with its evidence (component `notecheck_findings`).

Every mention becomes an `Evidence` record (even negated or hypothetical ones, so a reviewer sees what was ignored and
why); only mentions that count feed the findings. How conflicting mentions resolve is data (patterns/findings.json).
"""


import bisect
import itertools
import re
from collections import Counter
from typing import Any, Optional

from pydantic import TypeAdapter
from spacy.language import Language
from spacy.tokens import Doc, Span

from notecheck.encounter import (
    BLANK_LINE,
    EPISODE_FLAG,
    apply_corrections,
    date_order,
    dated_before,
    discount_arrived_reduced,
    discount_code_descriptors,
    discount_dated_acts,
    discount_defined_abbreviations,
    discount_follow_up,
    discount_other_site,
    discount_overridden,
    discount_retracted_quotes,
    discount_structured_status,
    discount_vetoed_titles,
    encounter_start,
    find_blocks,
    form_answer,
    only_historical,
    only_planned,
    only_queried,
    plain_negative,
    promote,
    reduction_events,
    rx,
    treated_sides,
    yield_claims,
)
from notecheck.fastregex import forget_matching_text, matching_text
from notecheck.mentions import Mention
from notecheck.models import Evidence, Findings, ReductionEvent, Resolution, SectionSpan
from notecheck.rulebook import FieldPolicy, FindingsPolicy, Rulebook, cached_rulebook

SPAN_GROUP = "notecheck"
ORIGINAL_TEXT_KEY = "notecheck.original_text"
_FLAG_ATTRS = ("is_negated", "is_hypothetical", "is_historical", "is_family", "is_uncertain")
# The Span flag each ConText category sets (ConText's span_attrs); extraction reads the same facts from the graph.
CONTEXT_FLAGS = {
    "NEGATED_EXISTENCE": "is_negated",
    "POSSIBLE_EXISTENCE": "is_uncertain",
    "HISTORICAL": "is_historical",
    "HYPOTHETICAL": "is_hypothetical",
    # Statements about patients in general: not done to this patient. A category of its own so that a nearer
    # hypothetical cue ('when ... can be achieved') does not cut its scope (ConText limits same-category scopes).
    "GENERIC": "is_hypothetical",
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




_EVIDENCE_LIST = TypeAdapter(list[Evidence])


def _quotable_text(doc: Doc) -> str:
    """The note as the caller gave it (the pipeline may have read a same-length normalised copy)."""
    text = matching_text(doc).text
    original = doc.user_data.get(ORIGINAL_TEXT_KEY)
    return original if isinstance(original, str) and len(original) == len(text) else text


def _section_finder(doc: Doc, entry_start: str, text: str, token_starts: list[int],
                    inline_ends: frozenset[str] = frozenset(), line_ends: frozenset[str] = frozenset()) -> Any:
    """token index -> section category (None before any header), by bisection over the sections' first tokens.
    A new dated entry ('10/09 post-op:', 'Day 2 -') ends the section before it: in a multi-day document the last
    day's 'Plan:' does not run on over the next day's account."""
    entries: list[int] = []
    if entry_start:
        found = [m.start() for m in rx(entry_start, re.IGNORECASE | re.MULTILINE).finditer(text)]
        entries = [bisect.bisect_left(token_starts, at) for at in found]
    rows = []
    for sec in getattr(doc._, "sections", None) or []:
        if sec.category is not None:
            first = sec.title_start if sec.title_start is not None else sec.body_start
            end = sec.body_end
            k = bisect.bisect_right(entries, first)
            if k < len(entries) and entries[k] < end:
                end = entries[k]
            if (sec.category in inline_ends or sec.category in line_ends) and sec.title_end is not None \
                    and sec.title_end < end:
                # 'Billing: 27259' or 'FHx: mum had a clicky hip' with its words on the header's line is a one-item
                # section: it ends at the next blank line (or its own line's end), not at the next header, which
                # may never come.
                at = token_starts[sec.title_end]
                line_end = text.find("\n", at)
                if line_end != -1 and text[at:line_end].strip():
                    if sec.category in line_ends:
                        end = min(end, bisect.bisect_left(token_starts, line_end))
                    else:
                        blank = BLANK_LINE.search(text, line_end)
                        if blank is not None:
                            end = min(end, bisect.bisect_left(token_starts, blank.start() + 1))
            rows.append((first, end, sec.category))
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
    """Every target span with its rule: what notecheck_matcher recorded on this run, else (a pipeline built with
    medspaCy's own TargetMatcher) the Spans of the group with their span._.target_rule."""
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




def _closes_between(text: str, start: int, end: int) -> bool:
    """Whether a bracket opened before `start` closes before `end`."""
    depth = 0
    for ch in text[start:end]:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                return True
    return False


def _header_starts(doc: Doc) -> list[int]:
    starts = []
    for sec in getattr(doc._, "sections", None) or []:
        if sec.category is not None and sec.title_start is not None:
            starts.append(doc[sec.title_start].idx)
    return sorted(starts)


def _mentions(doc: Doc, policy: FindingsPolicy) -> list[Mention]:
    prepared = matching_text(doc)
    section_of = _section_finder(doc, policy.entry_start, prepared.text, prepared.token_starts(doc),
                                 frozenset(policy.inline_sections_end_at_blank_line),
                                 frozenset(policy.inline_sections_end_at_line_end))
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
    # A cue whose own words hold a target ('if closed reduction fails') qualifies it too: ConText never pairs a cue
    # with a target it overlaps, so the findings stage does.
    holding = [m for m in getattr(graph, "modifiers", None) or []
               if (m.rule.metadata or {}).get("modifies_targets_within")]
    code_label = re.compile(policy.code_label_pattern)
    header_starts = _header_starts(doc)
    blocks = find_blocks(text, header_starts, policy.blocks) if policy.blocks is not None else []
    block_starts = [b[0] for b in blocks]
    block_reach = list(itertools.accumulate((b[1] for b in blocks), max))  # furthest end of any earlier block
    keeps = policy.blocks.keeps if policy.blocks is not None else {}
    for start_char, end_char, label, first, end, label_id, rule in kept:
        key = (first, end, label_id)
        meta = dict(rule.metadata or {})
        modifiers = modifiers_of.get(key, ())
        held = [m for m in holding if m.modifier_span[0] <= first and end <= m.modifier_span[1]
                and m.allows(label.upper()) and m not in modifiers]
        if held:
            modifiers = [*modifiers, *held]
        flags = dict.fromkeys(_FLAG_ATTRS, False)
        for attribute, setting in (rule.attributes or {}).items():  # a TargetRule may set a flag itself
            if attribute in flags:
                flags[attribute] = bool(setting)
        section = section_of(first)
        mods = []
        if flags["is_negated"]:  # the rule's own words negate it ('shortening NOT required'): a negation beside it
            mods.append(("NEGATED_EXISTENCE", text[start_char:end_char], start_char))
        for mod in modifiers:
            ms, me = mod.modifier_span
            last = doc[me - 1]
            mod_start, mod_end = token_starts[ms], last.idx + len(last)
            flag = CONTEXT_FLAGS.get(mod.category)
            if flag == "is_negated" and mod_end <= start_char and _closes_between(text, mod_start, start_char):
                continue  # 'MRI (in cast, no sedation) showed the head dislocated': a bracket's negation stays in it
            if flag in flags:
                flags[flag] = True
            mods.append((mod.category, text[mod_start:mod_end], mod_start))
        if policy.forms is not None and label not in ("cpt_code", "icd10_code") \
                and not _ANSWERED_BOX.search(text, start_char, end_char):  # '[ ] R  [x] L' is itself the answer
            answer = form_answer(text, end_char, policy.forms, start_char)
            if answer is not None:
                if answer[0] == "blank":  # an unfilled template field says nothing either way
                    flags["is_hypothetical"] = True
                else:
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
            flags[EPISODE_FLAG[in_block[2]]] = True
            mods.append(("BLOCK_" + in_block[2].upper(), f"{in_block[3]}: {in_block[4]}", in_block[5]))
        value = meta.get("value")
        if label in ("cpt_code", "icd10_code"):
            value = text[start_char:end_char]  # the code as read ("２７２５２" is 27252); `text` quotes it as given
        counted = not (flags["is_hypothetical"] or flags["is_family"] or flags["is_uncertain"])
        counted = counted and (not flags["is_historical"] or bool(meta.get("counts_when_historical")))
        counted = counted and (in_block is None or in_block[2] == "negated" or label in keeps.get(in_block[2], ()))
        counted = counted and section not in policy.ignore_sections
        counted = counted and (section not in policy.claim_only_sections or label in ("cpt_code", "icd10_code"))
        counted = counted and (section not in policy.field_ignore_sections.get(label, ())
                               or bool(meta.get("counts_in_any_section")))
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
        discount_overridden(out, policy.overridden_by)
    if policy.follow_up is not None:
        discount_follow_up(text, out, policy.follow_up)
    if policy.corrections is not None:
        apply_corrections(text, out, policy.corrections)
    if policy.other_site is not None:
        discount_other_site(text, out, policy.other_site)
    if policy.defined_abbreviations is not None:
        discount_defined_abbreviations(text, out, policy.defined_abbreviations)
    if policy.title_vetoes is not None:
        discount_vetoed_titles(text, out, policy.title_vetoes, header_starts)
    if policy.claims_yield is not None:
        yield_claims(text, out, policy.claims_yield)
    if policy.code_descriptors is not None:
        discount_code_descriptors(text, out, policy.code_descriptors)
    if policy.retracted_quotes is not None:
        discount_retracted_quotes(text, out, policy.retracted_quotes)
    if policy.structured_status is not None:
        discount_structured_status(text, out, policy.structured_status)
    return out




# a box ticked inside a mention ('[ ] R  [x] L'): the mention is itself a form's answer
_ANSWERED_BOX = re.compile(r"\[\s*[xX\u2713\u2714\u2022\u25cf\u25c9]\s*\]|\(\s*[xX\u2713\u2714\u2022\u25cf\u25c9]\s*\)"
                           r"|[\u2611\u2612]")
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


_MARK_REACH = 3  # characters between a tick mark and the option it marks ('[X] Sedation', 'None (x)')


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
        line_end = text.find("\n", line_start)
        line = text[line_start : line_end if line_end != -1 else len(text)]
        ticked = [(line_start + k.start(), line_start + k.end()) for k in marks.finditer(line)]
        listed = line.count("|") >= 2 or _longest_chain(text, group) >= opt.min_values
        if ticked and listed:
            # 'General | MAC | Regional | [X] Sedation | None': the option a mark sits against is the answer; the
            # other options printed on the line are not, whether or not the ticked one is a word the rules know.
            for m in group:
                if m.counted and not any(0 <= m.start - hi <= _MARK_REACH or 0 <= lo - m.end <= _MARK_REACH
                                         for lo, hi in ticked):
                    m.counted = False
                    m.modifiers.append(("OPTION_NOT_TICKED", "(an option the form did not tick)", line_start))
            continue
        if ticked or len({m.value for m in group}) < opt.min_values or _longest_chain(text, group) < opt.min_values:
            continue
        for m in group:
            if m.counted:
                m.counted = False
                m.modifiers.append(("OPTION_LIST", "(template option list)", line_start))


def _linked(text: str, ms: list[Mention], lp: Any, fp: FieldPolicy, resolutions: list[Resolution],
            ep: Any = None) -> list[Mention]:
    """The values named right after 'sedation for the reduction:' are the act's own; when there are any, they alone
    are ranked. A cue whose attempt then failed ('... Allis x2 - UNSUCCESSFUL') names a failed attempt's anaesthesia,
    which does not decide."""
    counted = [m for m in ms if m.counted and m.value is not None and str(m.value) in fp.rank]
    if not counted:
        return ms
    tied: list[Mention] = []
    for cue in rx(lp.cue).finditer(text):
        if ep is not None:
            blank = BLANK_LINE.search(text, cue.end(), cue.end() + ep.before)
            window = text[cue.start() : blank.start() if blank is not None else cue.end() + ep.before]
            failed = rx(ep.failed).search(window)
            if failed is not None and rx(ep.succeeded).search(window, failed.end()) is None:
                continue
        line_end = text.find("\n", cue.end())
        hi = min(cue.end() + lp.reach, len(text) if line_end == -1 else line_end)
        tied += [m for m in counted if cue.start() <= m.start < hi]
    others = sorted({str(m.value) for m in counted} - {str(m.value) for m in tied}, key=fp.rank.index)
    if not tied or not others:
        return ms
    chosen = sorted({str(m.value) for m in tied}, key=fp.rank.index)
    resolutions.append(Resolution(field=lp.field, value=chosen[0], candidates=sorted({*chosen, *others},
                                                                                     key=fp.rank.index),
                                  reason=lp.reason))
    return tied


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
    present = {str(m.value) for m in counted if m.meta.get("decisive")}
    counted = [m for m in counted if not present.intersection(m.meta.get("yields_to") or ())] or counted
    direct = [m for m in counted if not m.meta.get("from_code") and not m.meta.get("fallback")
              and m.section not in fp.fallback_sections]
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




def _side(ms: list[Mention], prefer: list[list[str]], reason: str, codes: list[str], policy: FindingsPolicy,
          resolutions: list[Resolution], text: str = "", acts: Optional[list[Mention]] = None) -> str:
    counted = [m for m in ms if m.counted and m.value in ("left", "right", "bilateral")]
    if policy.normal_side is not None and text:
        normal = rx(policy.normal_side)
        affected = [m for m in counted if m.value == "bilateral" or normal.match(text, m.end) is None]
        counted = affected or counted  # 'R hip NAD' names the hip that is not the problem
    if text:
        sided = [m for m in counted if m.value == "bilateral" and _scope_only(text, m, policy)]
        counted = [m for m in counted if m not in sided] or counted  # 'EUA both hips' is what was looked at
    pool = _first_tier(counted, prefer)
    values = [m.value for m in pool]
    treated = treated_sides(text, counted, acts or [], policy.treated_side_reach) if acts else set()
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


def _scope_only(text: str, m: Mention, policy: FindingsPolicy) -> bool:
    """'EUA both hips', 'both hips examined', 'bilateral hip spica': the scope of an examination, an image or a
    device, which says nothing about which hip is dislocated and treated."""
    if policy.bilateral_scope_after is not None and rx(policy.bilateral_scope_after).match(text, m.end):
        return True
    if policy.bilateral_scope_before is None:
        return False
    lo = max(text.rfind("\n", 0, m.start) + 1, m.start - policy.bilateral_scope_before_reach)
    return rx(policy.bilateral_scope_before).search(text[lo:m.start]) is not None


_SAME_CLAUSE = re.compile(r"[^\n.;]*")


def _discount_other_side(side: str, mentions: list[Mention], policy: FindingsPolicy, text: str) -> None:
    """'L THA 2021' in a note about a right hip dislocation says nothing about the right hip."""
    if side not in ("left", "right"):
        return
    sides = [m for m in mentions if m.field == "laterality" and m.value in ("left", "right")]
    for m in mentions:
        if not m.counted or str(m.value) not in policy.side_specific.get(m.field, []):
            continue
        own = [s.value for s in sides if s.start < m.end and m.start < s.end]
        if not own:
            # 'R hip - previous THR': the side named just before it on the same line, in the same sentence.
            before = [s for s in sides if s.end <= m.start and m.start - s.end <= policy.treated_side_reach]
            if before and _SAME_CLAUSE.fullmatch(text, before[-1].end, m.start) is not None:
                own = [before[-1].value]
            elif policy.side_named_after is not None:  # 'Hip-TEP LEFT 2016', 'THR (right)': the side right after it
                after = rx(policy.side_named_after, 0).match(text, m.end)
                if after is not None:
                    own = ["left" if after.group("left") else "right"]
        if own and own[0] != side:
            m.counted = False
            m.modifiers.append(("OTHER_SIDE", f"(other side: {own[0]})", m.start))


def _film_report(text: str, m: Mention, films: list[int], pre: Any, post: Any) -> Optional[str]:
    """What a film's own report says, from the film to the end of its line or the next film: the hip out (before
    the reduction) or back in (after it); None when it says neither or both."""
    end = text.find("\n", m.end)
    end = len(text) if end == -1 else end
    k = bisect.bisect_right(films, m.start)
    if k < len(films) and films[k] < end:
        end = films[k]
    out, back = pre.search(text, m.end, end) is not None, post.search(text, m.end, end) is not None
    return "pre" if out and not back else "post" if back and not out else None


def _imaging(mentions: list[Mention], policy: FindingsPolicy, text: str = "") -> list[tuple[Mention, Optional[str]]]:
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
    films = sorted(m.start for m in mentions if m.field == "imaging")
    report_pre = rx(ip.report_pre) if ip.report_pre else None
    report_post = rx(ip.report_post) if ip.report_post else None
    for m in mentions:
        if m.field != "imaging":
            continue
        when: Optional[str] = None
        cues = [(abs(start - m.start), cat) for cat, _, start in m.modifiers
                if cat in ("PRE_REDUCTION", "POST_REDUCTION")]
        report = _film_report(text, m, films, report_pre, report_post) \
            if not cues and report_pre is not None and report_post is not None and text else None
        if cues:
            when = "pre" if min(cues)[1] == "PRE_REDUCTION" else "post"
        elif report is not None:  # the film's own report: 'Rö Becken (20:52): head dislocated'
            when = report
        elif m.section in ip.pre_sections:
            when = "pre"
        elif m.section in ip.post_sections:
            when = "post"
        elif event is not None:
            when = "pre" if m.start < event else "post"
        placed.append((m, when))
    return placed


def _line_sides(text: str, pos: int, sides: list[Mention]) -> set[str]:
    """The sides named (not negated) on the line holding `pos`."""
    lo, hi = text.rfind("\n", 0, pos) + 1, text.find("\n", pos)
    hi = len(text) if hi == -1 else hi
    return {str(m.value) for m in sides if lo <= m.start < hi and m.value is not None and not m.flags["is_negated"]}


def extract(doc: Doc, book: Rulebook) -> tuple[Findings, list[Evidence], list[Resolution]]:
    """Resolve all mentions in a processed Doc into Findings, Evidence and the reasons for each conflict."""
    policy = book.findings
    mentions = _mentions(doc, policy)
    resolutions: list[Resolution] = []
    by_field: dict[str, list[Mention]] = {}
    for m in mentions:
        by_field.setdefault(m.field, []).append(m)
    rows: list[dict[str, Any]] = []
    # Codes are read from the matching copy: a full-width "２７２５２" is the code 27252.
    read = matching_text(doc).text
    icd = []
    for m in by_field.get("icd10_code", []):
        code = read[m.start : m.end].upper()
        if m.counted and code not in icd:
            icd.append(code)
    cpt = []
    for m in by_field.get("cpt_code", []):
        code = read[m.start : m.end]
        if m.counted and code not in cpt:
            cpt.append(code)

    if policy.dated_acts is not None and policy.imaging.encounter_date:
        discount_dated_acts(read, mentions, policy.dated_acts, policy.imaging.encounter_date,
                            policy.imaging.encounter_date_reach, policy.imaging.same_day)
    treated = [name for name, acts in policy.treated_fallback.items()
               if any(m.counted and m.value not in (None, False, "false")
                      and m.section not in policy.treated_fallback_skip_sections
                      for a in acts for m in by_field.get(a, []))]
    keep_past = rx(policy.treated_fallback_keep)
    for name in [*policy.historical_fallback, *treated]:
        ms = by_field.get(name, [])
        if ms and not any(m.counted for m in ms):
            for m in ms:
                if only_historical(m, policy) and (name in policy.historical_fallback or not any(
                        keep_past.search(text) for cat, text, _ in m.modifiers if cat == "HISTORICAL")):
                    m.counted = True
                    m.modifiers.append(("HISTORICAL_FALLBACK", "(nothing current; the past state stands)", m.start))
    wd = policy.working_diagnosis_fallback
    if wd is not None and any(m.counted and m.value not in (None, False, "false") and not m.meta.get("implied")
                              for a in wd.acts for m in by_field.get(a, [])):
        for name in wd.fields:
            ms = by_field.get(name, [])
            if ms and not any(m.counted for m in ms):
                for m in ms:
                    if only_queried(m, policy):
                        m.counted = True
                        m.modifiers.append(("WORKING_DIAGNOSIS", "(nothing confirmed; the hip was treated for "
                                            "this working diagnosis)", m.start))
    for name, kept in policy.planned_state_fallback.items():
        ms = by_field.get(name, [])
        if ms and not any(m.counted for m in ms):
            for m in ms:
                if str(m.value).lower() in kept and only_planned(m, policy):
                    m.counted = True
                    m.modifiers.append(("PLANNED_STATE_FALLBACK", "(a plan treats this condition; it is the "
                                        "patient's)", m.start))
    ar = policy.arrived_reduced
    arrived_at = discount_arrived_reduced(read, mentions, ar) if ar is not None else None
    for vs in policy.last_statement_wins_values:
        # The last plain statement of this value (done, or explicitly not done) decides, as for the booleans below.
        negated_rules = rx(vs.negated_rules)
        said = [m for m in by_field.get(vs.field, []) if str(m.value).lower() == vs.value and (
            m.counted or (plain_negative(m) and m.section not in vs.skip_sections
                          and negated_rules.search(m.rule) is not None))]
        if said and not said[-1].counted:
            # 'Right hip: open reduction ...' then 'Left hip: ... open reduction was not required': another side's
            # statement; a side named on the negation's line must be the side named on the mention's line
            denied = _line_sides(read, said[-1].start, by_field.get("laterality", []))
            for m in said[:-1]:
                if m.counted and not (denied and _line_sides(read, m.start, by_field.get("laterality", [])) - denied):
                    m.counted = False
                    m.modifiers.append(("LATER_NEGATION", f"(later: not done @{said[-1].start})", said[-1].start))
    values: dict[str, Any] = {}
    # The treated side is resolved first: side-specific mentions (a THA on the other hip) are discounted against it.
    for name, fp in policy.fields.items():
        if fp.kind == "side":
            acts = [m for f in policy.treated_side_acts for m in by_field.get(f, [])
                    if m.counted and m.value not in (None, False, "false")]
            values[name] = _side(by_field.get(name, []), fp.prefer_sections, fp.reason, icd, policy, resolutions,
                                 read, acts)
            _discount_other_side(values[name], mentions, policy, read)
    for name, fp in policy.fields.items():
        ms = by_field.get(name, [])
        if policy.linked is not None and name == policy.linked.field:
            ms = _linked(read, ms, policy.linked, fp, resolutions, policy.events)
        if fp.kind == "ranked":
            values[name] = _ranked(name, ms, fp, resolutions)
        elif fp.kind == "set":
            seen: list[str] = []
            for m in _first_tier([m for m in ms if m.counted], fp.prefer_sections):
                if m.value is not None and m.value not in seen:
                    seen.append(str(m.value))
            values[name] = seen
    if ar is not None and arrived_at is not None and values.get(ar.field) != "false":
        resolutions.append(Resolution(field=ar.field, value="false",
                                      candidates=sorted({values.get(ar.field) or "unstated", "false"}),
                                      reason=ar.reason))
        values[ar.field] = "false"
    events: list[ReductionEvent] = []
    if policy.events is not None:
        rank = policy.fields["anesthesia"].rank
        events = reduction_events(read, by_field, policy.events, rank)
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
        # ... or when the chosen value was named with a failed attempt and a later attempt succeeded under another.
        named_failed = chosen is not None and failed_spans and deciding is not None \
            and deciding.outcome == "succeeded" and any(
                in_failed(m.start) for m in by_field.get("anesthesia", []) if m.counted and m.value == chosen)
        if (only_failed or named_failed) and deciding is not None and deciding.anesthesia != "unknown" \
                and chosen != deciding.anesthesia:
            resolutions.append(Resolution(field="anesthesia", value=deciding.anesthesia,
                                          candidates=sorted({values.get("anesthesia") or "unknown",
                                                             deciding.anesthesia}),
                                          reason=policy.events.reason))
            values["anesthesia"] = deciding.anesthesia
    for promo in policy.promotions:
        promote(values, by_field, promo, read, resolutions)
    for c in policy.consequences:
        if values.get(c.field) is None and all(values.get(k) == v for k, v in c.when.items()) \
                and any(m.counted and m.value not in (None, False, "false") for m in by_field.get(c.needs, [])) \
                and not any(m.counted for f in c.unless for m in by_field.get(f, [])):
            values[c.field] = c.value
            resolutions.append(Resolution(field=c.field, value=c.value, candidates=[c.value], reason=c.reason))
    booleans = {name: any(m.counted for m in by_field.get(name, [])) for name in policy.booleans}
    for name in policy.last_statement_wins:
        # The last plain statement (done, or explicitly not done) decides; plans, history and doubt are not statements.
        said = [m for m in by_field.get(name, []) if m.counted or plain_negative(m)]
        if said and booleans.get(name) and not said[-1].counted:
            booleans[name] = False
            for m in said[:-1]:
                if m.counted:
                    m.counted = False
                    m.modifiers.append(("LATER_NEGATION", f"(later: not done @{said[-1].start})", said[-1].start))

    imaging_pre = imaging_post = fluoroscopy = False
    # Imaging is before or after a reduction of this encounter; with no reduction act at all, there is no "before".
    acts = policy.imaging.act_fields
    reduced_here = not acts or any(m.counted and m.field in acts and m.value not in (None, False, "false")
                                   and not m.meta.get("implied") for m in mentions)
    # ... nor when the encounter's act is not a reduction: the hip was found reduced and nobody manipulated it, or
    # the operation was an arthroplasty.
    if reduced_here and any(m.counted for f in policy.imaging.no_act_fields for m in by_field.get(f, [])) \
            and values.get("manipulation") != "true":
        reduced_here = False
    if values.get("manipulation") == "false":  # a device fitted with no manoeuvre: no reduction to be before or after
        reduced_here = False
    earlier_visit = rx(policy.imaging.earlier_visit) if policy.imaging.earlier_visit else None
    order = date_order(read) if policy.imaging.encounter_date else None
    began = encounter_start(read, policy.imaging.encounter_date, policy.imaging.encounter_date_reach, order) \
        if policy.imaging.encounter_date else None
    for m, when in _imaging(mentions, policy, read):
        if earlier_visit is not None and m.counted and any(
                cat == "HISTORICAL" and earlier_visit.search(cue) for cat, cue, _ in m.modifiers):
            # A film from an earlier visit ('US last week', 'MRI in August') is not imaging of this encounter.
            m.counted = False
            m.modifiers.append(("EARLIER_VISIT", "(imaging from an earlier visit)", m.start))
        # A film labelled as the work-up for this reduction ('Pre-op imaging: AP pelvis 2025-01-14') is its, whatever
        # its date.
        ip = policy.imaging
        work_up = m.section in ip.post_sections or m.section in ip.work_up_sections or (
            ip.work_up_cue is not None
            and any(cat == "PRE_REDUCTION" and rx(ip.work_up_cue).search(cue) for cat, cue, _ in m.modifiers))
        if began is not None and m.counted and not work_up:
            dated = dated_before(read, m, began, ip.earlier_days, order, ip.same_day)
            if dated is not None:  # 'Ultrasound 2024-05-03 (age 4 wk)' in a note of 2024-06-10
                m.counted = False
                m.modifiers.append(("EARLIER_VISIT", f"(dated {dated}, before this encounter)", m.start))
        field_name = f"imaging_{when}" if when and m.counted else "imaging"
        rows.append(m.evidence_row(field_name))
        both = m.counted and m.value in policy.imaging.both_values
        if m.counted and reduced_here and (when == "pre" or both):
            imaging_pre = True
        if m.counted and reduced_here and (when == "post" or both):
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
    # A dysplastic or prosthetic hip that was reduced was dislocated, however the note words it ('Graf IV', 'head
    # high', 'came out of place'); a traumatic reduction may be another joint's, so it needs the hip named.
    etiology = values.get("etiology")
    # An open reduction of a dysplastic hip ('head reduced easily' after the capsule was opened) shows it was out; a
    # closed 'hip reduced' may be the state an ultrasound found.
    shown_by = ["manipulation", "reduction"] if etiology in policy.reduction_shows_dislocation \
        and values.get("approach") == "open" else ["manipulation"]
    hip_reduced = manipulation == "true" and etiology in policy.reduced_means_dislocated and any(
        m.counted and m.value in ("true", True) and not m.meta.get("implied")
        for f in shown_by for m in by_field.get(f, []))
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
        hip_dislocation=booleans.get("hip_dislocation", False) or hip_reduced,
        reduction=booleans.get("reduction", False),
        no_reduction=any(m.counted for m in by_field.get("no_reduction", [])) or arrived_at is not None,
        arthroplasty_performed=booleans.get("arthroplasty_performed", False),
        cpt_codes=cpt,
        icd10_codes=icd,
        events=events,
    )
    # An encounter with no reduction of its own (it ended in a revision; the hip was already reduced) documents no
    # reduction's approach, anaesthesia or imaging: the policy's resets apply, each with its reason.
    for rule in policy.no_event:
        if all(c.holds(getattr(findings, c.finding)) for c in rule.when):
            changed = {k: v for k, v in rule.reset.items() if getattr(findings, k) != v}
            for name, value in changed.items():
                resolutions.append(Resolution(field=name, value=_shown(value),
                                              candidates=sorted({_shown(getattr(findings, name)), _shown(value)}),
                                              reason=rule.reason))
            findings = findings.model_copy(update=changed)
    return findings, evidence, resolutions


def _shown(value: Any) -> str:
    return "unstated" if value is None else str(value).lower()


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
