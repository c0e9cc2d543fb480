"""Case-insensitive regex matching without re.IGNORECASE: lower the pattern once and the text once per Doc.

Python's `re` compares every character through case folding under IGNORECASE, which made our ~100 rule patterns
2-3x slower than the same patterns on lower-cased text. `lowered()` rewrites a pattern's parse tree so that it
matches lower-cased text exactly where the original matched the original text case-insensitively (literals are
lowered, character classes gain their lower-case counterparts). It uses the stdlib's parser and compiler; if either
is unavailable or a pattern uses something not handled, it returns None and the caller keeps re.IGNORECASE.
A test checks on every note in the repository that both give identical matches.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Optional

try:  # Python 3.11+
    from re import _compiler as _sre_compile  # type: ignore[attr-defined]
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile as _sre_compile  # type: ignore[no-redef]
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]


class _Unsupported(Exception):
    pass


def _lower_char(code: int) -> int:
    low = chr(code).lower()
    return ord(low) if len(low) == 1 else code


def _lower_class(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    out = list(items)
    for op, av in items:
        if op is _c.LITERAL:
            low = _lower_char(av)
            if low != av:
                out.append((_c.LITERAL, low))
        elif op is _c.RANGE:
            lo, hi = av
            for a, b in ((65, 90), (192, 222)):  # A-Z and Latin-1 capitals: their lower-case forms are +32
                s, e = max(lo, a), min(hi, b)
                if s <= e:
                    out.append((_c.RANGE, (s + 32, e + 32)))
            if hi > 222 and any(chr(x).lower() != chr(x) for x in range(max(lo, 223), min(hi, 0x2FF) + 1)):
                raise _Unsupported("range with non-Latin-1 capitals")
    return out


def _lower_tree(sub: Any) -> None:
    for i, (op, av) in enumerate(sub.data):
        if op in (_c.LITERAL, _c.NOT_LITERAL):
            sub.data[i] = (op, _lower_char(av))
        elif op is _c.IN:
            sub.data[i] = (op, _lower_class(av))
        elif op is _c.SUBPATTERN:
            group, add_flags, del_flags, p = av
            if (add_flags | del_flags) & re.IGNORECASE:
                raise _Unsupported("inline case flag")
            _lower_tree(p)
        elif op is _c.BRANCH:
            for p in av[1]:
                _lower_tree(p)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) or op is getattr(_c, "POSSESSIVE_REPEAT", None):
            _lower_tree(av[2])
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            _lower_tree(av[1])
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            _lower_tree(av)
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            raise _Unsupported("back-reference")
        elif op not in (_c.AT, _c.ANY, _c.CATEGORY):
            raise _Unsupported(f"op {op}")


@lru_cache(maxsize=None)
def lowered(pattern: str) -> Optional[re.Pattern[str]]:
    """A compiled pattern for lower-cased text, equivalent to re.compile(pattern, re.I) on the original text."""
    try:
        tree = _sre_parse.parse(pattern, 0)
        if tree.state.flags & re.IGNORECASE:
            return None
        _lower_tree(tree)
        return _sre_compile.compile(tree, 0)  # type: ignore[no-any-return]
    except (_Unsupported, re.error, AttributeError, TypeError, ValueError):
        return None


def _leading_literal(seq: Any) -> str:
    """Literal characters every match of this sequence starts with (after zero-width \\b or ^)."""
    out = []
    items = list(seq.data) if hasattr(seq, "data") else list(seq)
    i = 0
    while i < len(items) and items[i][0] is _c.AT:
        i += 1
    while i < len(items):
        op, av = items[i]
        if op is _c.LITERAL:
            out.append(chr(av))
        elif op is _c.SUBPATTERN and not out and i == len(items) - 1:
            return _leading_literal(av[3]) if _branch_prefixes(av[3]) is None else ""
        else:
            break
        i += 1
    return "".join(out)


def _branch_prefixes(seq: Any) -> Optional[list[str]]:
    items = list(seq.data)
    i = 0
    while i < len(items) and items[i][0] is _c.AT:
        i += 1
    if i < len(items) and items[i][0] is _c.SUBPATTERN:
        inner = list(items[i][1][3].data)
        if inner and inner[0][0] is _c.BRANCH:
            return [_leading_literal(alt) for alt in inner[0][1][1]]
    if i < len(items) and items[i][0] is _c.BRANCH:
        return [_leading_literal(alt) for alt in items[i][1][1]]
    return None


@lru_cache(maxsize=None)
def required_prefixes(pattern: str) -> Optional[tuple[str, ...]]:
    """Lower-case strings of which at least one must occur in the (lower-cased) text for `pattern` to match, or None
    when no such cheap test is known. Lets the matcher skip a full regex scan with a fast substring check."""
    try:
        tree = _sre_parse.parse(pattern, 0)
        if tree.state.flags & re.IGNORECASE:
            return None
        _lower_tree(tree)
    except (_Unsupported, re.error, AttributeError, TypeError, ValueError):
        return None
    alts = _branch_prefixes(tree)
    if alts is None:
        alts = [_leading_literal(tree)]
    if any(len(a) < 2 for a in alts):
        return None
    return tuple(sorted(set(alts)))


# --- Scanning many patterns at once ------------------------------------------------------------------------------
#
# A regex scan costs about the same for every rule (30-80 us on a 400-word note), however rarely the rule matches, and
# there are over a hundred rules. Almost every rule starts at a word boundary with one of a few literal words
# ("\b(?:traumatic|trauma|motor\s+vehicle|...)"), so a match can only begin at the start of a word that begins with
# one of those literals. `MultiPatternScanner` finds the words once and tries each rule only where it can begin,
# returning exactly what `pattern.finditer(text)` returns.

_BOUNDARY = "\x00"  # marks a leading \b while prefixes are collected; never a character of a prefix
_MAX_PREFIX = 6
_MAX_ALTERNATIVES = 256
_WORD = re.compile(r"\w+")
_Prefixes = list[tuple[str, bool]]  # (literal so far, whether it may still be extended)


def _item_prefixes(op: Any, av: Any) -> Optional[_Prefixes]:
    """The literal strings a match of one parse-tree item starts with; None when it can start with anything."""
    if op is _c.LITERAL:
        return [(chr(av), True)]
    if op is _c.AT:
        return [(_BOUNDARY if av is _c.AT_BOUNDARY else "", True)]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [("", True)]  # zero-width: it narrows matches but consumes nothing
    if op is _c.IN:
        if any(o is not _c.LITERAL for o, _ in av) or len(av) > 12:
            return None
        return [(chr(v), True) for _, v in av]
    if op is _c.SUBPATTERN:
        return _seq_prefixes(av[3])
    if op is _c.BRANCH:
        out: _Prefixes = []
        for alt in av[1]:
            sub = _seq_prefixes(alt)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        low, _high, body = av
        sub = _seq_prefixes(body)
        if sub is None:  # unreadable: skipped, a match may go on; present, nothing is known of how it starts
            return [("", True), ("", False)] if low == 0 else None
        closed = [(s, False) for s, _ in sub]  # repetition: what follows the first copy is unknown
        return [("", True), *closed] if low == 0 else closed
    return None


def _seq_prefixes(seq: Any) -> Optional[_Prefixes]:
    acc: _Prefixes = [("", True)]
    for op, av in seq.data if hasattr(seq, "data") else seq:
        if not any(open_ for _, open_ in acc):
            break
        item = _item_prefixes(op, av)
        new: _Prefixes = []
        for s, open_ in acc:
            if not open_ or len(s.replace(_BOUNDARY, "")) >= _MAX_PREFIX:
                new.append((s, False))
            elif item is None:
                new.append((s, False))
            else:
                new.extend((s + t, c) for t, c in item)
        acc = list(dict.fromkeys(new))
        if len(acc) > _MAX_ALTERNATIVES:
            return None
    return acc


@lru_cache(maxsize=None)
def word_start_prefixes(pattern: str) -> Optional[tuple[str, ...]]:
    """Lower-case word-character prefixes, one of which every match of `lowered(pattern)` begins with, where every
    match begins at a word boundary (so at the start of a word). None when the pattern is not of that shape."""
    try:
        tree = _sre_parse.parse(pattern, 0)
        if tree.state.flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE):
            return None
        _lower_tree(tree)
    except (_Unsupported, re.error, AttributeError, TypeError, ValueError):
        return None
    found = _seq_prefixes(tree)
    if found is None:
        return None
    out = set()
    for s, _ in found:
        if not s.startswith(_BOUNDARY):
            return None  # some path has no leading \b: a match could start inside a word
        word = s.replace(_BOUNDARY, "")
        cut = 0
        while cut < len(word) and (word[cut].isalnum() or word[cut] == "_"):
            cut += 1
        if cut == 0:
            return None  # the match may begin with a non-word character
        out.add(word[:cut])
    # Keep only the shortest: a word starting with "trauma" needs no second try for "traumatic".
    minimal = {p for p in out if not any(q != p and p.startswith(q) for q in out)}
    return tuple(sorted(minimal))


@lru_cache(maxsize=None)
def line_start_anchored(pattern: str) -> bool:
    """True when every match must begin at the start of a line: the pattern opens with (?<![^\\n])."""
    try:
        tree = _sre_parse.parse(pattern, 0)
    except (re.error, AttributeError, TypeError, ValueError):
        return False
    data = list(tree.data)
    if not data or data[0][0] is not _c.ASSERT_NOT:
        return False
    direction, body = data[0][1]
    inner = list(body.data)
    return direction == -1 and len(inner) == 1 and inner[0][0] is _c.NOT_LITERAL and inner[0][1] == ord("\n")


class MultiPatternScanner:
    """Runs many case-insensitive patterns over one text: `scan(text, text.lower())[i]` equals
    `[m.span() for m in patterns[i].finditer(text)]` (the caller checks that lower-casing kept the length).

    Where a pattern can begin is found on the lower-cased text (word starts with the right prefix, line starts); the
    pattern itself is then tried there as given. Only patterns of no known shape are scanned in full, lowered."""

    def __init__(self, patterns: list[re.Pattern[str]]) -> None:
        self.original = patterns
        self.full: list[tuple[int, re.Pattern[str], bool]] = []  # (index, pattern, runs on the lower-cased text)
        self.line_start: list[int] = []
        self.by_two: dict[str, list[tuple[str, int]]] = {}
        self.by_one: dict[str, list[tuple[str, int]]] = {}
        self._by_word: dict[str, tuple[int, ...]] = {}
        for i, pattern in enumerate(patterns):
            source = pattern.pattern
            prefixes = word_start_prefixes(source) if pattern.flags & re.IGNORECASE else None
            if prefixes is not None:
                for p in prefixes:
                    (self.by_two if len(p) > 1 else self.by_one).setdefault(p[:2], []).append((p, i))
            elif pattern.flags & re.IGNORECASE and line_start_anchored(source):
                self.line_start.append(i)
            else:
                fast = lowered(source) if pattern.flags & re.IGNORECASE else None
                self.full.append((i, fast if fast is not None else pattern, fast is not None))
        # One alternation of every line-start pattern fails at a line start exactly when each of them fails there.
        self.any_line_start: Optional[re.Pattern[str]] = None
        if len(self.line_start) > 1:
            self.any_line_start = lowered("|".join(f"(?:{patterns[i].pattern})" for i in self.line_start))

    def _candidates(self, word: str) -> tuple[int, ...]:
        """The patterns that may match at the start of this word; remembered per distinct word."""
        found = self._by_word.get(word)
        if found is None:
            found = tuple(sorted({i for group in (self.by_two.get(word[:2]), self.by_one.get(word[:1])) if group
                                  for prefix, i in group if word.startswith(prefix)}))
            if len(self._by_word) >= _MAX_REMEMBERED_WORDS:
                self._by_word.clear()
            self._by_word[word] = found
        return found

    def scan(self, text: str, low: str, words: Optional[list[tuple[int, str]]] = None) -> list[list[tuple[int, int]]]:
        """Matches per pattern; `words` (start, word) of `low`, if the caller already has them."""
        patterns = self.original
        hits: list[list[tuple[int, int]]] = [[] for _ in patterns]
        for i, pattern, on_low in self.full:
            hits[i] = [m.span() for m in pattern.finditer(low if on_low else text)]
        if self.line_start:
            starts = line_starts(low)
            if self.any_line_start is not None:
                anywhere = self.any_line_start.match
                starts = [pos for pos in starts if anywhere(low, pos) is not None]
            for i in self.line_start:
                match, end, found = patterns[i].match, 0, hits[i]
                for pos in starts:
                    if pos >= end:
                        m = match(text, pos)
                        if m is not None:
                            found.append(m.span())
                            end = max(m.end(), pos + 1)
        if self.by_two or self.by_one:
            ends = [0] * len(patterns)
            by_word, candidates = self._by_word, self._candidates
            for pos, w in words if words is not None else word_starts(low):
                ids = by_word.get(w)
                if ids is None:
                    ids = candidates(w)
                for i in ids:
                    if ends[i] <= pos:
                        m = patterns[i].match(text, pos)
                        if m is not None:
                            hits[i].append(m.span())
                            ends[i] = m.end()
        return hits


_MAX_REMEMBERED_WORDS = 200_000


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

    __slots__ = ("text", "low", "_words", "_token_starts")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = text.lower()
        self._words: Optional[list[tuple[int, str]]] = None
        self._token_starts: Optional[list[int]] = None

    @property
    def words(self) -> list[tuple[int, str]]:
        if self._words is None:
            self._words = word_starts(self.low)
        return self._words

    def token_starts(self, doc: Any) -> list[int]:
        if self._token_starts is None or len(self._token_starts) != len(doc):
            self._token_starts = doc.to_array("IDX").tolist()
        return self._token_starts


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
