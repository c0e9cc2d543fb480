"""Our faster stand-ins for medspaCy internals must give exactly medspaCy's results, on every note we have."""

import pytest
from conftest import ROOT
from medspacy.common.util import get_token_for_char
from medspacy.section_detection import Sectionizer

from notecheck.pipeline import _token_for_char

NOTES = (sorted(ROOT.glob("corpus/*.txt")) + sorted(ROOT.glob("sample_notes/*.txt"))
         + sorted(ROOT.glob("holdout*/*.txt")))


def _sections(doc):
    return [(s.category, s.title_start, s.title_end, s.body_start, s.body_end) for s in doc._.sections]


def test_header_only_sectionizer_builds_medspacys_sections(checker):
    from notecheck import Checker

    reference = Checker()
    reference.nlp.get_pipe("medspacy_sectionizer").__class__ = Sectionizer
    assert type(checker.nlp.get_pipe("medspacy_sectionizer")) is not Sectionizer  # the fast path is in use
    for note in NOTES:
        text = note.read_text(encoding="utf-8", errors="replace")
        ours, theirs = checker.nlp(checker._make_doc(text)), reference.nlp(reference._make_doc(text))
        assert _sections(ours) == _sections(theirs), note.name
        assert checker.check(text).model_dump() == reference.check(text).model_dump(), note.name


@pytest.mark.parametrize("text", ["Hip  was   reduced.\n\n  Closed reduction, L hip.", " x", "a\n", "one two"])
def test_token_for_char_agrees_with_medspacy(checker, text):
    doc = checker.nlp.make_doc(text)
    starts = [t.idx for t in doc]
    for char in range(len(text) + 1):
        for resolve in ("left", "right"):
            theirs = get_token_for_char(doc, char, resolve=resolve)
            assert _token_for_char(starts, char, resolve) == (None if theirs is None else theirs.i), (char, resolve)


def test_span_extensions_on_request(checker):
    """By default the pipeline skips medspaCy's per-span extensions (extraction reads the same facts elsewhere);
    span_extensions=True writes them, and the check result is the same either way."""
    from notecheck.pipeline import build_pipeline

    text = "Closed reduction of the left hip. No femoral head fracture. Risks of general anesthesia were discussed."
    nlp = build_pipeline(checker.book, span_extensions=True)
    doc = nlp(checker._make_doc(text))
    spans = {s.text: s for s in doc.spans["notecheck"]}
    assert spans["femoral head fracture"]._.is_negated
    assert spans["femoral head fracture"]._.target_rule.category == "femoral_head_fracture"
    plain = checker.nlp(checker._make_doc(text))
    assert all(s._.target_rule is None for s in plain.spans["notecheck"])
    assert doc._.findings == plain._.findings and doc._.evidence == plain._.evidence


def test_a_doc_run_twice_gives_the_same_findings(checker):
    text = "Closed reduction of the left hip under general anesthesia. No femoral head fracture. CPT 27252."
    doc = checker.nlp(checker._make_doc(text))
    first = (doc._.findings, doc._.evidence)
    again = checker.nlp(doc)
    assert (again._.findings, again._.evidence) == first
