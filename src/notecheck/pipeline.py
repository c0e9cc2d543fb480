"""Build the medspaCy pipeline from patterns/: sentences, sections, targets, ConText, findings.

Sentence splitting is our own small rule component, chosen deliberately: PyRuSH (medspaCy's default) runs about ten
times slower on operative notes and logs token text at DEBUG, which is protected health information. Operative notes
are mostly header lines and short sentences, so punctuation plus line structure is enough for ConText's scope.
"""

from __future__ import annotations

import warnings
from typing import Optional

import spacy
from loguru import logger
from spacy.language import Language
from spacy.tokens import Doc, Span

from notecheck.rulebook import Rulebook

# medspaCy imports PyRuSH, which logs token text through loguru; we never use it, and we keep it silent regardless.
logger.disable("PyRuSH")
# medspaCy keeps an empty token Matcher beside our regex rules; spaCy warns (W036) on every call otherwise.
warnings.filterwarnings("ignore", message=r"\[W036\]")

SPAN_GROUP = "notecheck"
_END_PUNCT = {".", "!", "?"}
_WRAP_MIN_LINE = 60  # a line at least this long, without closing punctuation, may continue on the next line


@Language.component("notecheck_sentences")
def split_sentences(doc: Doc) -> Doc:
    """Start a sentence after . ! ? and at each line break, unless the line looks hard-wrapped mid-sentence."""
    text = doc.text
    start_next = True
    for token in doc:
        if token.is_space and "\n" in token.text:
            token.is_sent_start = start_next if token.i == 0 else False
            line_start = text.rfind("\n", 0, token.idx) + 1
            line = text[line_start : token.idx].rstrip()
            blank_line = token.text.count("\n") > 1
            nxt = doc[token.i + 1] if token.i + 1 < len(doc) else None
            wrapped = (
                not blank_line
                and len(line) >= _WRAP_MIN_LINE
                and line[-1:] not in ".:;!?"
                and nxt is not None
                and nxt.text[:1].islower()
            )
            start_next = not wrapped
            continue
        if token.i == 0:
            token.is_sent_start = True
        else:
            token.is_sent_start = start_next
        # "incl. fracture" or "approx. 3 cm" does not end a sentence; a capital, digit or new line after . does.
        nxt = doc[token.i + 1] if token.i + 1 < len(doc) else None
        start_next = token.text in _END_PUNCT and not (nxt is not None and nxt.text[:1].islower())
    return doc


def _fast_regex_matcher_class() -> type:
    """medspaCy 1.3.1's RegexMatcher rebuilds doc.text (a join over every token) once per pattern; with ~100 regex
    rules that was 60% of the run time. This subclass returns the same matches but builds the text once per Doc."""
    from medspacy.common.regex_matcher import RegexMatcher
    from medspacy.common.util import get_token_for_char

    class SingleTextRegexMatcher(RegexMatcher):
        def __call__(self, doc: Doc) -> list:
            matches = []
            text = doc.text_with_ws
            for match_id, patterns in self._patterns.items():
                on_match = self._callbacks[match_id]
                for pattern in patterns:
                    for re_match in pattern.finditer(text):
                        span = doc.char_span(re_match.start(), re_match.end())
                        if span is None:
                            start = get_token_for_char(doc, re_match.start(), resolve=self.resolve_start)
                            end = get_token_for_char(doc, re_match.end(), resolve=self.resolve_end)
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


def _register_extensions() -> None:
    for attr in ("is_pre_reduction", "is_post_reduction"):
        if not Span.has_extension(attr):
            Span.set_extension(attr, default=False)


def build_pipeline(book: Rulebook, family: Optional[str] = None) -> Language:
    """spacy.blank('en') + our sentence splitter + medspaCy sectionizer, target matcher and ConText + findings."""
    from medspacy.context import ConTextRule
    from medspacy.section_detection import SectionRule
    from medspacy.target_matcher import TargetRule

    import notecheck.extraction  # noqa: F401  (registers the notecheck_findings factory)

    _register_extensions()
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
    return nlp
