"""Our matching component must give exactly what medspaCy's own components give over the same rules, on every note
in the repository: the same sections, targets, ConText edges and scopes."""

import os
import re

import pytest
import spacy
from conftest import ROOT
from medspacy.common.util import get_token_for_char
from medspacy.section_detection import SectionRule
from medspacy.target_matcher import TargetRule

from notecheck.fastregex import matching_text
from notecheck.matching import RuleMatcher, token_for_char
from notecheck.pipeline import context_rules

# Every note of the corpus, the samples and the holdouts, and a fixed quarter of the writers' notes (each set's 1st,
# 5th, 9th, ... note, so every set and style is in): medspaCy's ConText is slow, and the suite runs twice in CI.
# NOTECHECK_EQUIVALENCE=all compares every writer note too (run it after a change to the matcher or the rules).
EVERY_WRITER_NOTE = os.environ.get("NOTECHECK_EQUIVALENCE") == "all"
NOTES = sorted(
    [*ROOT.glob("corpus/*.txt"), *ROOT.glob("sample_notes/*.txt"), *ROOT.glob("holdout*/*.txt"),
     *(note for folder in sorted(ROOT.glob("writers/*/")) for i, note in enumerate(sorted(folder.glob("*.txt")))
       if EVERY_WRITER_NOTE or i % 4 == 0)]
)
SHARDS = 8  # separate tests, so that pytest-xdist spreads the comparison over the cores


def medspacy_pipeline(book):
    """The reference: spaCy's tokenizer as ours, our sentence splitter, then medspaCy's Sectionizer, TargetMatcher and
    ConText as medspaCy ships them (no subclass, no patch), with notecheck's rules, then our findings stage."""
    from notecheck.extraction import CONTEXT_FLAGS, SPAN_GROUP

    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "notecheck.Tokenizer.v1"}}})
    nlp.max_length = 50_000_000
    nlp.add_pipe("notecheck_sentences")
    sectionizer = nlp.add_pipe("medspacy_sectionizer", config={
        "rules": None, "input_span_type": None, "span_attrs": None, "require_start_line": False})
    sectionizer.add([SectionRule(**r.model_dump(exclude_none=True)) for r in book.sections.section_rules])
    matcher = nlp.add_pipe("medspacy_target_matcher", config={
        "rules": None, "result_type": "group", "span_group_name": SPAN_GROUP, "prune": False})
    matcher.add([TargetRule(literal=r.literal, category=r.category, pattern=r.pattern, attributes=r.attributes,
                            metadata=r.metadata.model_dump()) for r in book.targets.target_rules])
    context = nlp.add_pipe("medspacy_context", config={
        "rules": None, "input_span_type": "group", "span_group_name": SPAN_GROUP,
        "span_attrs": {category: {flag: True} for category, flag in CONTEXT_FLAGS.items()},
        "prune_on_target_overlap": False})
    context.add(context_rules(book))
    nlp.add_pipe("notecheck_findings", config={"patterns_dir": str(book.root)})
    return nlp


def _matched(checker, text):
    """The Doc after matching and ConText, before the findings stage (which drops the matcher's records)."""
    doc = checker._make_doc(text)
    for _, step in checker.nlp.pipeline[:-1]:
        doc = step(doc)
    return doc


def _sections(doc):
    return [(s.category, s.title_start, s.title_end, s.body_start, s.body_end) for s in doc._.sections]


def _targets(doc):
    return sorted((s.start, s.end, s.label_) for s in doc.spans["notecheck"])


def _edges(doc):
    """Each target with each cue that modifies it: the cue's rule, span and scope after termination."""
    return sorted((t.start, t.end, t.label_, m.category, m.rule.literal, m.modifier_span, m.scope_span)
                  for t, m in doc._.context_graph.edges)


@pytest.fixture(scope="module")
def reference(checker):
    from notecheck import Checker

    ref = Checker()
    ref.nlp = medspacy_pipeline(ref.book)
    return ref


def test_the_pipeline_runs_our_matcher(checker):
    assert "notecheck_matcher" in checker.nlp.pipe_names
    assert not any(name.startswith("medspacy") for name in checker.nlp.pipe_names)


def test_the_comparison_covers_every_writer_set():
    sets = {note.parent.name for note in NOTES if note.parent.parent.name == "writers"}
    assert len(sets) == len(list(ROOT.glob("writers/*/"))) > 300
    assert len(NOTES) > 1900


@pytest.mark.parametrize("shard", range(SHARDS))
def test_same_sections_targets_and_context_as_medspacy(checker, reference, shard):
    for note in NOTES[shard::SHARDS]:
        text = note.read_text(encoding="utf-8", errors="replace")
        ours, theirs = _matched(checker, text), _matched(reference, text)
        assert _sections(ours) == _sections(theirs), note.name
        assert _targets(ours) == _targets(theirs), note.name
        assert _edges(ours) == _edges(theirs), note.name
        # medspaCy keeps a target's rule in span._.target_rule, which spaCy keys by character offsets, so two targets
        # over the same words share one rule there; ours records each target's own rule: it must be the one whose
        # pattern matched exactly those words.
        for start, end, label, rule in matching_text(ours).targets:
            assert ours.vocab.strings[label] == rule.category
            found = [m.span() for m in re.finditer(rule.pattern, ours.text, re.IGNORECASE)]
            # exactly those words, or (a match off token boundaries) from the token holding its start to the last
            # token that starts inside it
            first, last = ours[start], ours[end - 1]
            assert any(first.idx <= a <= first.idx + len(first) and last.idx < b for a, b in found), \
                (note.name, rule.literal)


@pytest.mark.parametrize("text", ["Hip  was   reduced.\n\n  Closed reduction, L hip.", " x", "a\n", "one two"])
def test_token_for_char_agrees_with_medspacy(checker, text):
    doc = checker.nlp.make_doc(text)
    starts = [t.idx for t in doc]
    for char in range(len(text) + 1):
        for resolve in ("left", "right"):
            theirs = get_token_for_char(doc, char, resolve=resolve)
            assert token_for_char(starts, char, resolve) == (None if theirs is None else theirs.i), (char, resolve)


def test_token_pattern_and_literal_rules_match_as_medspacy_does():
    """The rule format also allows token patterns and bare literals (medspaCy runs them with spaCy's Matcher and a
    lower-case PhraseMatcher); none of ours use them, but a rules file that does must get medspaCy's matches."""
    nlp = spacy.blank("en")
    ours = RuleMatcher(nlp)
    rules = [TargetRule("closed reduction", "reduction"),
             TargetRule("hip", "site", pattern=[{"LOWER": "hip"}]),
             TargetRule("left", "side", pattern=r"\bleft\b")]
    ours.add(rules)
    theirs = nlp.add_pipe("medspacy_target_matcher", config={"rules": None, "result_type": "group",
                                                              "span_group_name": "notecheck", "prune": False})
    theirs.add([TargetRule(r.literal, r.category, pattern=r.pattern) for r in rules])
    text = "Closed Reduction of the LEFT hip; closed reduction again, left HIP."
    doc, reference = ours(nlp.make_doc(text)), theirs(nlp.make_doc(text))
    found = [(s.start, s.end, s.label_) for s in doc.spans["notecheck"]]
    expected = [(s.start, s.end, s.label_) for s in reference.spans["notecheck"]]
    assert found == expected and len(found) == 6


def test_parent_sections_are_refused():
    with pytest.raises(ValueError, match="parent"):
        RuleMatcher(spacy.blank("en")).add([SectionRule("Sub:", "sub", parents=["top"])])


def test_span_extensions_on_request(checker):
    """By default the pipeline skips medspaCy's per-span extensions (extraction reads the same facts elsewhere);
    span_extensions=True writes them, and the check result is the same either way."""
    from notecheck.pipeline import build_pipeline

    text = "Closed reduction of the left hip. No femoral head fracture. Risks of general anesthesia were discussed."
    nlp = build_pipeline(checker.book, span_extensions=True)
    doc = nlp(checker._make_doc(text))
    spans = {s.text: s for s in doc.spans["notecheck"]}
    assert spans["femoral head fracture"]._.is_negated
    assert [m.category for m in spans["femoral head fracture"]._.modifiers] == ["NEGATED_EXISTENCE"]
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
