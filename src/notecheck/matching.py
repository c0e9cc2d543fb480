"""One scan of a note for section headers, target rules and ConText cues (component `notecheck_matcher`).

medspaCy stays the rule format (SectionRule, TargetRule, ConTextRule) and the reference: this component gives what
medspaCy's Sectionizer, TargetMatcher and ConText give over the same rules (tests/test_equivalence.py compares them on
every note in the repository), built only on public spaCy and medspaCy APIs. It is faster for three reasons:

- every regular-expression rule of the three kinds is run in one pass over the note's words
  (fastregex.MultiPatternScanner), instead of one full-text scan per rule per component;
- ConText pairs targets with the cues of their own sentence only (a cue's scope never leaves its sentence), where
  medspaCy pairs every target with every cue in the note (quadratic in the note's length);
- sections are written once to doc._.sections, not to every token.
"""


import bisect
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import medspacy  # noqa: F401  (importing medspaCy registers its Doc, Span and Token extensions)
import numpy
from medspacy.common.util import prune_overlapping_matches
from medspacy.context import ConTextGraph, ConTextModifier, ConTextRule
from medspacy.section_detection import Section, SectionRule
from medspacy.target_matcher import TargetRule
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

from notecheck.fastregex import MultiPatternScanner, matching_text

Rule = Union[SectionRule, TargetRule, ConTextRule]
_KINDS = ("section", "target", "context")
_Match = tuple[int, int, int]  # (rule index within its kind, start token, end token)

# medspaCy's ConText registers these two when it is built; this component stands in for it.
if not Span.has_extension("modifiers"):
    Span.set_extension("modifiers", default=())
if not Doc.has_extension("context_graph"):
    Doc.set_extension("context_graph", default=None)


def token_for_char(starts: list[int], char: int, resolve: str) -> Optional[int]:
    """The token at a character offset that is not a token boundary, widened as medspaCy's get_token_for_char does
    ("left": the token holding the character, "right": the next token), by bisection over token start offsets."""
    i = bisect.bisect_left(starts, char)
    if i < len(starts) and starts[i] == char:
        return i
    if resolve == "left":
        return i - 1 if i < len(starts) else len(starts) - 1
    return i if i < len(starts) else None


def cue_scope(direction: str, start: int, end: int, sent_start: int, sent_end: int,
              max_scope: Optional[int]) -> tuple[int, int]:
    """A cue's scope within its sentence, as medspaCy 1.3.1's ConTextModifier sets it (max_scope caps each side)."""
    way = direction.lower()
    if way == "forward":
        lo, hi = end, sent_end
        if max_scope is not None and hi - lo > max_scope:
            hi = end + max_scope
    elif way == "backward":
        lo, hi = sent_start, start
        if max_scope is not None and hi - lo > max_scope:
            lo = start - max_scope
    else:
        lo, hi = sent_start, sent_end
        if max_scope is not None and start - lo > max_scope:
            lo = start - max_scope
        if max_scope is not None and hi - end > max_scope:
            hi = end + max_scope
    return lo, hi


@dataclass
class _Compiled:
    """The rules of all three kinds, compiled for one scan: regex rules go to one scanner; token-pattern and literal
    rules (none of ours, but the rule format allows them) to spaCy's Matcher and PhraseMatcher, as medspaCy does."""

    scanner: MultiPatternScanner
    owners: list[tuple[int, int]]  # (kind, rule index) of each scanner pattern
    token_matchers: list[Optional[Matcher]]  # per kind
    phrase_matchers: list[Optional[PhraseMatcher]]  # per kind
    keys: dict[int, tuple[int, int]]  # spaCy match key -> (kind, rule index)


class RuleMatcher:
    """Finds section headers, targets and ConText cues in one scan and writes what medspaCy's three components write:
    doc._.sections, the target span group, and doc._.context_graph (plus, on request, the per-span extensions)."""

    def __init__(self, nlp: Language, name: str = "notecheck_matcher", span_group_name: str = "notecheck",
                 span_extensions: bool = False, context_attributes: Optional[dict[str, dict[str, Any]]] = None):
        self.nlp = nlp
        self.name = name
        self.span_group_name = span_group_name
        self.span_extensions = span_extensions
        self.context_attributes = context_attributes or {}
        for attrs in self.context_attributes.values():
            for attr in attrs:
                if not Span.has_extension(attr):
                    Span.set_extension(attr, default=False)
        self.rules: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self._compiled: Optional[_Compiled] = None

    # --- rules -------------------------------------------------------------------------------------------------

    def add(self, rules: list[Rule]) -> None:
        """Add rules of any of the three kinds; each goes to its kind by its class."""
        for rule in rules:
            if isinstance(rule, SectionRule):
                if rule.parents:
                    raise ValueError(f"section rule {rule.literal!r}: parent sections are not supported")
                self.rules[0].append(rule)
            elif isinstance(rule, TargetRule):
                self.rules[1].append(rule)
            elif isinstance(rule, ConTextRule):
                self.rules[2].append(rule)
            else:
                raise TypeError(f"not a SectionRule, TargetRule or ConTextRule: {type(rule).__name__}")
        self._compiled = None

    def _compile(self) -> _Compiled:
        patterns: list[re.Pattern[str]] = []
        owners: list[tuple[int, int]] = []
        token_matchers: list[Optional[Matcher]] = [None, None, None]
        phrase_matchers: list[Optional[PhraseMatcher]] = [None, None, None]
        keys: dict[int, tuple[int, int]] = {}
        strings = self.nlp.vocab.strings
        for kind, rules in enumerate(self.rules):
            for i, rule in enumerate(rules):
                name = f"{self.name}:{_KINDS[kind]}:{i}"
                keys[strings.add(name)] = (kind, i)
                if isinstance(rule.pattern, str):
                    patterns.append(re.compile(rule.pattern, re.IGNORECASE))
                    owners.append((kind, i))
                elif isinstance(rule.pattern, list):
                    if token_matchers[kind] is None:
                        token_matchers[kind] = Matcher(self.nlp.vocab)
                    token_matchers[kind].add(name, [rule.pattern])  # type: ignore[union-attr]
                else:
                    if phrase_matchers[kind] is None:
                        phrase_matchers[kind] = PhraseMatcher(self.nlp.vocab, attr="LOWER")
                    phrase_matchers[kind].add(name, [self.nlp.make_doc(rule.literal.lower())])  # type: ignore[union-attr]
        return _Compiled(MultiPatternScanner(patterns), owners, token_matchers, phrase_matchers, keys)

    @property
    def compiled(self) -> _Compiled:
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def clear_caches(self) -> None:
        """Forget the per-word candidates remembered from notes already scanned."""
        if self._compiled is not None:
            self._compiled.scanner.clear_caches()

    # --- matching ----------------------------------------------------------------------------------------------

    def matches(self, doc: Doc) -> tuple[list[_Match], list[_Match], list[_Match]]:
        """Per kind, (rule index, start token, end token) in the order medspaCy's matcher returns them: token-pattern
        matches, then literal matches, then regex matches rule by rule in text order."""
        compiled = self.compiled
        prepared = matching_text(doc)
        found: tuple[list[_Match], list[_Match], list[_Match]] = ([], [], [])
        for kind in range(3):
            for inner in (compiled.token_matchers[kind], compiled.phrase_matchers[kind]):
                if inner is not None:
                    found[kind].extend((compiled.keys[key][1], s, e) for key, s, e in inner(doc))
        spans = compiled.scanner.scan(prepared.text, prepared.low, prepared.words)
        starts: Optional[list[int]] = None
        for (kind, i), hits in zip(compiled.owners, spans):
            out = found[kind]
            for start_char, end_char in hits:
                bounds = prepared.token_span(doc, start_char, end_char)
                if bounds is None:  # not on token boundaries: widen as medspaCy's RegexMatcher does
                    if starts is None:
                        starts = prepared.token_starts(doc)
                    first = token_for_char(starts, start_char, "left")
                    last = token_for_char(starts, end_char, "right")
                    bounds = (first if first is not None else 0, len(doc) if last is None else last)
                if bounds[1] > bounds[0]:
                    out.append((i, bounds[0], bounds[1]))
        return found

    def __call__(self, doc: Doc) -> Doc:
        sections, targets, cues = self.matches(doc)
        self._set_sections(doc, prune_overlapping_matches(sections))
        spans = self._set_targets(doc, targets)
        self._set_context(doc, spans, prune_overlapping_matches(cues))
        return doc

    # --- what the three medspaCy components would write ---------------------------------------------------------

    def _set_sections(self, doc: Doc, matches: list[_Match]) -> None:
        """doc._.sections as medspaCy's Sectionizer builds it (text before the first header is a section of no
        category; a rule's max_scope caps its section's length)."""
        rules, n = self.rules[0], len(doc)
        if not matches:
            doc._.sections = [Section(None, 0, 0, 0, n)]
            return
        sections = [Section(None, 0, 0, 0, matches[0][1])] if matches[0][1] != 0 else []
        for k, (i, start, end) in enumerate(matches):
            rule = rules[i]
            stop = n if k == len(matches) - 1 else matches[k + 1][1]
            if rule.max_scope is not None:
                stop = min(end + rule.max_scope, stop)
            sections.append(Section(rule.category, start, end, end, stop, None, rule))
        doc._.sections = sections

    def _set_targets(self, doc: Doc, matches: list[_Match]) -> list[Span]:
        """The target span group (every match, unpruned, as the target matcher with prune=False keeps them), and the
        same targets as (start, end, label, rule) records on the Doc's prepared text for extraction: spaCy keys Span
        extensions by character offsets only, so two targets over the same words with different labels would share
        one span._.target_rule."""
        rules = self.rules[1]
        records = []
        spans = []
        for i, start, end in matches:
            rule = rules[i]
            span = Span(doc, start, end, label=rule.category)
            if self.span_extensions:
                span._.target_rule = rule
                for attribute, value in (rule.attributes or {}).items():
                    setattr(span._, attribute, value)
            records.append((start, end, span.label, rule))
            spans.append(span)
        doc.spans[self.span_group_name] = spans
        matching_text(doc).targets = records
        return spans

    def _set_context(self, doc: Doc, targets: list[Span], matches: list[_Match]) -> None:
        """ConText over each sentence on its own: a cue's scope never leaves its sentence, so pairing targets only
        with the cues of their sentence gives medspaCy's edges in linear time (its pairing over the whole note took
        2.4 s on a 6,400-word note). Scopes, termination and pairing are medspaCy's own ConTextGraph."""
        rules = self.rules[2]
        is_start = doc.to_array(SENT_START) == 1
        if len(doc):
            is_start[0] = True
        sent_of = (numpy.cumsum(is_start) - 1).tolist()
        bounds = [*numpy.flatnonzero(is_start).tolist(), len(doc)]
        targets_in: dict[int, list[Span]] = {}
        for t in targets:  # a target that runs over a sentence break can be modified from either sentence
            for n in range(sent_of[t.start], sent_of[t.end - 1] + 1):
                targets_in.setdefault(n, []).append(t)
        cues_in: dict[int, list[Any]] = {}
        reaching: set[int] = set()  # copies of a cue placed in a later sentence its words run into
        for i, start, end in matches:
            n = sent_of[start]
            rule = rules[i]
            # medspaCy scopes a cue by its first word's sentence; a cue whose words run over a sentence break still
            # limits the scopes of the cues in the sentences it reaches
            scope = cue_scope(rule.direction, start, end, bounds[n], bounds[n + 1], rule.max_scope)
            for k in range(n, sent_of[end - 1] + 1):
                if k in targets_in:  # a cue in a sentence without targets can change nothing
                    cue = ConTextModifier(rule, start, end, doc, *scope)
                    if k != n:
                        reaching.add(id(cue))
                    cues_in.setdefault(k, []).append(cue)
        whole = ConTextGraph(prune_on_modifier_overlap=False)
        whole.targets, whole.modifiers = targets, []
        for n, cues in cues_in.items():
            graph = ConTextGraph(prune_on_modifier_overlap=False)
            graph.targets, graph.modifiers = targets_in[n], cues
            graph.update_scopes()
            graph.apply_modifiers()
            whole.modifiers.extend(m for m in graph.modifiers if id(m) not in reaching)
            whole.edges.extend(e for e in graph.edges if id(e[1]) not in reaching)
        if self.span_extensions:
            for target, modifier in whole.edges:
                target._.modifiers += (modifier,)
                for attr, value in self.context_attributes.get(modifier.category, {}).items():
                    setattr(target._, attr, value)
        doc._.context_graph = whole


@Language.factory("notecheck_matcher", default_config={"span_group_name": "notecheck", "span_extensions": False,
                                                       "context_attributes": {}})
def make_rule_matcher(nlp: Language, name: str, span_group_name: str, span_extensions: bool,
                      context_attributes: dict[str, dict[str, Any]]) -> RuleMatcher:
    return RuleMatcher(nlp, name, span_group_name, span_extensions, context_attributes)
