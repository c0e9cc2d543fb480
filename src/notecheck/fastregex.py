"""Regex matching for many rules at once, exactly as `re` would match them one by one.

- `lowered()` rewrites a pattern so that it matches lower-cased text exactly where the original matched the original
  text under re.IGNORECASE (which compares every character through case folding, 2-3x slower).
- `start_literals()` reads from the pattern where a match can begin (words, prefixes, digits, literals, line
  starts); `MultiPatternScanner` finds the words of a text once and tries each rule only there.
- `MatchingText` holds what every matcher needs of one Doc (its text, lower-cased text, words and token offsets),
  built once per Doc instead of once per rule.

Patterns are read by notecheck.regextree (our own reader of `re` syntax; CPython's parser is private). When a
pattern or a text is outside what is handled (back-references, inline case flags, other compile flags, patterns that
can match the empty string, characters that case-fold unusually), the caller falls back to `re` as given. Tests
compare the results with `finditer` on every note in the repository and on generated text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from notecheck.regextree import Alt, Any_, At, Class, Group, Lit, Look, Node, Repeat, Unsupported, parse


def _lower_char(ch: str) -> str:
    low = ch.lower()
    if len(low) != 1:
        raise Unsupported("lower-casing changes the length")
    return low


def _class_source(items: list[tuple], negated: bool) -> str:
    """A character class written out again, for a pattern run on lower-cased text."""
    out = ["[", "^" if negated else ""]
    for item in items:
        if item[0] == "ch":
            out.append(_class_char(item[1]))
        elif item[0] == "range":
            out.append(f"{_class_char(chr(item[1]))}-{_class_char(chr(item[2]))}")
        else:
            out.append("\\" + item[1])
    out.append("]")
    return "".join(out)


def _class_char(ch: str) -> str:
    return ch if ch.isalnum() and ch.isascii() else f"\\U{ord(ch):08x}"


def _lower_class(items: list[tuple]) -> list[tuple]:
    out = list(items)
    for item in items:
        if item[0] == "ch":
            low = _lower_char(item[1]) if len(item[1].lower()) == 1 else item[1]
            if low != item[1]:
                out.append(("ch", low))
        elif item[0] == "range":
            lo, hi = item[1], item[2]
            # A-Z and the Latin-1 capitals (not the multiplication sign): their lower-case forms are 32 higher.
            for a, b in ((65, 90), (192, 214), (216, 222)):
                s, e = max(lo, a), min(hi, b)
                if s <= e:
                    out.append(("range", s + 32, e + 32))
            if hi > 0x2FF:
                raise Unsupported("range beyond Latin")
            if hi > 222 and any(chr(x).lower() != chr(x) for x in range(max(lo, 223), min(hi, 0x2FF) + 1)):
                raise Unsupported("range with non-Latin-1 capitals")
    return out


def _lower_edits(node: Node, edits: list[tuple[int, int, str]]) -> None:
    """Source edits that make the pattern match lower-cased text where the original matched under IGNORECASE."""
    if isinstance(node, Lit):
        low = _lower_char(node.ch)
        if low != node.ch:
            edits.append((node.start, node.end, re.escape(low)))
    elif isinstance(node, Class):
        edits.append((node.start, node.end, _class_source(_lower_class(node.items), node.negated)))
    elif isinstance(node, Alt):
        for seq in node.seqs:
            for item in seq:
                _lower_edits(item, edits)
    elif isinstance(node, Group):
        if "i" in node.flags_on or "i" in node.flags_off:
            raise Unsupported("inline case flag")
        _lower_edits(node.body, edits)
    elif isinstance(node, (Look,)):
        _lower_edits(node.body, edits)
    elif isinstance(node, Repeat):
        _lower_edits(node.body, edits)


@lru_cache(maxsize=None)
def _parsed(pattern: str) -> Alt:
    """The pattern's tree, read once for all analyses."""
    return parse(pattern)


@lru_cache(maxsize=None)
def lowered(pattern: str) -> Optional[re.Pattern[str]]:
    """A compiled pattern for lower-cased text, equivalent to re.compile(pattern, re.I) on the original text."""
    try:
        edits: list[tuple[int, int, str]] = []
        _lower_edits(_parsed(pattern), edits)
        out, at = [], 0
        for start, end, text in sorted(edits):
            out.append(pattern[at:start])
            out.append(text)
            at = end
        out.append(pattern[at:])
        return re.compile("".join(out))
    except (Unsupported, re.error, RecursionError):
        return None


# --- Scanning many patterns at once ------------------------------------------------------------------------------
#
# A regex scan costs about the same for every rule (30-80 us on a 400-word note), however rarely the rule matches, and
# there are over a hundred rules. Almost every rule starts at a word boundary with one of a few literal words
# ("\b(?:traumatic|trauma|motor\s+vehicle|...)"), so a match can only begin at the start of a word that begins with
# one of those literals. `MultiPatternScanner` finds the words once and tries each rule only where it can begin,
# returning exactly what `pattern.finditer(text)` returns.

_BOUNDARY = "\x00"  # a \b while literals are collected; never a character of a literal
_NON_WORD = "\x02"  # some character that is not a word character (\s, [-/ ], ...)
_DIGIT = "\x01"  # some decimal digit (\d)
_MARKERS = (_BOUNDARY, _NON_WORD, _DIGIT)
_MAX_PREFIX = 8
_MAX_ALTERNATIVES = 512
_MAX_CLASS = 64
_WORD = re.compile(r"\w+")
_Prefixes = list[tuple[str, bool]]  # (what a match starts with so far, whether more may be appended)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _low1(code: int) -> Optional[str]:
    """The lower-cased character, when lower-casing keeps it one character (the scanner works on text.lower())."""
    low = chr(code).lower()
    return low if len(low) == 1 else None


def _class_members(items: list[tuple]) -> Optional[set[str]]:
    """Characters (lower-cased) or markers a character class can match; None when there are too many or unknown."""
    out: set[str] = set()
    for item in items:
        if item[0] == "ch":
            ch = _low1(ord(item[1]))
            if ch is None:
                return None
            out.add(ch if _is_word_char(ch) else _NON_WORD)
        elif item[0] == "range":
            lo, hi = item[1], item[2]
            if hi - lo > _MAX_CLASS:
                return None
            for code in range(lo, hi + 1):
                ch = _low1(code)
                if ch is None:
                    return None
                out.add(ch if _is_word_char(ch) else _NON_WORD)
        elif item[1] == "d":
            out.add(_DIGIT)
        elif item[1] in ("s", "W"):
            out.add(_NON_WORD)
        else:
            return None  # \w, \S, \D
        if len(out) > _MAX_CLASS:
            return None
    return out


def _only(alt: Alt) -> Optional[list[Node]]:
    """The one branch of an alternative that has just one."""
    return alt.seqs[0] if len(alt.seqs) == 1 else None


def _non_word_before(look: Look) -> bool:
    """(?<=...x) with x only non-word characters, or (?<![^x]) with x a non-word character."""
    items = _only(look.body)
    if not look.behind or not items:
        return False
    last = items[-1]
    if not look.negative:
        if isinstance(last, Lit):
            return not _is_word_char(last.ch)
        if isinstance(last, Class) and not last.negated:
            members = _class_members(last.items)
            return members is not None and members == {_NON_WORD}
        return False
    return (len(items) == 1 and isinstance(last, Class) and last.negated and len(last.items) == 1
            and last.items[0][0] == "ch" and not _is_word_char(last.items[0][1]))


def _item_prefixes(node: Node) -> Optional[_Prefixes]:
    """What a match of one tree item starts with; None when it can start with anything."""
    if isinstance(node, Lit):
        ch = _low1(ord(node.ch))
        if ch is None:
            return None
        return [(ch, True)] if _is_word_char(ch) else [(ch, False)]
    if isinstance(node, At):
        return [(_BOUNDARY if node.kind == "boundary" else "", True)]
    if isinstance(node, Look):
        # Zero-width: it narrows matches but consumes nothing. A look-behind that puts a non-word character (or the
        # start of the text) just before the match makes the match begin at a word start, like \b.
        return [(_BOUNDARY if _non_word_before(node) else "", True)]
    if isinstance(node, Class):
        members = None if node.negated else _class_members(node.items)
        if members is None:
            return None
        return [(m, m not in (_NON_WORD, _DIGIT)) for m in sorted(members)]
    if isinstance(node, Group):
        return _alt_prefixes(node.body)
    if isinstance(node, Alt):
        return _alt_prefixes(node)
    if isinstance(node, Repeat):
        sub = _item_prefixes(node.body)
        if sub is None:  # unreadable: skipped, a match may go on; present, nothing is known of how it starts
            return [("", True), ("", False)] if node.low == 0 else None
        if node.high == 1:  # x? : either nothing, or one x and then the rest of the sequence
            return [("", True), *sub] if node.low == 0 else sub
        closed = [(s, False) for s, _ in sub]  # x*, x+ : what follows the first copy is not known
        return [("", True), *closed] if node.low == 0 else closed
    return None


def _alt_prefixes(alt: Alt) -> Optional[_Prefixes]:
    if len(alt.seqs) == 1:
        return _seq_prefixes(alt.seqs[0])
    out: _Prefixes = []
    for seq in alt.seqs:
        sub = _seq_prefixes(seq)
        if sub is None:
            return None
        out.extend(sub)
    return out


def _seq_prefixes(seq: list[Node]) -> Optional[_Prefixes]:
    acc: _Prefixes = [("", True)]
    for node in seq:
        if not any(open_ for _, open_ in acc):
            break
        item = _item_prefixes(node)
        new: _Prefixes = []
        for s, open_ in acc:
            if not open_ or item is None:
                new.append((s, False))
            else:
                for t, more in item:
                    joined = s + t
                    core = joined.lstrip(_BOUNDARY)
                    done = len(core) >= _MAX_PREFIX or any(not _is_word_char(ch) for ch in core)
                    new.append((joined, more and not done))
        new = list(dict.fromkeys(new))
        if len(new) > _MAX_ALTERNATIVES:  # too many spellings: what we have so far is still a valid bound
            return [(s, False) for s, _ in acc]
        acc = new
    return acc


@dataclass(frozen=True)
class StartLiterals:
    """Where a pattern's matches can begin. `words`: (literal, exact) — a match begins at the start of a word that
    starts with the literal (or, if exact, is the literal); `digit_word`: also at any word starting with a digit;
    `anywhere`: also at any occurrence of one of these literals."""

    words: tuple[tuple[str, bool], ...]
    digit_word: bool
    anywhere: tuple[str, ...]


@lru_cache(maxsize=None)
def start_literals(pattern: str) -> Optional[StartLiterals]:
    """What every match of `pattern` (compiled with re.IGNORECASE, run on text whose lower-casing keeps its length)
    begins with, read from the pattern's parse tree; None when no useful bound is known."""
    try:
        tree = _parsed(pattern)
    except (Unsupported, RecursionError):
        return None
    found = _alt_prefixes(tree)
    if found is None:
        return None
    words: set[tuple[str, bool]] = set()
    anywhere: set[str] = set()
    digit_word = False
    for s, _ in found:
        if s.startswith(_BOUNDARY):
            rest = s.lstrip(_BOUNDARY)
            if rest[:1] == _DIGIT:
                digit_word = True
                continue
            cut = 0
            while cut < len(rest) and rest[cut] not in _MARKERS[1:] and _is_word_char(rest[cut]):
                cut += 1
            if cut == 0:
                return None  # after \b the match may begin with anything, or with a non-word character
            exact = cut < len(rest) and rest[cut] != _DIGIT and not _is_word_char(rest[cut])
            words.add((rest[:cut], exact))
        else:
            cut = 0
            while cut < len(s) and s[cut] not in _MARKERS:
                cut += 1
            if cut == 0:
                return None  # some match may begin with a character we cannot name
            anywhere.add(s[:cut])
    # Keep only what is needed: a word starting with "trauma" needs no second try for "traumatic".
    loose = {w for w, exact in words if not exact}
    kept_words = {(w, exact) for w, exact in words
                  if not any(q != w and w.startswith(q) for q in loose) and not (exact and w in loose)}
    kept_anywhere = {a for a in anywhere if not any(q != a and a.startswith(q) for q in anywhere)}
    return StartLiterals(tuple(sorted(kept_words)), digit_word, tuple(sorted(kept_anywhere)))


def _width(node: Node) -> int:
    if isinstance(node, (Lit, Class, Any_)):
        return 1
    if isinstance(node, (At, Look)):
        return 0
    if isinstance(node, Group):
        return _width(node.body)
    if isinstance(node, Alt):
        return min(sum(_width(n) for n in seq) for seq in node.seqs)
    if isinstance(node, Repeat):
        return node.low * _width(node.body)
    raise Unsupported(type(node).__name__)


@lru_cache(maxsize=None)
def _min_width(pattern: str) -> int:
    """The fewest characters a match can have (0: the pattern can match the empty string)."""
    try:
        return _width(_parsed(pattern))
    except (Unsupported, RecursionError):
        return 0


@lru_cache(maxsize=None)
def line_start_anchored(pattern: str) -> bool:
    """True when every match must begin at the start of a line: every branch opens with (?<![^\n])."""
    try:
        tree = _parsed(pattern)
    except (Unsupported, RecursionError):
        return False
    seq = _only(tree)
    if not seq or not isinstance(seq[0], Look) or not (seq[0].behind and seq[0].negative):
        return False
    inner = _only(seq[0].body)
    return (inner is not None and len(inner) == 1 and isinstance(inner[0], Class) and inner[0].negated
            and inner[0].items == [("ch", "\n")])


# Characters that re.IGNORECASE equates with a letter other than their own lower case (the long s with "s", the
# micro sign with mu, the Kelvin-like Cyrillic forms): CPython's table of extra case pairs (Lib/re/_casefix.py,
# generated from Unicode; the same in Python 3.11-3.13), written out here as data.
_EXTRA_CASES = (
    (0x69, 0x131), (0x73, 0x17F), (0xB5, 0x3BC), (0x345, 0x3B9, 0x1FBE), (0x390, 0x1FD3), (0x3B0, 0x1FE3),
    (0x3B2, 0x3D0), (0x3B5, 0x3F5), (0x3B8, 0x3D1), (0x3BA, 0x3F0), (0x3C0, 0x3D6), (0x3C1, 0x3F1),
    (0x3C2, 0x3C3), (0x3C6, 0x3D5), (0x432, 0x1C80), (0x434, 0x1C81), (0x43E, 0x1C82), (0x441, 0x1C83),
    (0x442, 0x1C84, 0x1C85), (0x44A, 0x1C86), (0x463, 0x1C87), (0x1C88, 0xA64B), (0x1E61, 0x1E9B),
    (0xFB05, 0xFB06),
)


def _fold_extras() -> frozenset[str]:
    """Non-ASCII characters that re.IGNORECASE matches to a letter other than their own lower case: in a text
    containing one, lower-case prefixes could miss a match, so the scanner scans in full."""
    extra = {chr(code) for group in _EXTRA_CASES for code in group}
    extra |= {ch.upper() for ch in list(extra) if len(ch.upper()) == 1}
    return frozenset(ch for ch in extra if not ch.isascii())


_FOLD_EXTRAS = _fold_extras()


def _chars(node: Node, found: set[str]) -> bool:
    """Adds every character a pattern's literals and classes name; False when a range is too wide to list."""
    if isinstance(node, Lit):
        found.add(node.ch)
    elif isinstance(node, Class):
        for item in node.items:
            if item[0] == "ch":
                found.add(item[1])
            elif item[0] == "range":
                if item[2] - item[1] > 0x3000:
                    return False
                found.update(chr(c) for c in range(item[1], item[2] + 1))
    elif isinstance(node, Alt):
        return all(_chars(n, found) for seq in node.seqs for n in seq)
    elif isinstance(node, (Group, Look)):
        return _chars(node.body, found)
    elif isinstance(node, Repeat):
        return _chars(node.body, found)
    return True


def _matchable_chars(pattern: str) -> Optional[set[str]]:
    """Every character a pattern's literals and ranges name (not \\w-like categories: those do not depend on case);
    None when a range is too wide to list."""
    try:
        found: set[str] = set()
        return found if _chars(_parsed(pattern), found) else None
    except (Unsupported, RecursionError):
        return None


def _fold_risks(patterns: list[re.Pattern[str]]) -> frozenset[str]:
    """The special characters that matter for these patterns: those re.IGNORECASE equates with a character the
    patterns name (in a literal or a range: "ſ" with "s"), other than by lower-casing. A micro sign in a note is no
    reason to scan in full unless some rule names a mu."""
    used: set[str] = set()
    for p in patterns:
        chars = _matchable_chars(p.pattern) if isinstance(p.pattern, str) else None
        if chars is None:
            return _FOLD_EXTRAS  # a range too wide to list: every special character may matter
        used.update(ch.lower() for ch in chars if len(ch.lower()) == 1)
    risky = set()
    for extra in _FOLD_EXTRAS:
        same = re.compile(re.escape(extra), re.IGNORECASE)
        if any(ch != extra.lower() and same.fullmatch(ch) for ch in used):
            risky.add(extra)
    return frozenset(risky)


class _WordIndex:
    """Which patterns may begin at the start of a given word, from their start literals; remembered per word."""

    def __init__(self) -> None:
        self.exact: dict[str, list[int]] = {}
        self.by_two: dict[str, list[tuple[str, int]]] = {}
        self.by_one: dict[str, list[tuple[str, int]]] = {}
        self.digit_word: list[int] = []
        self.remembered: dict[str, tuple[int, ...]] = {}

    def add(self, i: int, starts: StartLiterals) -> None:
        for w, exact in starts.words:
            if exact:
                self.exact.setdefault(w, []).append(i)
            else:
                (self.by_two if len(w) > 1 else self.by_one).setdefault(w[:2], []).append((w, i))
        if starts.digit_word:
            self.digit_word.append(i)

    def candidates(self, word: str) -> tuple[int, ...]:
        found = self.remembered.get(word)
        if found is None:
            ids = set(self.exact.get(word, ()))
            for group in (self.by_two.get(word[:2]), self.by_one.get(word[:1])):
                if group:
                    ids.update(i for prefix, i in group if word.startswith(prefix))
            if word[:1].isdecimal():
                ids.update(self.digit_word)
            found = tuple(sorted(ids))
            if len(self.remembered) >= _MAX_REMEMBERED_WORDS:
                self.remembered.clear()
            self.remembered[word] = found
        return found


class MultiPatternScanner:
    """Runs many case-insensitive patterns over one text: `scan(text, text.lower())[i]` equals
    `[m.span() for m in patterns[i].finditer(text)]`.

    Where a pattern can begin is found on the lower-cased text (words with the right start, line starts, occurrences
    of a literal); the pattern itself is then tried there as given. Patterns of no known shape are scanned in full."""

    def __init__(self, patterns: list[re.Pattern[str]]) -> None:
        self.original = patterns
        self.fold_risks = _fold_risks(patterns)
        # Only plain case-insensitive patterns are lowered or indexed: any other flag (MULTILINE, VERBOSE, ASCII...)
        # changes how the source reads. Each is run lowered, on the lower-cased text, where it can be (a third faster
        # than re.IGNORECASE); otherwise as given, on the text as given.
        plain = [p.flags & ~re.UNICODE == re.IGNORECASE for p in patterns]
        fast = [lowered(p.pattern) if ok else None for p, ok in zip(patterns, plain)]
        self.on_low = [f is not None for f in fast]
        self.compiled = [f if f is not None else p for f, p in zip(fast, patterns)]
        self.match = [c.match for c in self.compiled]
        self.full: list[int] = []  # patterns scanned in full
        self.words = _WordIndex()  # patterns that begin at a word start
        self.lines = _WordIndex()  # patterns that begin at a line start, by the line's first word
        self.any_line: list[int] = []  # patterns that begin at a line start, of unknown first word
        self.anywhere: list[tuple[str, int]] = []
        for i, pattern in enumerate(patterns):
            source = pattern.pattern
            case_blind = plain[i] and _min_width(source) > 0  # an empty match changes finditer's steps
            starts = start_literals(source) if case_blind else None
            at_line = case_blind and line_start_anchored(source)
            if starts is not None and not starts.anywhere:
                (self.lines if at_line else self.words).add(i, starts)
            elif starts is not None and not at_line:
                self.words.add(i, starts)
                self.anywhere.extend((a, i) for a in starts.anywhere)
            elif at_line:
                self.any_line.append(i)
            else:
                self.full.append(i)

    def clear_caches(self) -> None:
        """Forget the per-word candidates remembered from notes already scanned."""
        self.words.remembered.clear()
        self.lines.remembered.clear()

    def scan(self, text: str, low: str, words: Optional[list[tuple[int, str]]] = None) -> list[list[tuple[int, int]]]:
        """Matches per pattern; `words` (start, word) of `low`, if the caller already has them."""
        patterns = self.original
        if len(low) != len(text) or (not low.isascii() and not self.fold_risks.isdisjoint(low)):
            # Lower-casing changed the length (rare letters), or a character folds unusually: plain re throughout.
            return [[m.span() for m in pattern.finditer(text)] for pattern in patterns]
        hits: list[list[tuple[int, int]]] = [[] for _ in patterns]
        for i in self.full:
            hits[i] = [m.span() for m in self.compiled[i].finditer(low if self.on_low[i] else text)]
        ends = [0] * len(patterns)
        if self.lines.exact or self.lines.by_two or self.lines.by_one or self.lines.digit_word or self.any_line:
            lines = self.lines.candidates
            for pos in line_starts(low):
                word = _WORD.match(low, pos)
                ids = lines(word.group()) if word is not None else ()
                self._try(pos, (*ids, *self.any_line) if self.any_line else ids, text, low, ends, hits)
        # Candidate starts in text order: each word's patterns, and each occurrence of a pattern's literal.
        events: list[tuple[int, tuple[int, ...]]] = []
        for literal, i in self.anywhere:
            at = low.find(literal)
            while at != -1:
                events.append((at, (i,)))
                at = low.find(literal, at + 1)
        if events:
            events.sort()
        remembered, candidates = self.words.remembered, self.words.candidates
        match, on_low = self.match, self.on_low
        e, n_events = 0, len(events)
        for pos, w in words if words is not None else word_starts(low):
            while e < n_events and events[e][0] < pos:
                self._try(events[e][0], events[e][1], text, low, ends, hits)
                e += 1
            ids = remembered.get(w)
            if ids is None:
                ids = candidates(w)
            for i in ids:  # _try, inlined: this loop runs for every word of every note
                if ends[i] <= pos:
                    m = match[i](low if on_low[i] else text, pos)
                    if m is not None:
                        hits[i].append(m.span())
                        ends[i] = m.end() if m.end() > pos else pos + 1
        while e < n_events:
            self._try(events[e][0], events[e][1], text, low, ends, hits)
            e += 1
        return hits

    def _try(self, pos: int, ids: tuple[int, ...], text: str, low: str, ends: list[int],
             hits: list[list[tuple[int, int]]]) -> None:
        for i in ids:
            if ends[i] <= pos:
                m = self.match[i](low if self.on_low[i] else text, pos)
                if m is not None:
                    hits[i].append(m.span())
                    ends[i] = m.end() if m.end() > pos else pos + 1


_MAX_REMEMBERED_WORDS = 100_000


def word_starts(low: str) -> list[tuple[int, str]]:
    """(start, word) for every run of word characters, the positions where a \\b-anchored rule can begin."""
    return [(m.start(), m.group()) for m in _WORD.finditer(low)]


def line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at != -1:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


class MatchingText:
    """A Doc's text prepared once for every matcher: spaCy joins every token each time doc.text is read."""

    __slots__ = ("text", "low", "_words", "_tokens", "targets")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.lower()
        self._words: Optional[list[tuple[int, str]]] = None
        self._tokens: Optional[tuple[int, list[int], list[int], dict[int, int], dict[int, int]]] = None
        self.targets: Optional[list[tuple[int, int, int, Any]]] = None  # (start, end, label, TargetRule) per target

    @property
    def words(self) -> list[tuple[int, str]]:
        if self._words is None:
            self._words = word_starts(self.low)
        return self._words

    def _token_bounds(self, doc: Any) -> tuple[int, list[int], list[int], dict[int, int], dict[int, int]]:
        """Token start offsets and lengths, and maps from a start or end offset to its token; built once per Doc."""
        if self._tokens is None or self._tokens[0] != len(doc):
            starts = doc.to_array("IDX").tolist()
            lengths = doc.to_array("LENGTH").tolist()
            n = len(starts)
            self._tokens = (n, starts, lengths, dict(zip(starts, range(n))),
                            dict(zip(map(int.__add__, starts, lengths), range(n))))
        return self._tokens

    def token_rows(self, doc: Any) -> tuple[list[int], list[int]]:
        """(start offsets, lengths) of the Doc's tokens."""
        bounds = self._token_bounds(doc)
        return bounds[1], bounds[2]

    def token_starts(self, doc: Any) -> list[int]:
        return self._token_bounds(doc)[1]

    def token_span(self, doc: Any, start_char: int, end_char: int) -> Optional[tuple[int, int]]:
        """(first token, end token) when the characters are exactly tokens, as doc.char_span(start, end) does,
        without building a Span; None otherwise."""
        _, _, _, by_start, by_end = self._token_bounds(doc)
        first, last = by_start.get(start_char), by_end.get(end_char)
        if first is None or last is None or last < first:
            return None
        return first, last + 1


_TEXT_KEY = "notecheck.matching_text"


def matching_text(doc: Any) -> MatchingText:
    """The Doc's text for matching, built once per Doc and kept in doc.user_data for the next component (a Doc's
    text never changes, only its tokens)."""
    cached = doc.user_data.get(_TEXT_KEY)
    if isinstance(cached, MatchingText):
        return cached
    prepared = doc.user_data[_TEXT_KEY] = MatchingText(doc.text)
    return prepared


def remember_text(doc: Any, text: str) -> None:
    """For a Doc just made from `text`: saves rebuilding the text from the tokens."""
    doc.user_data[_TEXT_KEY] = MatchingText(text)


def forget_matching_text(doc: Any) -> None:
    """Drop the cached text so that it is not serialised with the Doc."""
    doc.user_data.pop(_TEXT_KEY, None)
