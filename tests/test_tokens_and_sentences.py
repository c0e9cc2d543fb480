"""The sentence splitter looks only at line breaks and full stops; it must give the boundaries of the plain
token-by-token rule it implements, on every note we have and on awkward layouts."""

import re

import pytest
from conftest import ROOT

from notecheck.pipeline import (
    _ABBREVIATIONS,
    _CONTINUATION_INDENT,
    _DICTATION_MIN_STOPS,
    _END_PUNCT,
    _WRAP_MIN_LINE,
    HANGING_WORDS,
)

NOTES = (sorted(ROOT.glob("corpus/*.txt")) + sorted(ROOT.glob("sample_notes/*.txt"))
         + sorted(ROOT.glob("holdout*/*.txt")) + sorted(ROOT.glob("writers/*/*.txt")))


def _reference(doc):
    """The rule, token by token: a sentence starts after . ! ? (unless a lower-case word follows) and after a line
    break, unless the line looks hard-wrapped; a full stop right after an abbreviation ("incl.", "approx.") does
    not end the sentence when a word or number follows, nor does a '?' glued to the word after it ('?ORIF'). In lower-case dictation (most full stops followed by a
    lower-case word) a lower-case word after a full stop starts a sentence too, unless an abbreviation or a single
    letter precedes the stop."""
    text, words, n = doc.text, [t.text for t in doc], len(doc)
    lower = len(re.findall(r"[.!?][ \t]+[a-z]", text))
    dictation = lower >= _DICTATION_MIN_STOPS and lower > len(re.findall(r"[.!?][ \t]+[A-Z]", text))
    starts, start_next = [True] + [False] * (n - 1), False
    for i in range(n):
        w = words[i]
        if i:
            starts[i] = start_next
        if w[:1] in ("\n", "\r") or (w.isspace() and "\n" in w):
            if i:
                starts[i] = False
            idx = doc[i].idx
            line = text[text.rfind("\n", 0, idx) + 1 : idx].rstrip()
            nxt = words[i + 1] if i + 1 < n else ""
            indent = len(w) - len(w.rstrip(" \t")) if "\n" in w else 0
            opens = nxt == "(" and i + 2 < n and words[i + 2][:1].islower()
            hangs = line.split(" ")[-1].lower() in HANGING_WORDS
            mark = re.match(r"[ \t]*(>+|\|)[ \t]*", line)
            after = re.compile(r"[ \t]*(>+|\|)[ \t]*").match(text, doc[i + 1].idx) if i + 1 < n else None
            if mark and after and nxt[:1] in (">", "|") and mark.group(1) == after.group(1):
                nxt = text[after.end() : after.end() + 1]  # a quotation wraps inside its marks
            number = re.compile(r"[ \t]*(?:\d{1,3}:)?(\d{1,2})[ \t]{2,}(?=\S)")
            numbered = number.match(line)
            after = number.match(text, doc[i + 1].idx) if i + 1 < n else None
            if numbered and after and nxt[:1].isdigit() and int(after.group(1)) == int(numbered.group(1)) + 1:
                nxt = text[after.end() : after.end() + 1]  # a numbered transcript line wraps past the next number
            wrapped = (w.count("\n") < 2 and len(line) >= _WRAP_MIN_LINE and line[-1:] not in ".:;!?"
                       and (nxt[:1].islower() or opens or hangs or indent >= _CONTINUATION_INDENT))
            start_next = not wrapped
            continue
        next_lower = i + 1 < n and words[i + 1][:1].islower()
        start_next = w in _END_PUNCT and (dictation or not next_lower) and not (i + 1 < n and words[i + 1][:1] in ")]")
        if start_next and w == "." and i and doc[i - 1].idx + len(words[i - 1]) == doc[i].idx \
                and i + 1 < n and words[i + 1][:1].isalnum() \
                and (words[i - 1].lower() in _ABBREVIATIONS or (next_lower and len(words[i - 1]) < 2)):
            start_next = False
        if start_next and w == "?" and not doc[i].whitespace_ and i + 1 < n \
                and (words[i + 1][:1].isalpha() or words[i + 1][:1] == "#"):
            start_next = False  # a query prefix ('?ORIF') opens the words it doubts
    return starts


AWKWARD = [
    "", "x", ".", "\n", "Hip reduced.\n\n\nNext. next? Yes!", "Dr. Smith reduced it. 2.5 mg. ...\r\n  \n  indented",
    "A long line that goes on and on without any closing punctuation at all here\ncontinues in lower case",
    "LABEL:      value that is long enough to wrap past sixty characters of the line\n" + " " * 12 + "Continued",
    "ends with a break\n", "?!", "a.\nb", "  leading spaces.  Two  spaces .",
    "Risks incl. General anesthesia. Approx. 2 cm. Ends incl.", "Bilat. Hips reduced. vs. Open",
    "plan harness. a harness was fitted. no manipulation. e. coli noted. approx. two weeks. then review",
    "reduced at another hospital (Kuang-Tien?) under GA. Seen (why not?). Next [sic.] line",
    "A long line that goes on and on without any closing punctuation at all here\n(continued in a bracket) ok",
    "A long line that goes on and on without any closing punctuation at all here\n(Not continued) ok",
    "A long line that goes on and on without any closing punctuation and then ends on an\n\"Open\" word",
    "A long line that goes on and on without any closing punctuation and then ends on The\nNext line",
    ">> A long quoted line that goes on without any closing punctuation, no acetabular\n>>   or femoral head fracture",
    "> A long quoted line that goes on without any closing punctuation, no acetabular\n>> or a deeper quote",
    "10:10        and the hip finds its way in over days, slowly. No\n10:11        manipulation, no sedation.",
    "12   A long numbered line that goes on without any closing punctuation\n13   Next line starts upper",
    "14:05  plan closed reduction under sedation if the films show no acetabular fracture\n14:40  reduced with Allis",
    "Booked as ?ORIF R acetabulum. Imp: ?#NOF. Why?Because", "reads \"?open reduction\" ?  Next",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_layouts(checker, text):
    doc = checker.nlp.get_pipe("notecheck_sentences")(checker._make_doc(text))
    if len(doc):
        assert [bool(t.is_sent_start) for t in doc] == _reference(doc)


def test_every_note(checker):
    split = checker.nlp.get_pipe("notecheck_sentences")
    for note in NOTES:
        doc = split(checker._make_doc(note.read_text(encoding="utf-8", errors="replace")))
        assert [bool(t.is_sent_start) for t in doc] == _reference(doc), note.name


def _tokens(doc):
    return [(t.text, t.idx, t.whitespace_, t.norm_) for t in doc]


def test_tokens_are_spacys_english_tokens(checker):
    """The tokenizer drops only spaCy's URL matcher and remembers chunks: every note we have, as given and as the
    rules read it, gets spaCy's stock English tokens, offsets, trailing spaces and norms."""
    import spacy

    from notecheck.reading import normalize_for_matching

    stock = spacy.blank("en")
    stock.tokenizer.url_match = None  # the one setting we change (a FHIR export's 'http://hl7.org/fhir/...' splits)
    assert checker.nlp.tokenizer.url_match is None
    for note in NOTES:
        text = note.read_text(encoding="utf-8", errors="replace")
        for variant in (text, normalize_for_matching(text)):
            assert _tokens(checker.nlp.make_doc(variant)) == _tokens(stock.make_doc(variant)), note.name


def test_remembered_chunks_equal_spacys_tokens_on_awkward_text(checker):
    """spaCy's tokenizer with the same settings (no URL pattern), on generated text full of whitespace runs, tabs, non-breaking spaces, line separators, abbreviations, contractions
    and punctuation. (Not runs of apostrophes: spaCy's own split of "''" can depend on the chunk before it, when a
    special-case match straddles whitespace; ours is the chunk's split standing alone.)"""
    import random

    from spacy.tokenizer import Tokenizer

    d = checker.nlp.Defaults
    stock = Tokenizer(checker.nlp.vocab, rules=d.tokenizer_exceptions, prefix_search=checker.nlp.tokenizer.prefix_search,
                      suffix_search=checker.nlp.tokenizer.suffix_search,
                      infix_finditer=checker.nlp.tokenizer.infix_finditer, token_match=d.token_match, url_match=None)
    rnd = random.Random(7)
    pieces = [" ", "  ", "\n", "\t", "\xa0", "\u2028", "\r\n", ".", ",", ";", ":", "(", ")", "-", "/", '"', "a", "Dr.",
              "e.g.", "n't", "can't", "don't", "x", "12", "XYZ", "approx.", "2.5cm", "L)", "[x]", "hip."]
    checker.clear_caches()
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 25)))
        assert _tokens(checker.nlp.make_doc(text)) == _tokens(stock(text)), repr(text)


def test_remembered_affixes_change_nothing(checker):
    """Memoised tokenizer searches only save time: results with warm caches equal results after clearing them,
    and the tokenizer still serialises as spaCy's does."""
    text = (ROOT / "sample_notes").glob("*.txt").__next__().read_text(encoding="utf-8")
    warm = checker.check(text).model_dump()
    checker.clear_caches()
    assert checker.nlp.tokenizer.suffix_search.cache_info().currsize == 0
    assert checker.check(text).model_dump() == warm
    data = checker.nlp.tokenizer.to_bytes()
    import spacy

    fresh = spacy.blank("en")
    fresh.tokenizer.from_bytes(data)
    assert [t.text for t in fresh.make_doc(text)] == [t.text for t in checker.nlp.make_doc(text)]


def test_checking_leaves_the_garbage_collector_as_it_was(checker):
    """The collector is paused during a check, and left as the caller had it, even when the check fails."""
    import gc

    text = "Closed reduction of the left hip under general anesthesia."
    assert gc.isenabled()
    checker.check(text)
    list(checker.check_many([text, text], batch_size=1))
    assert gc.isenabled()
    with pytest.raises(TypeError):
        checker.check(b"not text")  # type: ignore[arg-type]
    assert gc.isenabled()
    gc.disable()
    try:
        checker.check(text)
        assert not gc.isenabled()
    finally:
        gc.enable()
