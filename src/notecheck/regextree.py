"""A reader for the regular-expression syntax of Python's `re`, enough to analyse our rule patterns.

It builds a small tree (literals, classes, anchors, groups, look-arounds, repeats, alternatives) with each node's
place in the source, so that the analyses in fastregex can ask where a match may begin and rewrite a pattern for
lower-cased text. Anything outside what it reads (back-references, inline flags over the whole pattern, conditional
groups) raises Unsupported, and the caller then runs the pattern with `re` as given.
"""

from dataclasses import dataclass
from typing import Optional, Union


class Unsupported(Exception):
    """The pattern uses syntax this reader does not analyse."""


@dataclass
class Lit:
    ch: str
    start: int
    end: int


@dataclass
class Any_:
    start: int
    end: int


@dataclass
class At:
    kind: str  # "boundary", "nonboundary", "begin", "end", "start_string", "end_string"
    start: int
    end: int


ClassItem = tuple  # ("ch", c) | ("range", lo, hi) | ("cat", letter)


@dataclass
class Class:
    negated: bool
    items: list[ClassItem]
    start: int
    end: int


@dataclass
class Alt:
    seqs: list[list["Node"]]
    start: int
    end: int


@dataclass
class Group:
    body: Alt
    start: int
    end: int
    flags_on: str = ""
    flags_off: str = ""


@dataclass
class Look:
    behind: bool
    negative: bool
    body: Alt
    start: int
    end: int


@dataclass
class Repeat:
    low: int
    high: Optional[int]  # None: no upper bound
    body: "Node"
    start: int
    end: int


Node = Union[Lit, Any_, At, Class, Alt, Group, Look, Repeat]

_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_CATEGORIES = frozenset("dDsSwW")
_ANCHORS = {"A": "start_string", "Z": "end_string", "b": "boundary", "B": "nonboundary"}
_FLAGS = frozenset("aiLmsux")


class _Reader:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def parse(self) -> Alt:
        tree = self.alt()
        if self.i != len(self.s):
            raise Unsupported("unbalanced parenthesis")
        return tree

    def alt(self) -> Alt:
        start = self.i
        seqs = [self.seq()]
        while self.peek() == "|":
            self.i += 1
            seqs.append(self.seq())
        return Alt(seqs, start, self.i)

    def seq(self) -> list[Node]:
        items: list[Node] = []
        while self.i < len(self.s) and self.peek() not in ("|", ")"):
            atom = self.atom()
            if atom is None:
                continue
            items.append(self.quantified(atom))
        return items

    def quantified(self, atom: Node) -> Node:
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{":
                bounds = self.braces()
                if bounds is None:
                    return atom
                low, high = bounds
            else:
                return atom
            if self.peek() in ("?", "+"):  # lazy or possessive: the same strings, matched differently
                self.i += 1
            if isinstance(atom, (At, Look)):
                raise Unsupported("repeated assertion")
            atom = Repeat(low, high, atom, atom.start, self.i)

    def braces(self) -> Optional[tuple[int, Optional[int]]]:
        """{m}, {m,}, {,n}, {m,n}; None when the brace is a literal '{' (as re reads it)."""
        j = self.s.find("}", self.i)
        if j == -1:
            return None
        body = self.s[self.i + 1 : j]
        lo_s, comma, hi_s = body.partition(",")
        if not (lo_s.isdigit() or lo_s == "") or not (hi_s.isdigit() or hi_s == "") or (not lo_s and not comma):
            return None
        if not lo_s and not hi_s and comma:  # '{,}' is a literal in re before 3.12? treat as unsupported
            raise Unsupported("ambiguous {,}")
        self.i = j + 1
        low = int(lo_s) if lo_s else 0
        high = int(hi_s) if hi_s else (None if comma else low)
        return low, high

    def atom(self) -> Optional[Node]:
        start = self.i
        c = self.s[self.i]
        if c == "(":
            return self.group()
        if c == "[":
            return self.char_class()
        self.i += 1
        if c == ".":
            return Any_(start, self.i)
        if c == "^":
            return At("begin", start, self.i)
        if c == "$":
            return At("end", start, self.i)
        if c in "*+?":
            raise Unsupported("nothing to repeat")
        if c == "\\":
            return self.escape(start, in_class=False)
        return Lit(c, start, self.i)

    def escape(self, start: int, in_class: bool) -> Node:
        if self.i >= len(self.s):
            raise Unsupported("trailing backslash")
        c = self.s[self.i]
        self.i += 1
        if c in _CATEGORIES:
            return Class(False, [("cat", c)], start, self.i)
        if not in_class and c in _ANCHORS:
            return At(_ANCHORS[c], start, self.i)
        if in_class and c == "b":
            return Lit("\b", start, self.i)
        if c in _SIMPLE_ESCAPES:
            return Lit(_SIMPLE_ESCAPES[c], start, self.i)
        if c in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = self.s[self.i : self.i + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise Unsupported("bad hex escape")
            self.i += width
            return Lit(chr(int(digits, 16)), start, self.i)
        if c == "N":
            raise Unsupported("named character escape")
        if c == "0" or (in_class and c in "1234567"):
            digits = c
            while len(digits) < 3 and self.peek() in tuple("01234567") and self.peek():
                digits += self.s[self.i]
                self.i += 1
            return Lit(chr(int(digits, 8)), start, self.i)
        if c.isdigit():
            raise Unsupported("back-reference")
        if c.isascii() and c.isalpha():
            raise Unsupported("unknown escape")
        return Lit(c, start, self.i)

    def group(self) -> Optional[Node]:
        start = self.i
        self.i += 1
        flags_on = flags_off = ""
        kind = "capture"
        if self.peek() == "?":
            self.i += 1
            c = self.peek()
            if c == ":":
                self.i += 1
                kind = "group"
            elif c in ("=", "!"):
                self.i += 1
                kind = "ahead" + c
            elif self.peek(2) in ("<=", "<!"):
                kind = "behind" + self.s[self.i + 1]
                self.i += 2
            elif c == ">":
                self.i += 1
                kind = "group"  # atomic: the same strings where it matches
            elif c == "P" and self.peek(2) == "P<":
                j = self.s.find(">", self.i)
                if j == -1:
                    raise Unsupported("bad group name")
                self.i = j + 1
            elif c == "#":
                j = self.s.find(")", self.i)
                if j == -1:
                    raise Unsupported("unterminated comment")
                self.i = j + 1
                return None
            else:
                j = self.i
                while j < len(self.s) and self.s[j] in _FLAGS:
                    j += 1
                on = self.s[self.i : j]
                off = ""
                if j < len(self.s) and self.s[j] == "-":
                    k = j + 1
                    while k < len(self.s) and self.s[k] in _FLAGS:
                        k += 1
                    off, j = self.s[j + 1 : k], k
                if j < len(self.s) and self.s[j] == ":" and (on or off):
                    self.i = j + 1
                    kind, flags_on, flags_off = "group", on, off
                else:
                    raise Unsupported("inline flags or conditional group")
        body = self.alt()
        if self.peek() != ")":
            raise Unsupported("missing )")
        self.i += 1
        if kind.startswith("ahead") or kind.startswith("behind"):
            return Look(kind.startswith("behind"), kind.endswith("!"), body, start, self.i)
        return Group(body, start, self.i, flags_on, flags_off)

    def char_class(self) -> Class:
        start = self.i
        self.i += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.i += 1
        items: list[ClassItem] = []
        first = True
        while True:
            if self.i >= len(self.s):
                raise Unsupported("unterminated character set")
            c = self.s[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo = self.class_char()
            if lo[0] == "ch" and self.peek() == "-" and self.peek(2) != "-]" and self.s[self.i + 1 : self.i + 2] != "]":
                self.i += 1
                hi = self.class_char()
                if hi[0] != "ch":
                    raise Unsupported("bad character range")
                if ord(hi[1]) < ord(lo[1]):
                    raise Unsupported("bad character range")
                items.append(("range", ord(lo[1]), ord(hi[1])))
            else:
                items.append(lo)
        return Class(negated, items, start, self.i)

    def class_char(self) -> ClassItem:
        c = self.s[self.i]
        start = self.i
        self.i += 1
        if c == "\\":
            node = self.escape(start, in_class=True)
            if isinstance(node, Class):
                return node.items[0]
            assert isinstance(node, Lit)
            return ("ch", node.ch)
        if c == "[" and self.peek() in (":", "=", "."):
            raise Unsupported("possible set syntax")
        return ("ch", c)


def parse(pattern: str) -> Alt:
    """The tree of a pattern; raises Unsupported for syntax the analyses do not read."""
    return _Reader(pattern).parse()
