"""Build the medspaCy pipeline from patterns/: sentences, sections, targets, ConText, findings.

Sentence splitting is our own small rule component, chosen deliberately: PyRuSH (medspaCy's default) runs about ten
times slower on operative notes and logs token text at DEBUG, which is protected health information. Operative notes
are mostly header lines and short sentences, so punctuation plus line structure is enough for ConText's scope.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Optional

import numpy
import spacy
from loguru import logger
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc

from notecheck.rulebook import Rulebook

# medspaCy imports PyRuSH, which logs token text through loguru; we never use it, and we keep it silent regardless.
logger.disable("PyRuSH")
# medspaCy keeps an empty token Matcher beside our regex rules; spaCy warns (W036) on every call otherwise.
warnings.filterwarnings("ignore", message=r"\[W036\]")

SPAN_GROUP = "notecheck"
_END_PUNCT = {".", "!", "?"}
_WRAP_MIN_LINE = 60  # a line at least this long, without closing punctuation, may continue on the next line
_CONTINUATION_INDENT = 8


@Language.component("notecheck_sentences")
def split_sentences(doc: Doc) -> Doc:
    """Start a sentence after . ! ? (unless a lower-case word follows) and at each line break, unless the line looks
    hard-wrapped mid-sentence (long, no closing punctuation, next line starts lower-case). Works on plain lists of
    token texts and offsets and writes all boundaries at once: this runs on every note, so it must be cheap."""
    n = len(doc)
    if n == 0:
        return doc
    text = doc.text
    words = [t.text for t in doc]
    starts = [1] + [0] * (n - 1)  # SENT_START: 1 = starts a sentence, -1 = does not
    start_next = False
    for i in range(n):
        w = words[i]
        if i:
            starts[i] = 1 if start_next else -1
        first = w[:1]
        if first in ("\n", "\r") or (w.isspace() and "\n" in w):
            if i:
                starts[i] = -1  # the line break belongs to the sentence it ends
            idx = doc[i].idx
            line_start = text.rfind("\n", 0, idx) + 1
            line = text[line_start:idx].rstrip()
            nxt = words[i + 1] if i + 1 < n else ""
            # A continuation line in a "LABEL:   value" template is indented far past the label.
            indent = len(w) - len(w.rstrip(" \t")) if "\n" in w else 0
            wrapped = (w.count("\n") < 2 and len(line) >= _WRAP_MIN_LINE and line[-1:] not in ".:;!?"
                       and (nxt[:1].islower() or indent >= _CONTINUATION_INDENT))
            start_next = not wrapped
            continue
        start_next = w in _END_PUNCT and not (i + 1 < n and words[i + 1][:1].islower())
    doc.from_array([SENT_START], numpy.asarray(starts, dtype="int64").astype("uint64").reshape(-1, 1))
    return doc


@lru_cache(maxsize=None)
def _fast_regex_matcher_class() -> type:
    """medspaCy 1.3.1's RegexMatcher rebuilds doc.text (a join over every token) and scans it once per pattern, with
    re.IGNORECASE. This subclass returns the same matches, in the same order, from one lower-cased copy of the text,
    trying each pattern only where it can begin (see fastregex.MultiPatternScanner)."""
    from medspacy.common.regex_matcher import RegexMatcher
    from medspacy.common.util import get_token_for_char

    from notecheck.fastregex import MultiPatternScanner, matching_text

    class SingleTextRegexMatcher(RegexMatcher):
        def _scanner(self) -> tuple[MultiPatternScanner, list[int]]:
            """Built once, and again only when rules are added."""
            size = sum(len(p) for p in self._patterns.values())
            cached = getattr(self, "_notecheck_scanner", None)
            if cached is None or cached[0] != size:
                ids = [match_id for match_id, patterns in self._patterns.items() for _ in patterns]
                flat = [pattern for patterns in self._patterns.values() for pattern in patterns]
                cached = self._notecheck_scanner = (size, MultiPatternScanner(flat), ids)
            return cached[1], cached[2]

        def __call__(self, doc: Doc) -> list:
            text, low = matching_text(doc)
            scanner, ids = self._scanner()
            if len(low) == len(text):
                found = scanner.scan(text, low)
            else:  # lower-casing changed the length (rare letters): scan the original case-insensitively
                found = [[m.span() for m in pattern.finditer(text)] for pattern in scanner.original]
            matches: list = []
            for match_id, spans in zip(ids, found):
                on_match = self._callbacks[match_id]
                for start_char, end_char in spans:
                    span = doc.char_span(start_char, end_char)
                    if span is None:
                        start = get_token_for_char(doc, start_char, resolve=self.resolve_start)
                        end = get_token_for_char(doc, end_char, resolve=self.resolve_end)
                        span = doc[start.i : (len(doc) if end is None else end.i)]
                    if len(span):
                        matches.append((match_id, span.start, span.end))
                        if on_match is not None:
                            on_match(self, doc, len(matches) - 1, matches)
            return matches

    return SingleTextRegexMatcher


def _speed_up_regex_matching(component: object) -> None:
    matcher = next((v for k, v in vars(component).items() if k.endswith("__matcher")), None)
    regex = getattr(matcher, "_MedspacyMatcher__regex_matcher", None)
    if regex is not None:
        regex.__class__ = _fast_regex_matcher_class()


@lru_cache(maxsize=None)
def _sentence_local_context_class() -> type:
    """medspaCy 1.3.1's ConText pairs every target with every modifier in the whole Doc, so its cost grows with the
    square of note length (a 6,400-word note took 2.4 s). A modifier's scope never leaves its sentence, so pairing
    only within each sentence gives the same edges in linear time. Everything else is ConText's own code."""
    from medspacy.context import ConText
    from medspacy.context.context_graph import ConTextGraph
    from medspacy.context.context_modifier import ConTextModifier

    class SentenceLocalConText(ConText):
        def __call__(self, doc: Doc, targets: Optional[str] = None) -> Doc:
            spans = list(doc.spans[self.span_group_name]) if self.input_span_type == "group" else list(doc.ents)
            matcher = self._ConText__matcher
            modifiers = [ConTextModifier(matcher.rule_map[self.nlp.vocab[match_id].text], start, end, doc,
                                         max_scope=self.max_scope)
                         for match_id, start, end in matcher(doc)]
            sent_of = [0] * len(doc)
            for n, sent in enumerate(doc.sents):
                for i in range(sent.start, sent.end):
                    sent_of[i] = n
            by_sent_t: dict[int, list] = {}
            by_sent_m: dict[int, list] = {}
            for t in spans:
                by_sent_t.setdefault(sent_of[t.start], []).append(t)
            for m in modifiers:
                by_sent_m.setdefault(sent_of[m.modifier_span[0]], []).append(m)
            whole = ConTextGraph(prune_on_modifier_overlap=self.prune_on_target_overlap)
            whole.targets, whole.modifiers = spans, []
            for n, sent_modifiers in by_sent_m.items():
                graph = ConTextGraph(prune_on_modifier_overlap=self.prune_on_target_overlap)
                graph.targets, graph.modifiers = by_sent_t.get(n, []), sent_modifiers
                graph.update_scopes()
                graph.apply_modifiers()
                whole.modifiers.extend(graph.modifiers)
                whole.edges.extend(graph.edges)
            for target, modifier in whole.edges:
                target._.modifiers += (modifier,)
            if self.context_attributes_mapping:
                self.set_context_attributes(whole.edges)
            doc._.context_graph = whole
            return doc

    return SentenceLocalConText


def build_pipeline(book: Rulebook, family: Optional[str] = None) -> Language:
    """spacy.blank('en') + our sentence splitter + medspaCy sectionizer, target matcher and ConText + findings."""
    from medspacy.context import ConTextRule
    from medspacy.section_detection import SectionRule
    from medspacy.target_matcher import TargetRule

    import notecheck.extraction  # noqa: F401  (registers notecheck_findings and the Span flags ConText sets)

    nlp = spacy.blank("en")
    nlp.add_pipe("notecheck_sentences")
    sectionizer = nlp.add_pipe(
        "medspacy_sectionizer",
        config={"rules": None, "input_span_type": None, "span_attrs": None, "require_start_line": False},
    )
    sectionizer.add([SectionRule(**r.model_dump(exclude_none=True)) for r in book.sections.section_rules])
    matcher = nlp.add_pipe(
        "medspacy_target_matcher",
        config={"rules": None, "result_type": "group", "span_group_name": SPAN_GROUP, "prune": False},
    )
    matcher.add(
        [
            TargetRule(
                literal=r.literal,
                category=r.category,
                pattern=r.pattern,
                attributes=r.attributes,
                metadata=r.metadata.model_dump(),
            )
            for r in book.targets.target_rules
        ]
    )
    span_attrs = {
        "NEGATED_EXISTENCE": {"is_negated": True},
        "POSSIBLE_EXISTENCE": {"is_uncertain": True},
        "HISTORICAL": {"is_historical": True},
        "HYPOTHETICAL": {"is_hypothetical": True},
        "FAMILY": {"is_family": True},
        "PRE_REDUCTION": {"is_pre_reduction": True},
        "POST_REDUCTION": {"is_post_reduction": True},
    }
    context = nlp.add_pipe(
        "medspacy_context",
        config={
            "rules": None,
            "input_span_type": "group",
            "span_group_name": SPAN_GROUP,
            "span_attrs": span_attrs,
            "prune_on_target_overlap": False,
        },
    )
    context.add([ConTextRule(**r.model_dump(exclude_none=True)) for r in book.context.context_rules])
    nlp.add_pipe("notecheck_findings", config={"patterns_dir": str(book.root)})
    for component in (sectionizer, matcher, context):
        _speed_up_regex_matching(component)
    context.__class__ = _sentence_local_context_class()
    return nlp
