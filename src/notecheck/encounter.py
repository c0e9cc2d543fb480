"""The encounter model: which episode of care a mention belongs to, and which reduction attempt decides.

Block context (past history, options and consent, copied text, another hospital), form answers, follow-up visits,
reduction events and the conflict rules that need more than one mention. Every policy is data in patterns/; these
functions read mentions and write their flags, never a Doc, so extraction stays the only spaCy-facing stage.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import re
from typing import Any, Iterator, Optional

from notecheck.mentions import Mention
from notecheck.models import ReductionEvent, Resolution
from notecheck.pipeline import HANGING_WORDS
from notecheck.rulebook import (
    BlockPolicy,
    ChronologyPolicy,
    FindingsPolicy,
    FormPolicy,
    PatientListPolicy,
    TitleVetoPolicy,
)

EPISODE_FLAG = {"prior": "is_historical", "later": "is_historical", "elsewhere": "is_historical",
                 "planned": "is_hypothetical", "generic": "is_hypothetical", "spoken": "is_hypothetical",
                 "negated": "is_negated", "considered": "is_uncertain", "claim": "is_uncertain",
                 "other_patient": "is_family"}
Block = tuple[int, int, str, str, str, int]  # start, end, episode, rule id, cue text, cue start
_I, _IM = re.IGNORECASE, re.IGNORECASE | re.MULTILINE


@functools.lru_cache(maxsize=256)
def rx(pattern: str, flags: int = _I) -> re.Pattern[str]:
    """A policy regex compiled once, keyed by its text (rule files are data; the same text compiles the same)."""
    return re.compile(pattern, flags)

BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")
CLAUSE_BREAK = re.compile(r"\n|[.;](?:\s|$)")


def _block_regexes(bp: BlockPolicy) -> tuple[Any, Any, list[Any]]:
    """One alternation over every block cue (one scan of the note), the labelled-line regex and the end markers."""
    cues = "|".join(f"(?P<b{i}>{r.pattern})" for i, r in enumerate(bp.rules) if r.line_start)
    # Matched at line starts only (a few dozen tries per note, not one per character).
    scan = rx(r"[ \t]*(?:[-*\u2022>]+[ \t]*|\d{1,2}[.)](?!\d)[ \t]*)?(?:" + cues + ")", _IM)
    return scan, rx(bp.label_line, _IM), [rx(r.until, _IM) if r.until else None for r in bp.rules]


_BULLET = re.compile(r"[ \t]*([-*\u2022>]|\d{1,2}[.)])[ \t]")


def find_blocks(text: str, header_starts: list[int], bp: BlockPolicy) -> list[Block]:
    """Blocks whose label or marker puts them in another episode. A block runs from its cue to the first blank line,
    the next section header or (when the cue line carries its own text) the next labelled line; a rule's `until`
    marker closes a copied block instead, across blank lines and headers."""
    scan, label, until = _block_regexes(bp)
    heading = rx(bp.heading_line, re.MULTILINE) if bp.heading_line else None
    present = rx(bp.present_item, _IM) if bp.present_item else None
    out: list[Block] = []
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
            if blanks is None:
                blanks = [m.start() for m in BLANK_LINE.finditer(text)]
            end = _heading_end(line_end, len(text), blanks, header_starts)
            own_text = text[found.end():line_end].strip(" \t:-*")
            if not own_text and rule.episode == "planned" and present is not None:
                now = present.search(text, line_end + 1, end)
                if now is not None:  # 'Plan discussed:' ... '- Now: admitted for traction': today's item
                    end = now.start()
            if rule.spans_paragraphs and heading is not None and not own_text:
                nxt_heading = heading.search(text, line_end + 1)
                k_h = bisect.bisect_right(header_starts, line_end)
                end = min(nxt_heading.start() if nxt_heading is not None else len(text),
                          header_starts[k_h] if k_h < len(header_starts) else len(text))
            if rule.own_line and own_text:
                end = line_end
            elif own_text and rule.inline_sentence and _ends_sentence(text, line_end):
                end = line_end  # 'Consent: open reduction, risks AVN.' then 'GA + caudal.': a sentence's block
            elif own_text:  # the cue line has its own text: a label, not a heading
                nxt = label.search(text, line_end + 1, end) if line_end < end else None
                if nxt is not None:
                    end = nxt.start()
                bullet = _BULLET.match(text, start)
                if bullet is not None:  # a list item's block ends where the next item of the list begins
                    mark = bullet.group(1)
                    mark = r"\d{1,2}[.)]" if mark[0].isdigit() else re.escape(mark)
                    item = rx(r"^[ \t]*" + mark + r"[ \t]", _IM).search(text, line_end + 1, end)
                    if item is not None:
                        end = item.start()
        out.append((start, end, rule.episode, rule.id, text[start:line_end].strip()[:60], start))
    for rule in bp.rules:
        if rule.quoted:
            for cue in _inline_cues(text, "(?:" + rule.pattern + ")" + _QUOTE_OPENS, rule.inline_anchor):
                close = _QUOTE_CLOSES.search(text, cue.end(), cue.end() + _QUOTE_REACH)
                if close is not None:
                    out.append((cue.start(), close.end(), rule.episode, rule.id, cue.group(0).strip()[:60],
                                cue.start()))
        if rule.inline_sentence:
            for cue in _inline_cues(text, rule.pattern, rule.inline_anchor):
                if rule.line_start and not text[text.rfind("\n", 0, cue.start()) + 1 : cue.start()].strip():
                    continue  # at a line start: the line-start reading above has it
                end = _sentence_stop(text, cue.end())
                if not text[cue.end() : end].strip() and text[cue.end() - 1 : cue.end()] in ":-":
                    # 'The case was discussed. Options discussed:' ends its line: the list below is the block,
                    # to the blank line or the next section header, as for a heading
                    if blanks is None:
                        blanks = [m.start() for m in BLANK_LINE.finditer(text)]
                    end = _heading_end(cue.end(), len(text), blanks, header_starts)
                out.append((cue.start(), end, rule.episode, rule.id, cue.group(0).strip()[:60], cue.start()))
    if bp.chronology is not None:
        out.extend(_earlier_entries(text, bp.chronology))
    if bp.patients is not None:
        out.extend(_other_patients(text, bp.patients))
    out.sort(key=lambda b: b[0])
    return out


_NEXT_SENTENCE = re.compile(r"\n[ \t]*[A-Z]")


def _ends_sentence(text: str, line_end: int) -> bool:
    """A line that closes with a full stop, the next line opening a new sentence (a capital, not a list item)."""
    line = text[text.rfind("\n", 0, line_end) + 1 : line_end].rstrip()
    return line.endswith(".") and not line.endswith("..") and _NEXT_SENTENCE.match(text, line_end) is not None


def _heading_end(pos: int, text_end: int, blanks: list[int], header_starts: list[int]) -> int:
    """Where a heading's block ends: the first blank line or section header after `pos`."""
    end = text_end
    i = bisect.bisect_left(blanks, pos)
    if i < len(blanks):
        end = blanks[i]
    k_h = bisect.bisect_right(header_starts, pos)
    if k_h < len(header_starts):
        end = min(end, header_starts[k_h])
    return end


def _earlier_entries(text: str, cp: ChronologyPolicy) -> list[Block]:
    """The entries of a dated chronology written before the encounter under review (or well after it): the entry its
    first line marks as the one at issue, else the header's date of service. Each entry runs to the next entry or
    blank line."""
    entries = list(rx(cp.entry, _IM).finditer(text))
    if len(entries) < 2:
        return []
    order = date_order(text)
    dated = []
    for i, m in enumerate(entries):
        found = _FULL_DATE.match(text, m.start("date"))
        readings = _readings(found, order) if found is not None else []
        if not readings:
            continue
        end = entries[i + 1].start() if i + 1 < len(entries) else len(text)
        blank = BLANK_LINE.search(text, m.end(), end)
        line_end = text.find("\n", m.start())
        line_end = len(text) if line_end == -1 else line_end
        dated.append((m.start(), blank.start() if blank is not None else end, readings, text[m.start() : line_end]))
    marker = rx(cp.index_marker)
    marked = [e for e in dated if marker.search(e[3])]
    began = min(marked[0][2]) if marked else encounter_start(text, cp.service_date, cp.service_date_reach, order)
    if began is None:
        return []
    out: list[Block] = [(start, end, "prior", "B-CHRONOLOGY", line.strip()[:60], start)
                        for start, end, readings, line in dated if _day(max(readings)) <= _day(began) - cp.earlier_days]
    if cp.later_days is not None:
        out += [(start, end, "later", "B-CHRONOLOGY", line.strip()[:60], start)
                for start, end, readings, line in dated if _day(min(readings)) >= _day(began) + cp.later_days]
    return out


def _other_patients(text: str, pp: PatientListPolicy) -> list[Block]:
    """The items of a multi-patient document other than the one the question is about. Nothing is blocked unless
    two or more patient items are found and exactly one of them is marked, or named above the list, as the index."""
    items = list(rx(pp.item, _IM).finditer(text))
    if len(items) < 2:
        return []
    lines = []
    for m in items:
        end = text.find("\n", m.start())
        lines.append(text[m.start() : len(text) if end == -1 else end])
    marker = rx(pp.index_marker)
    index = [k for k, line in enumerate(lines) if marker.search(line)]
    surname, not_names = rx(pp.surname), set(pp.not_names)
    if len(index) != 1:
        numbers: set[str] = set()
        names: set[str] = set()
        for cue in rx(pp.header_cue, _IM).finditer(text, 0, items[0].start()):
            line = cue.group(0)
            numbers |= {n.group("num").upper() for n in rx(pp.header_number).finditer(line)}
            names |= {w.group(0) for w in surname.finditer(line) if w.group(0) not in not_names}
        if numbers or names:
            index = [k for k, (m, line) in enumerate(zip(items, lines))
                     if (m.groupdict().get("num") or "").upper() in numbers
                     or any(w.group(0) in names for w in surname.finditer(line))]
    if len(index) != 1:
        return []
    # the index patient may have a summary line and a full entry further down ('1. SEKIBO, Daniel (INDEX)')
    own = {w.group(0) for w in surname.finditer(lines[index[0]])
           if w.group(0) not in not_names and len(w.group(0)) > 3}  # not a record prefix ('CHI 2807240561')
    ours = {k for k, line in enumerate(lines)
            if k == index[0] or own & {w.group(0) for w in surname.finditer(line)}}
    stop = rx(pp.until, _IM)
    out: list[Block] = []
    for k, m in enumerate(items):
        end = items[k + 1].start() if k + 1 < len(items) else len(text)
        divider = stop.search(text, m.end(), end)
        if divider is not None:
            end = divider.start()
        if k not in ours:
            out.append((m.start(), end, "other_patient", "B-OTHER-PATIENT", lines[k].strip()[:60], m.start()))
    return out


# How far before and after an anchor word a mid-line cue may begin and end.
_ANCHOR_BACK, _ANCHOR_AHEAD = 100, 240


def _inline_cues(text: str, cue_pattern: str, anchor_pattern: Optional[str]) -> list[re.Match[str]]:
    """A block rule's cues anywhere in the note. With an anchor, only the stretches around the anchor's matches are
    searched (a cue always contains its anchor), which keeps a pattern that may begin at any word cheap."""
    pattern = rx(cue_pattern, _I)
    if anchor_pattern is None:
        return list(pattern.finditer(text))
    cues: list[re.Match[str]] = []
    done = 0  # cues found so far end here; the next must begin at or after it
    for anchor in rx(anchor_pattern, _I).finditer(text):
        if anchor.end() <= done:
            continue
        begin = max(done, anchor.start() - _ANCHOR_BACK)
        while begin > done and (text[begin - 1].isalnum() or text[begin - 1] in "_'"):
            begin -= 1  # never start mid-word
        for cue in pattern.finditer(text, begin, min(len(text), anchor.end() + _ANCHOR_AHEAD)):
            if cue.start() > anchor.start():
                break
            if cue.end() >= anchor.end():
                cues.append(cue)
                done = cue.end()
                break
    return cues


# A copy cue and what it quotes ('carried forward from 11/25/2024 visit: "..."'): the cue's words, a short tail to a
# colon, and the opening quotation mark; the quotation runs to its closing mark within the paragraph.
_QUOTE_OPENS = r"""[^\n"“]{0,40}?[:,]?[ \t]*["“]"""
_QUOTE_CLOSES = re.compile(r"""["”]|\n[ \t]*\n""")
_QUOTE_REACH = 3000
# Where a mid-line labelled block ends: a full stop before a capital, or the end of the line unless the line is
# hard-wrapped mid-sentence (long, no closing punctuation, the next line going on in lower case).
_SENTENCE_STOP = re.compile(r"\.(?=\s+[A-Z])|\n")
_WRAPPED_LINE_MIN = 60  # as the sentence splitter reads a hard-wrapped line


def _sentence_stop(text: str, pos: int) -> int:
    """Where the sentence holding `pos` ends, reading hard-wrapped lines as one sentence."""
    for stop in _SENTENCE_STOP.finditer(text, pos):
        if stop.group() == "\n":
            line = text[text.rfind("\n", 0, stop.start()) + 1 : stop.start()].rstrip()
            wrapped = len(line) >= _WRAPPED_LINE_MIN and line[-1:] not in ".:;!?"
            hangs = line[line.rfind(" ") + 1 :].lower() in HANGING_WORDS  # '... in 2023 our' / '12-year-old ...'
            if wrapped and (text[stop.end() : stop.end() + 1].islower() or hangs):
                continue
        return stop.start()
    return len(text)


_ALIGN = re.compile(r"[ \t]*(?:\.{3,}[ \t]*)?[:?=]?[ \t]*")  # dot leaders line answers up too ('GA ..... NO')
_FORM_LINE = 240  # an answer sits on the label's line, within this many characters
# the rest of a label to its colon or its dot leaders ('GA conversion ...... Value: No')
_LINE_LABEL_TAIL = re.compile(r"(?:[ \t]*\([^)\n]{0,30}\))?(?:[ \t]+[A-Za-z][A-Za-z /&()'-]{0,48}?)?"
                              r"(?=[ \t]*(?::|\.{3,}))")
_LABEL_TAIL = re.compile(r"[ \t]*(?:/|,|&|\)|\band\b|\bor\b)[ \t]*[A-Za-z][A-Za-z /&()-]{0,40}?(?=[ \t]*:)", re.I)
_ROW_LABEL_TAIL = re.compile(r"(?:[^\n\[(:\u2610\u2611\u2612]|\([^)\n]{2,30}\)){1,40}?"
                             r"(?=[ \t]{2,}[\[(\u2610\u2611\u2612])")
# a label's head before the mention: a bullet or an item number ('5.13', 'A6', 'D7)') and up to three words
_LABEL_HEAD = re.compile(r"[ \t]*(?:[-*\u2022][ \t]*|[A-Z]?\d{1,2}(?:\.\d{1,2})?[a-z]?[.)]?[ \t]+)?"
                         r"(?:[A-Za-z][A-Za-z'/-]*(?:[ \t]+[A-Za-z][A-Za-z'/-]*){0,2}[ \t]+)?")
_FORM_MARKS = frozenset("[(:?=-\u2610\u2611\u2612\u25a1\u25a0")


def form_answer(text: str, end: int, fp: FormPolicy, start: Optional[int] = None) -> Optional[tuple[str, int]]:
    """'Label: ( ) yes (x) no' or 'Label: No' right after a mention: ('negative' | 'affirmative' | 'blank', answer
    offset); 'blank' is a template field left unfilled ('Open reduction: ***').
    A label naming several things ('Manipulation/reduction manoeuvre: [x] no') answers for each of them."""
    if fp.table_done_column is not None and start is not None:
        row = _table_answer(text, start, fp)
        if row is not None:
            return row
    tail = _LABEL_TAIL.match(text, end, end + 56)
    if tail is None and start is not None:
        before = text[text.rfind("\n", 0, start) + 1 : start]
        if not before.strip(" \t-*\u2022") or _LABEL_HEAD.fullmatch(before):
            # 'Reduction attempted here: [ ] Yes [X] No', 'Sedation by anaesthesia team: [ ] Yes [x] No'
            tail = _LINE_LABEL_TAIL.match(text, end, end + 56)
        if tail is None and not _FORM_MARKS.intersection(before.replace("(", "").replace("-", "")):
            # 'Open reduction - medial (Ludloff)     [ ] Rt   [ ] Lt': a form row's label runs to its boxes
            tail = _ROW_LABEL_TAIL.match(text, end, end + 56)
    if tail is not None:
        end = tail.end()
    # The colon and the spaces that line a form's answers up in a column do not count towards the gap.
    align = _ALIGN.match(text, end, end + _FORM_LINE).end() - end
    head = text[end : end + align + fp.max_gap + 2]
    if not _FORM_MARKS.intersection(head) and "..." not in head:  # most mentions run on into prose
        return None
    line_end = text.find("\n", end, end + _FORM_LINE)
    rest = text[end : min(len(text), end + _FORM_LINE) if line_end == -1 else line_end]
    if not rest:
        return None
    res = _form_regexes(fp)
    if fp.grid_header is not None:
        grid = _grid_answer(text, end, rest, fp, res)
        if grid is not None:
            return grid
    blank = res[5].match(rest)
    if blank is not None:
        return "blank", end + blank.start("word")
    plain = res[4].match(rest)
    if plain is not None:
        return "negative", end + plain.start("word")
    if fp.option_after is not None:  # 'Yes [ ]   No [x]': the word first, its box after it
        after = rx(fp.option_after)
        if after.match(rest, align) is not None and align <= fp.max_gap:
            return _checked_answer(after.finditer(rest, align), res, end)
    options = list(res[0].finditer(rest))
    lead = rest[: options[0].start()].strip(" \t:?=-.") if options else ""
    by_side = bool(lead) and fp.side_option is not None and rx(fp.side_option).fullmatch(lead) is not None
    if by_side:
        # 'Adductor tenotomy ..... R: ( ) yes (x) no   L: ( ) yes (x) no': answered side by side; done on one side
        # is done
        lead = ""
        yes = [o for o in options if res[1].search(o.group("mark")) and res[3].match(o.group("word").strip())]
        if yes:
            return "affirmative", end + yes[0].start("word")
    if options and (options[0].start() - align > fp.max_gap or lead):
        return None
    if options and fp.side_option is not None and all(rx(fp.side_option).fullmatch(o.group("word").strip())
                                                       for o in options):
        # 'Femoral shortening   [ ] Rt   [ ] Lt': done on the side checked, on neither when none is
        ticked = [o for o in options if res[1].search(o.group("mark"))]
        if ticked:
            return "affirmative", end + ticked[0].start("word")
        return "negative", end + options[0].start("word")
    answer = _checked_answer(options, res, end)
    if answer is None and options:
        # 'Closed reduction: [ ] performed [ ] not performed   Anesthesia: ...': a question nobody answered
        # documents nothing (its options end where the line's next label begins)
        nxt = _NEXT_LABEL.search(rest, options[0].end())
        marks = _BOX_WORDS.findall(rest, 0, nxt.start() if nxt is not None else len(rest))
        if marks and not any(res[1].search(mark) for mark, _ in marks) \
                and any(res[2].match(word.strip()) for _, word in marks):
            return "blank", end + options[0].start("word")
    return answer


_NEXT_LABEL = re.compile(r"[ \t]{2,}[A-Za-z][\w /]{0,30}:")
_BOX_WORDS = re.compile(r"(\[\s*[^\]\n]?\s*\]|\(\s*[^)\n]?\s*\)|[\u2610\u2611\u2612\u25a1\u25a0])"
                        r"[ \t]*([A-Za-z][A-Za-z/ -]{0,24}?)"
                        r"(?=[ \t]*(?:[\[(\u2610\u2611\u2612\u25a1\u25a0]|$)|[ \t]{2,})")
_GRID_ROW = re.compile(r"[ \t]*(?:(?:\[\s*[^\]\n]?\s*\]|\(\s*[^)\n]?\s*\))[ \t]*){2,4}(?:\s|$)")
_GRID_BOX = re.compile(r"\[\s*[^\]\n]?\s*\]|\(\s*[^)\n]?\s*\)")


def _grid_answer(text: str, end: int, rest: str, fp: FormPolicy, res: tuple[Any, ...]) -> Optional[tuple[str, int]]:
    """'Open reduction     [ ]   [x]' under a '   Yes   No' header: the checked box's column names the answer."""
    row = _GRID_ROW.match(rest)
    if row is None:
        return None
    header = None
    for found in rx(fp.grid_header, _IM).finditer(text, max(0, end - fp.grid_reach), end):
        header = found  # the nearest header above the row
    if header is None:
        return None
    head_start = text.rfind("\n", 0, header.start()) + 1
    labels = [(w.start() - head_start + len(w.group(0)) / 2, w.group(0))
              for w in re.finditer(r"\S+(?:[ ](?!\s)\S+)?", text[head_start : header.end()])]
    row_start = text.rfind("\n", 0, end) + 1
    checked = res[1]
    for box in _GRID_BOX.finditer(rest):
        if box.start() > row.end():
            break
        if checked.search(box.group(0)):
            centre = end - row_start + box.start() + len(box.group(0)) / 2
            word = min(labels, key=lambda lab: abs(lab[0] - centre))[1]
            if res[2].match(word):
                return "negative", end + box.start()
            if res[3].match(word):
                return "affirmative", end + box.start()
            return None
    return None


_TABLE_LINE = re.compile(r"[ \t]*[|+][^\n]*[|+][^\n]*[|+][ \t]*$")  # '+---+' borders too
_TABLE_RULE = re.compile(r"[ \t]*[|+][ \t:|+=-]*-[ \t:|+=-]*[|+][ \t]*$")
_BOX_CELL = re.compile(r"\[\s*(\S?)\s*\]|\(\s*(\S?)\s*\)")
_TABLE_ROWS = 40  # lines searched above a row for its table's header


def _table_answer(text: str, start: int, fp: FormPolicy) -> Optional[tuple[str, int]]:
    """'| Femoral shortening osteotomy | Y | N |' under '| Procedure | Planned | Performed |': the row's cell in the
    column that says whether it was done answers for the row (a wrapped row continues on lines with an empty first
    cell)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    if _TABLE_LINE.fullmatch(text, line_start, line_end) is None:
        return None
    lines: list[tuple[int, str]] = []  # the table's lines from this one upwards
    pos = line_start
    while len(lines) < _TABLE_ROWS:
        end = text.find("\n", pos)
        end = len(text) if end == -1 else end
        line = text[pos:end]
        if not _TABLE_LINE.fullmatch(line):
            break
        lines.append((pos, line))
        if pos == 0:
            break
        pos = text.rfind("\n", 0, pos - 1) + 1
    header = column = None
    for k, (_, line) in enumerate(lines):
        if _TABLE_RULE.fullmatch(line) and k + 1 < len(lines):
            header = lines[k + 1][1]
            break
    if header is None:
        return None
    done = rx(fp.table_done_column)
    for k, cell in enumerate(header.split("|")):
        if done.fullmatch(cell.strip()):
            column = k
    if column is None:
        return None
    res = _form_regexes(fp)
    for row_start, line in lines:  # a wrapped row: up to its first line, the one whose first cell is filled
        if _TABLE_RULE.fullmatch(line):
            return None
        cells = line.split("|")
        if len(cells) > 1 and cells[1].strip():
            if column >= len(cells) or text.count("|", line_start, start) >= column:
                return None  # the mention is itself in the answer column (or beyond it)
            cell = cells[column]
            offset = row_start + sum(len(c) + 1 for c in cells[:column]) + len(cell) - len(cell.lstrip())
            value = cell.strip()
            box = _BOX_CELL.fullmatch(value)
            if box is not None:  # '|   [x]    |   [ ]     |': a ticked box says done, an empty one not done
                return ("affirmative" if res[1].fullmatch(box.group(1) or box.group(2) or "") else "negative"), offset
            if res[2].match(value):
                return "negative", offset
            if res[3].match(value):
                return "affirmative", offset
            return None
    return None


def _checked_answer(options: Any, res: tuple[Any, ...], end: int) -> Optional[tuple[str, int]]:
    """The last checked option that says no or yes, with its offset in the note."""
    answer = None
    for opt in options:
        if not res[1].search(opt.group("mark")):
            continue
        word = opt.group("word").strip()
        if res[2].match(word):
            answer = ("negative", end + opt.start("word"))
        elif res[3].match(word):
            answer = ("affirmative", end + opt.start("word"))
    return answer


def _form_regexes(fp: FormPolicy) -> tuple[Any, ...]:
    return tuple(rx(p) for p in (fp.option, fp.checked, fp.negative, fp.affirmative, fp.plain_answer,
                                 fp.blank_answer))


_SENTENCE_END = re.compile(r"[.!?;](?=\s)")


def _paragraph(text: str, start: int, end: Optional[int] = None) -> tuple[int, int]:
    """The blank-line-delimited paragraph around text[start:end]."""
    before = [b.end() for b in BLANK_LINE.finditer(text, 0, start)]
    after = BLANK_LINE.search(text, start if end is None else end)
    return before[-1] if before else 0, after.start() if after is not None else len(text)


def discount_follow_up(text: str, mentions: list[Mention], fu: Any) -> None:
    """A follow-up visit's note recounts the treatment it follows; only acts placed at this visit count."""
    heading, today = rx(fu.heading, _IM), rx(fu.today)
    head = text[: fu.head_chars].lower()
    found = None
    if any(word in head for word in fu.heading_words):  # most notes: no follow-up wording at all
        found = heading.search(text, 0, fu.head_chars)
    if found is not None and rx(fu.act_parts, _IM).search(text, found.end()) is not None:
        found = None  # the same document goes on to record the operation: its acts are this encounter's
    act_sections: frozenset[str] = frozenset()
    para = (0, 0)  # the no-act statement's paragraph, when that statement alone made this a follow-up
    if found is None:
        found = rx(fu.no_act, _I).search(text)
        act_sections = frozenset(fu.act_sections)
        if found is not None and fu.one_hip and rx(fu.act_parts, _IM).search(text) is not None:
            clause = 0
            for brk in CLAUSE_BREAK.finditer(text, 0, found.start()):
                clause = brk.end()
            if rx(fu.one_hip).search(text, clause, found.start()) is not None:
                found = None  # an operation's record: 'R hip - surveillance, no intervention today' is about one hip
    if found is None:
        return
    if act_sections:
        para = _paragraph(text, found.start(), found.end())
    cue = found.group(0).strip()[:60]
    # A device fitted in the no-act statement's own procedure paragraph is this visit's, with what it implies; so is
    # one in a procedure paragraph that itself says no manoeuvre was done ('Procedure: rigid abduction brace
    # applied. No reduction maneuver was performed.').
    paras = [para] + [_paragraph(text, m.start) for m in mentions
                      if m.counted and m.field in fu.negation_today_fields and m.value in (False, "false")
                      and m.section in fu.act_sections]
    own = {(m.start, m.end) for m in mentions if m.counted and m.field in fu.act_fields
           and m.section in fu.act_sections and any(lo <= m.start < hi for lo, hi in paras)}
    # A line that says an act was not done ("Reduction manoeuvre: [ ] yes [x] no") speaks of this visit too.
    negation_lines = {text.rfind("\n", 0, m.start) + 1 for m in mentions
                      if m.flags.get("is_negated") and m.field in fu.negation_today_fields}
    for m in mentions:
        if not m.counted or m.field not in fu.fields or m.value in (False, "false"):
            continue  # a 'no manoeuvre' answer speaks of this visit; only acts are the earlier treatment's
        if (m.start, m.end) in own:
            continue  # 'Procedure: Pavlik harness fitted ... No reduction manoeuvre performed today': this visit's
        start = text.rfind("\n", 0, m.start) + 1
        if start in negation_lines:
            continue
        # The act's sentence, or the line before it, must place it at this visit ('Bedside reduction by myself at
        # 0240. Sedation: ...'); 'Today pain 2/10' later in a one-line history does not reach back to the reduction
        # it recounts.
        if start > 1:  # a heading line just above ('Procedure today (ward, 13:30):') places the act too
            above = text.rfind("\n", 0, start - 1) + 1
            if text[above : start].rstrip().endswith(":"):
                start = above
        end = text.find("\n", m.end)
        end = len(text) if end == -1 else end
        stop = _SENTENCE_END.search(text, m.end, end)
        # The words that made this a follow-up visit ('seen in clinic today, six weeks after') place no act.
        if not any(not (found.start() <= t.start() < found.end())
                   for t in today.finditer(text, start, stop.start() + 1 if stop is not None else end)):
            m.counted = False
            m.modifiers.append(("FOLLOW_UP_VISIT", cue, found.start()))


def apply_corrections(text: str, mentions: list[Mention], cp: Any) -> None:
    """'Correction: ... under general anesthesia, not sedation': a corrected field's earlier mentions do not count."""
    for found in rx(cp.cue, _I).finditer(text):
        end = min(len(text), found.end() + cp.reach)
        stop = CLAUSE_BREAK.search(text, found.end(), end)  # the corrected statement is the cue's clause
        if stop is not None:
            end = stop.start()
        # A corrected value ('NOT general anesthesia') names the field as much as a new one does; a value only implied
        # by another finding ('spica' implies a closed approach) does not correct that field, nor does a correction
        # of an earlier episode ('the episode of 11/2022 was reduced under spinal, not GA'); a past fact that still
        # holds ('the left hip is a total hip arthroplasty (2015)') counts and corrects.
        fields = {m.field for m in mentions if (m.counted or m.flags.get("is_negated")) and m.field in cp.fields
                  and found.end() <= m.start < end and not m.meta.get("implied")
                  and (m.counted or not m.flags.get("is_historical"))}
        if not fields:
            continue
        cue = found.group(0).strip()[:40]
        for m in mentions:
            if m.counted and m.field in fields and m.end <= found.start():
                m.counted = False
                m.modifiers.append(("CORRECTED", f"(corrected @{found.start()}: {cue})", found.start()))


def _gap(found: Any, start: int, end: int) -> int:
    return max(found.start() - end, start - found.end(), 0)


def _nearest(pattern: Any, text: str, lo: int, hi: int, start: int, end: int) -> Any:
    """The match of the pattern within [lo, hi) nearest to the mention at [start, end)."""
    return min(pattern.finditer(text, lo, hi), key=lambda f: _gap(f, start, end), default=None)


def _clause_breaks(text: str, lo: int, hi: int) -> Iterator[re.Match[str]]:
    """CLAUSE_BREAK between lo and hi, except the line break of a hard-wrapped line (a long line ending mid-sentence,
    'Ex lap/splenectomy under' / 'GA at 19:40'): the clause goes on past it."""
    for brk in CLAUSE_BREAK.finditer(text, lo, hi):
        if brk.group(0) == "\n":
            begin = text.rfind("\n", 0, brk.start()) + 1
            before = text[begin : brk.start()].rstrip(" \t")
            if len(before) >= _WRAPPED_LINE_MIN and before[-1:].islower():
                continue
        yield brk


def discount_other_site(text: str, mentions: list[Mention], os_: Any) -> None:
    """An open reduction or a splint whose own clause names another bone ('tibial plateau fx, ORIF') and not the
    hip treats that bone."""
    site, hip = rx(os_.site), rx(os_.hip)
    worded = {f: rx(p) for f, p in os_.worded.items()}
    for m in mentions:
        if not m.counted or m.value in (None, False, "false"):
            continue
        if m.field not in os_.fields and not (m.field in worded and worded[m.field].search(m.text)):
            continue
        lo, hi = max(0, m.start - os_.reach), min(len(text), m.end + os_.reach)
        for brk in _clause_breaks(text, lo, m.start):
            lo = brk.end()
        stop = next(_clause_breaks(text, m.end, hi), None)
        if stop is not None:
            hi = stop.start()
        found = _nearest(site, text, lo, hi, m.start, m.end)
        if found is None:
            continue
        near_hip = _nearest(hip, text, lo, hi, m.start, m.end)
        # 'Radius ORIF held until hip sorted': the bone named next to the act is the one it treats.
        if near_hip is None or _gap(found, m.start, m.end) < _gap(near_hip, m.start, m.end):
            m.counted = False
            m.modifiers.append(("OTHER_SITE", f"({found.group(0)})", found.start()))


def discount_defined_abbreviations(text: str, mentions: list[Mention], da: Any) -> None:
    """Letters the note itself spells out as a name ('Castleford District Hospital (CDH)') mean that name there: a
    mention that is exactly those letters does not count, unless the spelled-out words say the same thing."""
    minor = {w.lower() for w in da.minor_words}
    defined: dict[str, tuple[int, int]] = {}
    for found in rx(da.definition, 0).finditer(text):
        words = [w for w in re.findall(r"[A-Za-z][\w'&-]*", found.group("words")) if w.lower() not in minor]
        abbr = found.group("abbr")
        for k in range(len(words) - len(abbr) + 1, -1, -1) if len(words) >= len(abbr) else ():
            if "".join(w[0] for w in words[k : k + len(abbr)]).upper() == abbr.upper():
                defined.setdefault(abbr, (found.start("words"), found.end("words")))
                break
    if not defined:
        return
    for m in mentions:
        span = defined.get(m.text.strip())
        if span is None or not m.counted:
            continue
        if any(o.field == m.field and span[0] <= o.start < span[1] for o in mentions):
            continue  # 'congenital dislocation of the hip (CDH)': the words say it too
        m.counted = False
        m.modifiers.append(("OTHER_MEANING", f"({m.text.strip()}: {da.reason})", m.start))


def discount_code_descriptors(text: str, mentions: list[Mention], cd: Any) -> None:
    """The rest of a code's line (and its wrapped continuation) describes the code: its findings are the claim's."""
    cont = rx(cd.continuation, _IM)
    spans = []
    for code in mentions:
        if code.field != "cpt_code":
            continue
        end = text.find("\n", code.end)
        end = len(text) if end == -1 else end
        # 'CPT 27259 (open treatment ... with\nfemoral shaft shortening)': a bracket opened on the code's line runs on.
        opened = text.find("(", code.end, end)
        if opened != -1 and text.find(")", opened, end) == -1:
            closed = text.find(")", end, end + 300)
            end = end if closed == -1 else closed
        while end < len(text):
            nxt = cont.match(text, end + 1)
            if nxt is None:
                break
            line_end = text.find("\n", end + 1)
            end = len(text) if line_end == -1 else line_end
        spans.append((code.end, end, code.text))

    def described(m: Mention) -> Optional[str]:
        return next((c for lo, hi, c in spans if lo <= m.start < hi), None)

    # the note speaks of the act itself, for or against ('... (her)repositie niet verricht'): the descriptor yields;
    # 'no trauma' does not say what the etiology is
    stated = {m.field for m in mentions if m.field in cd.yielding_fields and not m.meta.get("from_code")
              and (m.counted or (m.flags["is_negated"] and m.value in (True, "true"))) and described(m) is None}
    dropped: set[tuple[int, int]] = set()
    for m in mentions:
        if not m.counted or (m.field not in cd.fields and m.field not in stated):
            continue
        code = described(m)
        if code is not None:
            m.counted = False
            dropped.add((m.start, m.end))
            m.modifiers.append(("CODE_DESCRIPTOR", f"(describes code {code})", m.start))
    for m in mentions:  # what a discounted descriptor's words imply goes with them
        if m.counted and m.meta.get("implied") and (m.start, m.end) in dropped and (
                m.field in cd.fields or m.field in cd.yielding_fields):
            m.counted = False


_QUOTED = re.compile(r"[\"\u201c]([^\"\u201d\n]{1,100})[\"\u201d]")
_UNSAID_REACH = 60  # characters before a quotation searched for the words that withdraw it


def discount_retracted_quotes(text: str, mentions: list[Mention], rq: Any) -> None:
    """A quotation the note withdraws ('"... under GA" ... is no longer accurate') withdraws the words it quotes
    where they stand elsewhere in the note: the copied impression line they came from."""
    said = rx(rq.said)
    unsaid = rx(rq.unsaid) if rq.unsaid else None
    spans = []
    for found in _QUOTED.finditer(text):
        quoted = found.group(1).strip()
        if len(quoted) < rq.min_chars:
            continue
        if said.match(text, found.end()) is None and (
                unsaid is None or unsaid.search(text, max(0, found.start() - _UNSAID_REACH), found.start()) is None):
            continue
        # compiled here, not through the shared rx() cache: the pattern is the note's own words; the withdrawn
        # quotation itself is no documentation either
        source = re.compile(r"\s+".join(re.escape(w) for w in quoted.split()), re.IGNORECASE)
        spans += [(m.start(), m.end(), quoted) for m in source.finditer(text)]
        spans.append((found.start(), found.end(), quoted))
    if not spans:
        return
    for m in mentions:
        hit = next((q for lo, hi, q in spans if lo <= m.start < hi), None)
        if hit is not None and m.counted:
            m.counted = False
            m.modifiers.append(("RETRACTED", f"(withdrawn later: \"{hit[:40]}\")", m.start))


def _enclosing_braces(text: str, start: int, end: int, reach: int) -> Optional[tuple[int, int]]:
    """The innermost {...} around text[start:end], by brace depth within `reach` characters; None when unbalanced."""
    depth, lo = 0, None
    for i in range(start - 1, max(-1, start - reach - 1), -1):
        c = text[i]
        if c == "}":
            depth += 1
        elif c == "{":
            if depth == 0:
                lo = i
                break
            depth -= 1
    if lo is None:
        return None
    depth = 0
    for i in range(end, min(len(text), end + reach)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return lo, i + 1
            depth -= 1
    return None


def discount_structured_status(text: str, mentions: list[Mention], ss: Any) -> None:
    """An exported record marked not done or entered in error names an act that did not happen: its mentions (but
    the facts about the patient in `keeps`) do not count."""
    spans = []
    for found in rx(ss.status).finditer(text):
        span = _enclosing_braces(text, found.start(), found.end(), ss.reach)
        if span is not None:
            spans.append((span[0], span[1], found.group(0)))
    if not spans:
        return
    for m in mentions:
        if not m.counted or m.field in ss.keeps:
            continue
        hit = next((cue for lo, hi, cue in spans if lo <= m.start < hi), None)
        if hit is not None:
            m.counted = False
            m.modifiers.append(("RECORD_STATUS", f"({hit.strip()[:40]})", m.start))


def yield_claims(text: str, mentions: list[Mention], cy: Any) -> None:
    """'VISIT TITLE: CLOSED REDUCTION' and, in the body, 'no reduction needed or performed in clinic': with no act
    described anywhere outside title and procedure lines, the body's plain statement wins over the title's claim."""
    bare = rx(cy.bare)
    said = [m for m in mentions if m.field == cy.statement_field and m.value in (False, "false")
            and (m.counted or (m.section in cy.statement_sections and not any(m.flags.values()) and not m.modifiers))
            and not m.meta.get("implied") and bare.fullmatch(m.text.strip()) is None]
    if not said:
        return
    claim_line = rx(cy.claim_line)
    # A line that names a billed code ('procedure billing 27252 closed reduction hip') is a claim line too.
    code_lines = {text.rfind("\n", 0, m.start) + 1 for m in mentions if m.field == "cpt_code" and m.counted}
    claims = []
    for m in mentions:
        if not m.counted or m.field not in cy.fields or m.value in (None, False, "false") or m.meta.get("implied"):
            continue  # what a mention implies stands or falls with it (a harness implies closed treatment, no claim)
        line_start = text.rfind("\n", 0, m.start) + 1
        line_end = text.find("\n", m.end)
        line = text[line_start : len(text) if line_end == -1 else line_end]
        # A title is short: a 'Procedure:' line that goes on to narrate the operation is the operation's account.
        if m.section in cy.claim_sections or not any(c.islower() for c in line) or (
                len(line) <= cy.max_line and (claim_line.match(text, line_start, m.start) is not None
                                              or line_start in code_lines)):
            claims.append(m)
        else:
            return  # an act described in the body: the statement speaks of something else (another hip, a phase)
    spans = {(m.start, m.end) for m in claims}
    claims += [m for m in mentions if m.counted and m.meta.get("implied") and (m.start, m.end) in spans]
    cue = said[-1].text.strip()[:40]
    for m in claims:
        m.counted = False
        m.modifiers.append(("CLAIM_CONTRADICTED", f"(the body says: {cue})", said[-1].start))


def promote(values: dict[str, Any], by_field: dict[str, list[Mention]], promo: Any, text: str,
             resolutions: list[Resolution]) -> None:
    """'Sedation given by the anaesthetics registrar' is MAC: a resolved value becomes the more specific one when the
    finding that makes it so is stated beside one of its mentions (same paragraph, within the window)."""
    if values.get(promo.field) != promo.value:
        return
    vetoes = [v for v in by_field.get(promo.field, []) if promo.unless_value is not None and v.counted
              and v.value == promo.unless_value]
    near = sorted((n for n in by_field.get(promo.near_field, []) if n.counted and n.value == promo.near_value
                   and not any(n.end <= v.start <= n.end + promo.window
                               and BLANK_LINE.search(text, n.end, v.start) is None for v in vetoes)),
                  key=lambda n: n.start)
    near_starts = [n.start for n in near]
    for m in by_field.get(promo.field, []):
        if not m.counted or m.value != promo.value:
            continue
        first = bisect.bisect_left(near_starts, m.start - promo.window)
        for n in near[first : bisect.bisect_right(near_starts, m.end + promo.window)]:
            lo, hi = min(m.start, n.start), max(m.end, n.end)
            if hi - lo <= promo.window and BLANK_LINE.search(text, lo, hi) is None:
                values[promo.field] = promo.to
                resolutions.append(Resolution(field=promo.field, value=promo.to, candidates=[promo.value, promo.to],
                                              reason=promo.reason))
                return


# Where a sentence ends: a line break, or a full stop before a capital that does not close an initial or a title.
_SENTENCE_BREAK = re.compile(r"\n|(?<![A-Z])(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bProf)(?<!\bSt)"
                             r"[.!?]\s+(?=[A-Z(])")


def reduction_events(text: str, by_field: dict[str, list[Mention]], ep: Any, rank: list[str]) -> list[ReductionEvent]:
    """Reduction attempts in narrative order: counted anchor mentions grouped while they stay close and in one
    paragraph; each takes the anaesthesia named around it and an outcome from its own words. The last attempt that
    succeeded decides (else the last one)."""
    failed, succeeded = rx(ep.failed), rx(ep.succeeded)
    anchors = sorted((m for f in ep.anchor_fields for m in by_field.get(f, [])
                      if m.counted and m.value not in (None, False, "false")), key=lambda m: m.start)
    groups: list[list[Mention]] = []
    for m in anchors:
        if groups and m.start - groups[-1][-1].end <= ep.gap \
                and BLANK_LINE.search(text, groups[-1][-1].end, m.start) is None:
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
        for blank in BLANK_LINE.finditer(text, max(0, start - ep.before), start):
            para_start = blank.end()
        following = BLANK_LINE.search(text, end, end + ep.after)
        para_end = following.start() if following is not None else len(text)
        lo, hi = max(start - ep.before, para_start), min(end + ep.after, para_end)
        # A window that begins mid-sentence takes the whole sentence: 'In spinal anaesthesia (bupivacaine ...)' is
        # one anaesthesia, not a local agent alone.
        cut = para_start
        for brk in _SENTENCE_BREAK.finditer(text, para_start, lo):
            cut = brk.end()
        lo = cut
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


# Full dates: year first (2024-05-03), or day and month first with a 2- or 4-digit year (03.05.2024, 5/3/24). A dotted
# date is day first (European); a slashed or dashed one may be either, and both readings are kept.
_FULL_DATE = re.compile(r"(?<![\d/.-])(?:(?P<y>(?:19|20)\d\d)-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
                        r"|(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<yy>(?:19|20)\d\d|\d\d))(?![\d/.-]?\d)")


def _readings(found: re.Match[str], order: Optional[str] = None) -> list[tuple[int, int, int]]:
    """The (year, month, day) readings of a full date that are real dates; `order` ('mdy' or 'dmy'), when the note's
    other dates settle it, keeps only that reading of a slashed or dashed date."""
    if found.group("y"):
        return _valid(int(found.group("y")), [(int(found.group("m")), int(found.group("d")))])
    yy = found.group("yy")
    y = int(yy) if len(yy) == 4 else 2000 + int(yy)
    return _valid(y, _month_day(int(found.group("a")), int(found.group("b")),
                                "dmy" if found.group("sep") == "." else order))


def _month_day(a: int, b: int, order: Optional[str]) -> list[tuple[int, int]]:
    """(month, day) readings of 'a/b': the note's order when known, else both."""
    return [(a, b)] if order == "mdy" else [(b, a)] if order == "dmy" else [(a, b), (b, a)]


def _valid(year: int, pairs: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    return [(year, m, d) for m, d in pairs if 1 <= m <= 12 and 1 <= d <= 31]


def date_order(text: str) -> Optional[str]:
    """Whether the note writes month or day first, from the slashed or dashed dates only one reading fits
    ('03/18/2025' is month first); None when its dates do not say, or say both."""
    month_first = day_first = False
    for found in _FULL_DATE.finditer(text):
        if found.group("a") and found.group("sep") != ".":
            a, b = int(found.group("a")), int(found.group("b"))
            month_first |= b > 12 >= a
            day_first |= a > 12 >= b
    return "mdy" if month_first and not day_first else "dmy" if day_first and not month_first else None


def encounter_dates(text: str, label: str, reach: int,
                    order: Optional[str] = None) -> Optional[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """The earliest and the latest date the header gives the encounter ('Date of service: 06/08/2025',
    'Hospitalisation: 06-11-2023 until 22-11-2023'), each read the way that places it earliest or latest; None when
    the header names none."""
    starts, ends = [], []
    for m in rx(label, _IM).finditer(text, 0, reach):
        found = _FULL_DATE.match(text, m.start("date"))
        readings = _readings(found, order) if found is not None else []
        if readings:
            starts.append(min(readings))
            ends.append(max(readings))
    return (min(starts), max(ends)) if starts else None


def encounter_start(text: str, label: str, reach: int,
                    order: Optional[str] = None) -> Optional[tuple[int, int, int]]:
    """The earliest date the header gives the encounter, as its earliest reading; None when the header names none."""
    dates = encounter_dates(text, label, reach, order)
    return dates[0] if dates is not None else None


_DATE_REACH = 40  # a film's own date is written beside it
_SHORT_DATE = re.compile(r"[ \t]*\(?[ \t]*(?:on[ \t]+)?(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![/.]?\d)"
                         r"(?![ \t]*(?:min|sec|s\b|mGy|cm|mm|deg|°))")


def _day(ymd: tuple[int, int, int]) -> int:
    try:
        return datetime.date(*ymd).toordinal()
    except ValueError:  # 31 April: not a date, so never earlier
        return 10**9


def act_date(text: str, m: Mention, year: int, order: Optional[str] = None, same_day: Optional[str] = None,
             reach: int = _DATE_REACH) -> Optional[tuple[str, list[tuple[int, int, int]], bool]]:
    """The date written in the mention's own sentence, nearest it, with its readings ('XR 09/10/2025 07:55 -
    dislocated') and whether it is a full date; a yearless 'US 07/28' right beside the mention takes `year`. None when
    the sentence has none, or when a same-day word stands between (ED XR today - ... (THA 02/26/25))."""
    line_start = text.rfind("\n", 0, m.start) + 1
    line_end = text.find("\n", m.end)
    line_end = len(text) if line_end == -1 else line_end
    wrapped = False
    if line_start > 1 and not _SENTENCE_BREAK.search(text, line_start, m.start):
        # a hard-wrapped sentence ('Hx: R hemiarthroplasty 11/12/2024 for ...\nfx (spinal for that case)') began
        # on the line above, unless that line ended its sentence
        above = text.rfind("\n", 0, line_start - 1) + 1
        line_above = text[above : line_start - 1].rstrip()
        if len(line_above) >= _WRAPPED_LINE_MIN and line_above[-1:] not in ".;:!?" \
                and text[line_start : line_start + 1].islower():
            line_start, wrapped = above, True
    lo = line_start
    for brk in _SENTENCE_BREAK.finditer(text, line_start, m.start):
        if not (wrapped and brk.group() == "\n"):
            lo = brk.end()
    stop = _SENTENCE_BREAK.search(text, m.end, line_end)
    hi = stop.start() if stop is not None else line_end
    dates = [f for f in _FULL_DATE.finditer(text, lo, hi) if _readings(f, order)]
    if not dates:
        short = _SHORT_DATE.match(text, m.end)
        if short is None:
            return None
        readings = _valid(year, _month_day(int(short.group("a")), int(short.group("b")), order))
        return (short.group(0).strip(" \t("), readings, False) if readings else None

    def gap(f: re.Match[str]) -> int:
        return f.start() - m.end if f.start() >= m.end else m.start - f.end() + 1

    found = min(dates, key=gap)
    between = text[min(m.end, found.end()) : max(m.start, found.start())]
    if gap(found) > reach or (same_day and rx(same_day).search(between)):
        return None
    return found.group(0), _readings(found, order), True


def dated_before(text: str, m: Mention, start: tuple[int, int, int], days: int, order: Optional[str] = None,
                 same_day: Optional[str] = None, reach: int = _DATE_REACH) -> Optional[str]:
    """A date in the mention's sentence that, read either way, falls at least `days` before the encounter began (a
    film the day before an operation belongs to its admission)."""
    dated = act_date(text, m, start[0], order, same_day, reach)
    return dated[0] if dated is not None and _day(max(dated[1])) <= _day(start) - days else None


def discount_dated_acts(text: str, mentions: list[Mention], da: Any, label: str, label_reach: int,
                        same_day: Optional[str]) -> None:
    """Acts whose own clause is dated well before the encounter's header date belong to an earlier episode, and
    those dated well after its last header date to a later one, whether or not a word says so ('#1 06/20/24 -
    reduced in OR under general'; 'a repeat open reduction on 04/09/2021' in a review of the 02/18/2021 operation)."""
    order = date_order(text)
    dates = encounter_dates(text, label, label_reach, order)
    if dates is None:
        return
    began, ended = dates
    for m in mentions:
        if m.field in da.fields and m.counted and m.value not in (None, False, "false"):
            dated = act_date(text, m, began[0], order, same_day, da.reach)
            if dated is None:
                continue
            if _day(max(dated[1])) <= _day(began) - da.earlier_days:
                m.modifiers.append(("HISTORICAL", f"(dated {dated[0]}, before this encounter)", m.start))
            elif da.later_days is not None and dated[2] and _day(min(dated[1])) >= _day(ended) + da.later_days:
                # only a full date: a yearless '3/12' may be an age or a span ('spica for 3/12')
                m.modifiers.append(("HISTORICAL", f"(dated {dated[0]}, after this encounter)", m.start))
            else:
                continue
            m.counted = False
            m.flags["is_historical"] = True


def negation_is_close(m: Mention, reach: int = 12) -> bool:
    """'No femoral shortening' or 'shortening was not needed' state it; 'not tight after femoral shortening' does
    not: the negation cue must sit right beside the mention."""
    return any(cat == "FORM_NEGATIVE" or (cat == "NEGATED_EXISTENCE" and m.start - reach <= start <= m.end + reach)
               for cat, _, start in m.modifiers)


def plain_negative(m: Mention) -> bool:
    """An explicit 'not done' of a positive act: negated right beside it, and not a plan, history or doubt."""
    return m.flags["is_negated"] and not (m.flags["is_hypothetical"] or m.flags["is_historical"]
                                          or m.flags["is_uncertain"] or m.flags["is_family"]) and negation_is_close(m)


def discount_arrived_reduced(text: str, mentions: list[Mention], ar: Any) -> Optional[int]:
    """A hip that arrived reduced from elsewhere, in a note whose last plain statement is that no manoeuvre was done
    here: the acts recounted before it were the other site's. Returns where that statement starts, or None."""
    cue, past = rx(ar.elsewhere_cue), rx(ar.past_cue)

    def elsewhere(m: Mention) -> bool:
        if any(cat == "BLOCK_ELSEWHERE" for cat, _, _ in m.modifiers):
            return True  # inside another hospital's quoted or pasted report
        cues = [c for cat, c, _ in m.modifiers if cat == "HISTORICAL"]
        return any(cue.search(c) for c in cues) and not any(past.search(c) for c in cues)

    arrived = any(m.counted and m.field in ar.states for m in mentions) or any(
        m.field in ar.elsewhere_fields and not m.counted and m.flags["is_historical"] and elsewhere(m)
        for m in mentions)
    if not arrived:
        return None
    said = [m for m in mentions if m.field == ar.field and (
        m.counted or (m.value not in (None, False, "false") and plain_negative(m)))]
    if not said:
        return None
    last = said[-1]
    negative = (last.counted and str(last.value).lower() == "false") or not last.counted
    further = rx(ar.further)
    line_end = text.find("\n", last.end)
    tail = text[last.start : min(last.end + 40, len(text) if line_end < 0 else line_end)]
    here = ar.here is not None and rx(ar.here).search(tail) is not None
    if not negative or (further.search(text, max(0, last.start - 24), last.end) and not here) \
            or not rx(ar.stated).search(tail):
        return None
    for m in mentions:
        if m.counted and m.field in ar.acts and m.start < last.start and m.value not in (None, False, "false"):
            m.counted = False
            m.modifiers.append(("ARRIVED_REDUCED", f"(arrived reduced; later: not done here @{last.start})",
                                last.start))
    return last.start


_DISCOUNT_FLAGS = ("is_negated", "is_historical", "is_hypothetical", "is_uncertain", "is_family")


def _discounted_only_by(m: Mention, policy: FindingsPolicy, flag: str, block: str = "") -> bool:
    """Discounted for `flag` and for nothing else: no other flag, not in an ignored section, not in a block (other
    than `block`), an options list, another side's or overridden."""
    f = m.flags
    return (f[flag] and not any(f[other] for other in _DISCOUNT_FLAGS if other != flag)
            and m.section not in policy.ignore_sections and m.value is not None
            and not any((cat.startswith("BLOCK_") and cat != block) or cat in ("OPTION_LIST", "OVERRIDDEN",
                                                                                "OTHER_SIDE")
                        for cat, _, _ in m.modifiers))


def only_historical(m: Mention, policy: FindingsPolicy) -> bool:
    """Discounted for being in the past and for nothing else."""
    return _discounted_only_by(m, policy, "is_historical")


def only_queried(m: Mention, policy: FindingsPolicy) -> bool:
    """Discounted for a doubt cue beside it ('?anterior dislocation') and for nothing else."""
    return _discounted_only_by(m, policy, "is_uncertain")


def only_planned(m: Mention, policy: FindingsPolicy) -> bool:
    """Discounted for a plan (a cue beside it, or a booking's block: 'Diagnosis: neglected DDH R hip' on the
    theatre booking form) and for nothing else."""
    return _discounted_only_by(m, policy, "is_hypothetical", "BLOCK_PLANNED")


def discount_overridden(mentions: list[Mention], overridden_by: dict[str, list[str]]) -> None:
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


def discount_vetoed_titles(text: str, mentions: list[Mention], tv: TitleVetoPolicy,
                           header_starts: Optional[list[int]] = None) -> None:
    """'Open reduction NOT required' in the body: a title or procedure line above it that names an open reduction is
    what was booked, not what was done. Only plain negations veto (not a plan, a history or another person's), and
    only what stands before them: a negation in the history does not undo the operation described after it. A body
    line saying no such act was done here ('hip found reduced on arrival') vetoes the acts a title names, and a
    short first line's anaesthesia the body never names ('... UNDER GA' over ketamine sedation) is the booking's."""
    heads = header_starts or []

    def in_title_section(m: Mention) -> bool:
        """In a title section, near its header: a long 'Procedure:' section narrating the operation is body."""
        if m.section not in tv.title_sections:
            return False
        if tv.title_reach is None:
            return True
        k = bisect.bisect_right(heads, m.start) - 1
        return k < 0 or m.start - heads[k] <= tv.title_reach

    last: dict[tuple[str, str], int] = {}
    none_done = -1
    for m in mentions:
        if m.counted and any(
                m.field == fv.field and (fv.value is None or str(m.value).lower() == fv.value) for fv in tv.none_done):
            none_done = max(none_done, m.start)
        if (m.field in tv.fields and m.value is not None and not in_title_section(m)
                and m.section not in tv.negation_ignore_sections
                and m.flags.get("is_negated") and not (m.flags.get("is_hypothetical") or m.flags.get("is_historical")
                                                       or m.flags.get("is_family") or m.flags.get("is_uncertain"))
                and not any(cat.startswith("BLOCK_") for cat, _, _ in m.modifiers)):
            key = (m.field, str(m.value))
            last[key] = max(last.get(key, -1), m.start)
    lead = len(text) - len(text.lstrip())
    first_line = text.find("\n", lead) if tv.first_line_is_title else -1
    title_line = rx(tv.title_line, _I) if tv.title_line else None

    caps: list[tuple[int, int]] = []  # title lines in capitals near the top
    pos = 0
    for _ in range(tv.title_caps_lines):
        end = text.find("\n", pos)
        end = len(text) if end == -1 else end
        line = text[pos:end]
        words = [w for w in re.findall(r"[^\W\d_]+", line) if len(w) > 1]
        if len(words) >= 3 and all(w.isupper() for w in words) and len(line.strip()) <= tv.title_max_chars:
            caps.append((pos, end))
        if end >= len(text):
            break
        pos = end + 1

    def on_first_line(m: Mention) -> bool:
        return m.end <= first_line or any(lo <= m.start and m.end <= hi for lo, hi in caps)

    def titled(m: Mention) -> bool:
        return in_title_section(m) or on_first_line(m) or (
            title_line is not None and title_line.match(text, text.rfind("\n", 0, m.start) + 1, m.start) is not None)

    short_first_line = 0 <= first_line - lead <= tv.title_max_chars

    def short_title(m: Mention) -> bool:
        """A short first line, or a short labelled title line ('PROCEDURE NOTE: CLOSED REDUCTION UNDER GA')."""
        if m.end <= first_line:
            return short_first_line
        if on_first_line(m):
            return True  # a title line in capitals is short by construction
        if title_line is None:
            return False
        start = text.rfind("\n", 0, m.start) + 1
        end = text.find("\n", m.end)
        return (len(text) if end == -1 else end) - start <= tv.title_max_chars and \
            title_line.match(text, start, m.start) is not None

    body: dict[str, set[str]] = {}
    if tv.body_decides:
        for m in mentions:
            # only what the body states names a value: 'spica' implies a closed approach, it does not name one
            if m.counted and m.field in tv.body_decides and m.value is not None and not titled(m) \
                    and not m.meta.get("implied"):
                body.setdefault(m.field, set()).add(str(m.value))
    if not last and none_done < 0 and not body:
        return
    for m in mentions:
        if not m.counted or not titled(m):
            continue
        if m.field in body and str(m.value) not in body[m.field] and short_title(m):
            m.counted = False
            m.modifiers.append(("OVERRIDDEN", "(title vetoed: the body names another value)", m.start))
        elif m.start < last.get((m.field, str(m.value)), -1):
            m.counted = False
            m.modifiers.append(("OVERRIDDEN", "(title vetoed: the body negates it)", m.start))
        elif m.field in tv.none_vetoes and m.start < none_done and m.value not in (False, "false"):
            m.counted = False
            m.modifiers.append(("OVERRIDDEN", "(title vetoed: the body says it was not done)", none_done))


def treated_sides(text: str, pool: list[Mention], acts: list[Mention], reach: int) -> set[str]:
    """Sides named beside an act of treatment ('closed reduction of the left hip', 'L hip reduced'): the treated
    structure, which an examination of both hips or a device on both legs does not change."""
    sides = set()
    acts = sorted(acts, key=lambda a: a.start)
    starts = [a.start for a in acts]
    for m in pool:
        for a in acts[bisect.bisect_left(starts, m.start - reach) : bisect.bisect_right(starts, m.end + reach)]:
            lo, hi = min(m.start, a.start), max(m.end, a.end)
            if hi - lo <= reach and CLAUSE_BREAK.search(text, lo, hi) is None:
                sides.add(m.value)
                break
    return sides
