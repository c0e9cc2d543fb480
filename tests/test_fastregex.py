"""The lower-cased regex path must match exactly what re.IGNORECASE matches, for every rule on every note we have."""

import json
import re

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from notecheck.fastregex import MultiPatternScanner, lowered
from notecheck.rulebook import default_patterns_dir

NOTES = (sorted(ROOT.glob("corpus/*.txt")) + sorted(ROOT.glob("sample_notes/*.txt"))
         + sorted(ROOT.glob("holdout*/*.txt")))


def _patterns(sections=False):
    out = []
    files = [("target_rules.json", "target_rules"), ("context_rules.json", "context_rules")]
    for name, key in files + ([("sections.json", "section_rules")] if sections else []):
        for rule in json.loads((default_patterns_dir() / name).read_text(encoding="utf-8"))[key]:
            if isinstance(rule.get("pattern"), str):
                out.append(rule["pattern"])
    return out


def test_every_rule_pattern_is_lowered():
    """Only a rule that is case-sensitive on purpose, "(?-i:...)", may need the slower original-text path."""
    assert [p for p in _patterns() if lowered(p) is None and "(?-i:" not in p] == []


def test_same_matches_as_ignorecase():
    texts = [n.read_text(encoding="utf-8", errors="replace") for n in NOTES]
    texts.append("ÉCHO À L'HÔPITAL: [X] GENERAL; Pipkin IV; S73.014A; CR'D L HIP; İstanbul ﬁx")
    for pattern in _patterns():
        slow, fast = re.compile(pattern, re.IGNORECASE), lowered(pattern)
        if fast is None:
            continue  # case-sensitive on purpose: the scanner runs it on the original text
        for text in texts:
            low = text.lower()
            if len(low) != len(text):
                continue  # the matcher falls back to re.IGNORECASE for such texts
            spans = [m.span() for m in slow.finditer(text)]
            assert spans == [m.span() for m in fast.finditer(low)], pattern


@pytest.mark.parametrize("pattern", [r"(?i)abc", r"(a)\1"])
def test_unsupported_patterns_fall_back(pattern):
    assert lowered(pattern) is None


_ALL = [re.compile(p, re.IGNORECASE) for p in _patterns(sections=True)]
_SCANNER = MultiPatternScanner(_ALL)
_TRICKY = [
    "ÉCHO À L'HÔPITAL: [X] GENERAL; Pipkin IV; S73.014A; CR'D L HIP; ﬁx",
    "redislocation; predislocated; xGENERAL; MVCs; I reduced it. Dr. O'Neil reduced the hip.\r\nPLAN: f/u 2 wks",
    "\n\nProcedure:\n1. Closed reduction\nAnesthesia: general\n[ ] MAC [x] general ☒ GA ☐ spinal\n",
    "the hip (R) was dislocated 2019; no fx; s/p THA 2 years ago? family history of DDH",
    "ſpica cast; the hıp was reduced; 50 µg fentanyl; ΜΑC; Kocher-Langenbeck (Kelvin K)",
]


def test_scanner_finds_exactly_what_finditer_finds():
    """The scanner tries each rule only where a match can begin; it must lose nothing and add nothing."""
    texts = [n.read_text(encoding="utf-8", errors="replace") for n in NOTES] + _TRICKY
    assert not _SCANNER.full, "every rule should be indexed by where it can begin"
    for text in texts:
        low = text.lower()
        if len(low) != len(text):
            continue
        found = _SCANNER.scan(text, low)
        for pattern, spans in zip(_ALL, found):
            assert spans == [m.span() for m in pattern.finditer(text)], pattern.pattern


_WORDS = ["hip", "dislocat", "ion", "ed", "reduc", "general", "GA", "MAC", "no", "not", "I", "Dr.", "fx", "THA",
          "ſ", "µ",
          "L", "R", "left", "2019", "S73.01", "27250", "spica", "traction", "\n", " ", "  ", ":", "[x]", "☐", "-",
          "post", "pre", "was", "sedation", "anesthesia", "open", "closed", "?", "(", ")", "é", "_"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=60))
def test_scanner_matches_finditer_on_generated_text(parts):
    text = "".join(parts)
    found = _SCANNER.scan(text, text.lower())
    for pattern, spans in zip(_ALL, found):
        assert spans == [m.span() for m in pattern.finditer(text)], pattern.pattern


@pytest.mark.parametrize("pattern, flags, text", [
    (r"[А-Я]+", re.I, "Борис"),  # capitals beyond Latin in a range
    (r"[À-Þ]", re.I, "÷"),  # the multiplication sign is no capital
    (r"ΟΔΟΣ", re.I, "ΟΔΟΣ"),  # final sigma
    (r"[a-z]+", re.I, "yıldız"),  # dotless i, named only by a range
    (r"[a-z]+", re.I, "ſpica"),  # long s
    (r"(?<![^\n])(?:|foo)", re.I, "foo"),  # an empty match, then a longer one at the same place
    (r"(?<![^\n]).*?", re.I, "foo\nbar"),
    (r"^foo", re.I | re.M, "x\nfoo"),  # other flags change how the source reads
    (r"foo | bar", re.I | re.X, "bar"),
    (r"\bfoo", re.I | re.A, "éfoo"),
])
def test_scanner_edge_cases(pattern, flags, text):
    """Counterexamples a review found; each must now match finditer exactly."""
    compiled = re.compile(pattern, flags)
    assert MultiPatternScanner([compiled]).scan(text, text.lower())[0] == [m.span() for m in compiled.finditer(text)]


_SYNTAX = [
    r"\x41b\u00c9\U0001F600", r"[A-Z]+", r"[^A-Z]x", r"[À-Þ]{2,3}?", r"\101\0", r"[\101-\103]", r"a{,2}b", r"a{2}",
    r"x{1,}y", r"{", r"a{x}", r"(?>AB|A)C", r"(?P<n>Ab)(?#comment)c", r"(?-i:AB)c", r"(?<=[\s:])Hip\b",
    r"(?<![^\n])Plan\b", r"[]A]", r"[A-]", r"[\]\-\\]", r"\b(?:MRI|MR\.)\B", r"[\d\W]Q", r"a*+B", r"\.\*\?",
]


@pytest.mark.parametrize("pattern", _SYNTAX)
def test_lowered_reads_re_syntax_as_re_does(pattern):
    """Our own reading of the pattern syntax (no private `re` parser) must lower patterns exactly."""
    compiled = re.compile(pattern, re.IGNORECASE)
    fast = lowered(pattern)
    texts = ["AbÉ😀 ab", "ABC abc XYZ", "x]A- ]\\", "HIP :Hip\nPlan plan", "MRI MR. mr.x", "AAB aab Ab", "{ a{x} x{1,}y",
             "ÀÁÂ ààà ÞÞ", "7Q q", ".*? ", "AC abc ABC", "ab c AB C", "A\x00 A\x00", "ABC BBC"]
    for text in texts:
        expected = [m.span() for m in compiled.finditer(text)]
        if fast is not None:
            assert [m.span() for m in fast.finditer(text.lower())] == expected, (pattern, text)
        scanner = MultiPatternScanner([compiled])
        assert scanner.scan(text, text.lower())[0] == expected, (pattern, text)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?i)abc", r"(?(1)a|b)", r"\N{LATIN SMALL LETTER A}", r"(?x) a"])
def test_syntax_outside_the_reader_is_refused(pattern):
    from notecheck.regextree import Unsupported, parse

    with pytest.raises(Unsupported):
        parse(pattern)


def test_fold_table_pairs_fold_under_ignorecase():
    """The extra case pairs written out as data must be pairs re.IGNORECASE really equates."""
    from notecheck.fastregex import _EXTRA_CASES

    for group in _EXTRA_CASES:
        for a in group:
            for b in group:
                assert re.fullmatch(re.escape(chr(a)), chr(b), re.IGNORECASE), (hex(a), hex(b))
