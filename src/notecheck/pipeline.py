"""Build the medspaCy pipeline from patterns/: sentences, sections, targets, ConText, findings.

Sentence splitting is our own small rule component, chosen deliberately: PyRuSH (medspaCy's default) runs about ten
times slower on operative notes and logs token text at DEBUG, which is protected health information. Operative notes
are mostly header lines and short sentences, so punctuation plus line structure is enough for ConText's scope.
"""

from __future__ import annotations

import bisect
import importlib.util
import re
import sys
import types
import warnings
from functools import lru_cache
from typing import Any, Optional

import numpy
import spacy
from loguru import logger
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from notecheck.fastregex import MultiPatternScanner, matching_text
from notecheck.rulebook import Rulebook

# medspaCy imports PyRuSH, which logs token text through loguru; we never use it, and we keep it silent regardless.
logger.disable("PyRuSH")
# medspaCy keeps an empty token Matcher beside our regex rules; spaCy warns (W036) on every call otherwise.
warnings.filterwarnings("ignore", message=r"\[W036\]")

SPAN_GROUP = "notecheck"
_END_PUNCT = {".", "!", "?"}
_WRAP_MIN_LINE = 60  # a line at least this long, without closing punctuation, may continue on the next line
_CONTINUATION_INDENT = 8
# Abbreviations that end in a full stop mid-sentence ("incl. general anaesthesia", "approx. 2 cm"): the stop after
# them does not end the sentence, so a cue before them keeps its reach.
_ABBREVIATIONS = frozenset({"incl", "approx", "appx", "esp", "resp", "eg", "ie", "cf", "viz", "fig", "figs",
                            "dr", "drs", "mr", "mrs", "ms", "prof", "vs", "ca", "abt", "bilat", "ant", "prox"})


class _DeferredPackage(types.ModuleType):
    """A package whose own __init__ runs on first use of an attribute it has not got yet."""

    def __getattr__(self, name: str) -> object:
        if not self.__dict__.get("_notecheck_loaded"):
            self.__dict__["_notecheck_loaded"] = True
            self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
            return getattr(self, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def defer_quickumls() -> None:
    """Importing medspaCy imports QuickUMLS only to register its spaCy factory, and QuickUMLS imports NLTK: about
    0.13 s of every cold start, for a component notecheck never uses. For a process that notecheck owns (the
    command line), make `quickumls` load on first real use instead; anything that does use it still gets all of it.
    A library caller's process is left alone."""
    if "quickumls" in sys.modules or "medspacy" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("quickumls")
        if spec is None or spec.loader is None:
            return
        package = importlib.util.module_from_spec(spec)
        package.__class__ = _DeferredPackage
        sys.modules["quickumls"] = package
        sub_spec = importlib.util.find_spec("quickumls.spacy_component")
        if sub_spec is None or sub_spec.loader is None:
            raise ImportError("quickumls.spacy_component")
        sub_spec.loader = importlib.util.LazyLoader(sub_spec.loader)
        sub = importlib.util.module_from_spec(sub_spec)
        sys.modules["quickumls.spacy_component"] = sub
        sub_spec.loader.exec_module(sub)
        package.__dict__["spacy_component"] = sub
    except (ImportError, ValueError, AttributeError):
        sys.modules.pop("quickumls", None)
        sys.modules.pop("quickumls.spacy_component", None)


_BREAK_OR_END = re.compile(r"[\n\r.!?]")


@Language.component("notecheck_sentences")
def split_sentences(doc: Doc) -> Doc:
    """Start a sentence after . ! ? (unless a lower-case word follows) and at each line break, unless the line looks
    hard-wrapped mid-sentence (long, no closing punctuation, next line starts lower-case). Only the tokens that hold
    a line break or are a full stop can start a sentence after them, so only those are looked at; all boundaries are
    written at once. This runs on every note, so it must be cheap."""
    n = len(doc)
    if n == 0:
        return doc
    prepared = matching_text(doc)
    text = prepared.text
    offsets, lengths = prepared.token_rows(doc)
    sent = [-1] * n  # SENT_START: 1 = starts a sentence, -1 = does not
    sent[0] = 1
    last = -1
    breaks: list[int] = []
    for found in _BREAK_OR_END.finditer(text):
        i = bisect.bisect_right(offsets, found.start()) - 1
        if i == last:
            continue
        last = i
        start = offsets[i]
        w = text[start : start + lengths[i]]
        nxt = text[offsets[i + 1] : offsets[i + 1] + 1] if i + 1 < n else ""
        if w[:1] in ("\n", "\r") or (w.isspace() and "\n" in w):
            breaks.append(i)
            line = text[text.rfind("\n", 0, start) + 1 : start].rstrip()
            # A continuation line in a "LABEL:   value" template is indented far past the label.
            indent = len(w) - len(w.rstrip(" \t")) if "\n" in w else 0
            wrapped = (w.count("\n") < 2 and len(line) >= _WRAP_MIN_LINE and line[-1:] not in ".:;!?"
                       and (nxt.islower() or indent >= _CONTINUATION_INDENT))
            if not wrapped and i + 1 < n:
                sent[i + 1] = 1
        elif w in _END_PUNCT and not nxt.islower() and i + 1 < n:
            if w == "." and i and offsets[i - 1] + lengths[i - 1] == start and \
                    text[offsets[i - 1] : start].lower() in _ABBREVIATIONS and nxt[:1].isalnum():
                continue
            sent[i + 1] = 1
    for i in breaks:  # a line break belongs to the sentence it ends
        if i:
            sent[i] = -1
    doc.from_array([SENT_START], numpy.asarray(sent, dtype="int64").astype("uint64").reshape(-1, 1))
    return doc


def _token_for_char(starts: list[int], char: int, resolve: str) -> Optional[int]:
    """medspaCy's get_token_for_char (a walk over every token) by bisection over the token start offsets."""
    i = bisect.bisect_left(starts, char)
    if i < len(starts) and starts[i] == char:
        return i
    if resolve == "left":
        return i - 1 if i < len(starts) else len(starts) - 1
    return i if i < len(starts) else None


class _ScanGroup:
    """The sectionizer, target matcher and ConText each hold their own regex rules; scanning a note once for all of
    them walks its words once instead of three times. The first member called on a Doc scans for every member and
    leaves the others their share on the Doc's prepared text."""

    def __init__(self, matchers: list[Any]) -> None:
        self.matchers = matchers
        self._built: Optional[tuple[tuple[int, ...], Any, list[tuple[int, int]]]] = None

    def _scanner(self) -> tuple[MultiPatternScanner, list[tuple[int, int]]]:
        sizes = tuple(sum(len(p) for p in m._patterns.values()) for m in self.matchers)
        if self._built is None or self._built[0] != sizes:  # built once, and again only when rules are added
            flat, owners = [], []
            for k, m in enumerate(self.matchers):
                for match_id, patterns in m._patterns.items():
                    for pattern in patterns:
                        flat.append(pattern)
                        owners.append((k, match_id))
            self._built = (sizes, MultiPatternScanner(flat), owners)
        return self._built[1], self._built[2]

    def clear_caches(self) -> None:
        if self._built is not None:
            self._built[1].clear_caches()

    def found(self, matcher: Any, doc: Doc) -> list[tuple[int, list[tuple[int, int]]]]:
        """(match id, character spans) for each of this matcher's patterns, in the order it holds them."""
        prepared = matching_text(doc)
        shares = prepared.scans.get(id(self))
        if shares is None:
            scanner, owners = self._scanner()
            spans = scanner.scan(prepared.text, prepared.low, prepared.words)
            shares = [[] for _ in self.matchers]
            for (k, match_id), found in zip(owners, spans):
                shares[k].append((match_id, found))
            prepared.scans[id(self)] = shares
        return shares[self.matchers.index(matcher)]  # type: ignore[no-any-return]


@lru_cache(maxsize=None)
def _fast_regex_matcher_class() -> type:
    """medspaCy 1.3.1's RegexMatcher rebuilds doc.text (a join over every token) and scans it once per pattern, with
    re.IGNORECASE. This subclass returns the same matches, in the same order, from one scan of the text shared with
    the pipeline's other regex matchers, trying each pattern only where it can begin (fastregex.MultiPatternScanner)."""
    from medspacy.common.regex_matcher import RegexMatcher

    class SingleTextRegexMatcher(RegexMatcher):
        def __call__(self, doc: Doc) -> list:
            group = getattr(self, "_notecheck_group", None)
            if group is None:
                group = self._notecheck_group = _ScanGroup([self])
            prepared = matching_text(doc)
            matches: list = []
            for match_id, spans in group.found(self, doc):
                on_match = self._callbacks[match_id]
                for start_char, end_char in spans:
                    bounds = prepared.token_span(doc, start_char, end_char)
                    if bounds is None:  # not on token boundaries: widen as medspaCy's get_token_for_char does
                        starts = prepared.token_starts(doc)
                        start = _token_for_char(starts, start_char, self.resolve_start)
                        end = _token_for_char(starts, end_char, self.resolve_end)
                        bounds = (start, len(doc) if end is None else end)
                    if bounds[1] > bounds[0]:
                        matches.append((match_id, bounds[0], bounds[1]))
                        if on_match is not None:
                            on_match(self, doc, len(matches) - 1, matches)
            return matches

    return SingleTextRegexMatcher


@lru_cache(maxsize=None)
def _lean_medspacy_matcher_class() -> type:
    """medspaCy's MedspacyMatcher runs spaCy's token Matcher and PhraseMatcher on every Doc even when they hold no
    rules (ours are all regular expressions); an empty Matcher still walks every token. Skip the empty ones."""
    from medspacy.common.medspacy_matcher import MedspacyMatcher
    from medspacy.common.util import prune_overlapping_matches

    class LeanMedspacyMatcher(MedspacyMatcher):
        def __call__(self, doc: Doc) -> list:
            matches: list = []
            for inner in (self._MedspacyMatcher__matcher, self._MedspacyMatcher__phrase_matcher):
                if len(inner):
                    matches += inner(doc)
            matches += self._MedspacyMatcher__regex_matcher(doc)
            return prune_overlapping_matches(matches) if self._prune else matches

    return LeanMedspacyMatcher


def _matchers_of(component: object) -> tuple[Any, Any]:
    """A medspaCy component's MedspacyMatcher (a name-mangled private attribute) and the RegexMatcher inside it."""
    matcher = next((v for k, v in vars(component).items() if k.endswith("__matcher")), None)
    return matcher, getattr(matcher, "_MedspacyMatcher__regex_matcher", None)


def _speed_up_regex_matching(components: list[object]) -> None:
    """Swap in the faster matcher classes, and let the components' regex matchers share one scan per Doc."""
    regexes = []
    for component in components:
        matcher, regex = _matchers_of(component)
        if regex is not None:
            regex.__class__ = _fast_regex_matcher_class()
            matcher.__class__ = _lean_medspacy_matcher_class()
            regexes.append(regex)
    group = _ScanGroup(regexes)
    for regex in regexes:
        regex._notecheck_group = group


def _scope(direction: str, start: int, end: int, sent_start: int, sent_end: int,
           max_scope: Optional[int]) -> tuple[int, int]:
    """A modifier's scope within its sentence, as medspaCy 1.3.1's ConTextModifier sets it (rule.max_scope caps
    each side); computed here from sentence bounds we already have instead of looking the sentence up per modifier."""
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
            strings = self.nlp.vocab.strings
            # Sentence of each token, from the SENT_START array rather than by walking doc.sents token by token.
            is_start = doc.to_array(SENT_START) == 1
            if len(doc):
                is_start[0] = True
            sent_of = (numpy.cumsum(is_start) - 1).tolist()
            bounds = [*numpy.flatnonzero(is_start).tolist(), len(doc)]
            by_sent_t: dict[int, list] = {}
            for t in spans:
                by_sent_t.setdefault(sent_of[t.start], []).append(t)
            # A modifier acts only within its sentence, so one in a sentence without targets can change nothing.
            modifiers = []
            by_sent_m: dict[int, list] = {}
            for match_id, start, end in matcher(doc):
                n = sent_of[start]
                if n not in by_sent_t and not self.max_scope:
                    continue
                rule = matcher.rule_map[strings[match_id]]
                if self.max_scope:  # a fixed window instead of the sentence: ConTextModifier works it out
                    modifier = ConTextModifier(rule, start, end, doc, max_scope=self.max_scope)
                else:
                    scope = _scope(rule.direction, start, end, bounds[n], bounds[n + 1], rule.max_scope)
                    modifier = ConTextModifier(rule, start, end, doc, *scope, max_scope=self.max_scope)
                modifiers.append(modifier)
                by_sent_m.setdefault(n, []).append(modifier)
            whole = ConTextGraph(prune_on_modifier_overlap=self.prune_on_target_overlap)
            whole.targets, whole.modifiers = spans, []
            for n, sent_modifiers in by_sent_m.items():
                graph = ConTextGraph(prune_on_modifier_overlap=self.prune_on_target_overlap)
                graph.targets, graph.modifiers = by_sent_t.get(n, []), sent_modifiers
                graph.update_scopes()
                graph.apply_modifiers()
                whole.modifiers.extend(graph.modifiers)
                whole.edges.extend(graph.edges)
            if getattr(self, "notecheck_span_extensions", True):
                for target, modifier in whole.edges:
                    target._.modifiers += (modifier,)
                if self.context_attributes_mapping:
                    self.set_context_attributes(whole.edges)
            doc._.context_graph = whole
            return doc

    return SentenceLocalConText


@lru_cache(maxsize=None)
def _rule_keeping_target_matcher_class() -> type:
    """medspaCy's TargetMatcher, also recording each target as (start, end, label, rule) on the Doc's prepared text,
    which extraction reads without building Spans again. span._.target_rule alone is not enough: spaCy keys Span
    extensions by character offsets only, so two spans over the same words with different labels ("I reduced":
    manipulation and surgeon role) share one value."""
    from medspacy.target_matcher import TargetMatcher
    from spacy.tokens import Span

    class RuleKeepingTargetMatcher(TargetMatcher):
        def __call__(self, doc: Doc) -> Any:
            if self.result_type is None or self.result_type.lower() != "group":
                return super().__call__(doc)
            matcher = self._TargetMatcher__matcher
            strings = self.nlp.vocab.strings
            prepared = matching_text(doc)
            fresh = prepared.targets is None  # first target matcher of this run over the Doc
            if fresh:
                prepared.targets = []
            records = prepared.targets
            extensions = getattr(self, "notecheck_span_extensions", True)
            spans = []
            for rule_id, start, end in matcher(doc):
                rule = matcher.rule_map[strings[rule_id]]
                span = Span(doc, start=start, end=end, label=rule.category)
                if extensions:
                    span._.target_rule = rule
                    for attribute, value in (rule.attributes or {}).items():
                        setattr(span._, attribute, value)
                records.append((start, end, span.label, rule))
                spans.append(span)
            if self.span_group_name in doc.spans and not fresh:
                doc.spans[self.span_group_name] += spans
            else:  # a Doc run through the pipeline again starts its group afresh, as its findings do
                doc.spans[self.span_group_name] = spans
            return doc

    return RuleKeepingTargetMatcher


@lru_cache(maxsize=None)
def _header_only_sectionizer_class() -> type:
    """medspaCy 1.3.1's Sectionizer writes token._.section on every token of the note (a third of its time); we read
    sections only from doc._.sections. This subclass builds the same doc._.sections and skips the per-token writes.
    Options that need more than that (start/end-line filters, parent sections, sentence boundaries, span attributes)
    fall back to medspaCy's own code."""
    from medspacy.section_detection import Sectionizer
    from medspacy.section_detection.section import Section

    class HeaderOnlySectionizer(Sectionizer):
        def __call__(self, doc: Doc) -> Doc:
            if (self.require_start_line or self.require_end_line or self._parent_sections
                    or self._apply_sentence_boundary or self.assertion_attributes_mapping):
                return super().__call__(doc)  # type: ignore[no-any-return]
            matcher = self._Sectionizer__matcher
            matches = matcher(doc)
            n = len(doc)
            if not matches:
                doc._.sections = [Section(None, 0, 0, 0, n)]
                return doc
            sections = [Section(None, 0, 0, 0, matches[0][1])] if matches[0][1] != 0 else []
            strings = self.nlp.vocab.strings
            for i, (match_id, start, end) in enumerate(matches):
                rule = matcher.rule_map[strings[match_id]]
                stop = n if i == len(matches) - 1 else matches[i + 1][1]
                limit = rule.max_scope if rule.max_scope is not None else self.max_section_length
                if limit is not None:
                    stop = min(end + limit, stop)
                sections.append(Section(rule.category, start, end, end, stop, None, rule))
            doc._.sections = sections
            return doc

    return HeaderOnlySectionizer


_AFFIX_MEMO_SIZE = 20_000  # distinct text chunks remembered per affix search
_AFFIX_MEMO_CHUNK = 40  # longest chunk remembered: 20,000 entries of at most 40 characters is a few MB


def _memoized(search: Any, as_list: bool = False) -> Any:
    """A bounded memo of one of spaCy's affix searches (a pure function of the text chunk). Only short chunks are
    remembered: spaCy searches every shrinking piece of a chunk, so a long one would fill the memo by itself."""
    plain = (lambda text: list(search(text))) if as_list else search
    cached = lru_cache(maxsize=_AFFIX_MEMO_SIZE)(plain)

    def memo(text: str) -> Any:
        return cached(text) if len(text) <= _AFFIX_MEMO_CHUNK else plain(text)

    memo.__self__ = search.__self__  # type: ignore[attr-defined]  # spaCy serialises the regex from __self__
    memo.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    memo.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return memo


_CHUNK_MEMO_SIZE = 50_000  # distinct whitespace-separated chunks remembered, each of at most _AFFIX_MEMO_CHUNK characters
_RUNS = re.compile(r"\S+|\s+")


class ChunkMemoTokenizer(Tokenizer):  # type: ignore[misc]
    """spaCy's Tokenizer, remembering how each whitespace-separated chunk splits.

    spaCy splits a text at whitespace and tokenizes each chunk on its own (affixes, infixes, special cases), but it
    stops caching chunks after the first special case in a Doc, and a line break is one: so nearly every chunk of a
    note was split again. This subclass splits the text at whitespace as spaCy does (a single space after a chunk
    becomes that token's trailing space), takes each chunk's tokens from a bounded memo filled by spaCy's own
    tokenizer, and builds the Doc from words and spaces with spaCy's public Doc constructor, setting the norms that
    special cases give ("n't" -> "not"). tests/test_tokens_and_sentences.py proves the tokens, offsets, spaces and
    norms equal spaCy's on every note we have and on generated awkward text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chunks: dict[str, tuple[tuple[str, ...], tuple[tuple[int, str], ...]]] = {}

    def clear_chunks(self) -> None:
        self._chunks.clear()

    def _split(self, chunk: str) -> tuple[tuple[str, ...], tuple[tuple[int, str], ...]]:
        found = self._chunks.get(chunk)
        if found is None:
            doc = Tokenizer.__call__(self, chunk)
            found = (tuple(t.text for t in doc),
                     tuple((i, t.norm_) for i, t in enumerate(doc) if t.norm != t.lex.norm))
            if len(chunk) <= _AFFIX_MEMO_CHUNK:
                if len(self._chunks) >= _CHUNK_MEMO_SIZE:
                    self._chunks.clear()
                self._chunks[chunk] = found
        return found

    def __call__(self, string: str) -> Doc:
        if not string:
            return Tokenizer.__call__(self, string)
        words: list[str] = []
        spaces: list[bool] = []
        norms: list[tuple[int, str]] = []
        split = self._split
        for run in _RUNS.finditer(string):
            chunk = run.group()
            if chunk[0] == " " and words:  # one space after a chunk is that chunk's last token's trailing space
                spaces[-1] = True
                chunk = chunk[1:]
                if not chunk:
                    continue
            texts, special = split(chunk)
            if special:
                norms.extend((len(words) + i, norm) for i, norm in special)
            words.extend(texts)
            spaces.extend([False] * len(texts))
        doc = Doc(self.vocab, words=words, spaces=spaces)
        for i, norm in norms:
            doc[i].norm_ = norm
        return doc


@spacy.registry.tokenizers("notecheck.Tokenizer.v1")
def create_tokenizer() -> Any:
    """spaCy's English tokenizer (same exceptions, prefixes, suffixes and infixes) with three changes that keep every
    token the same on our notes (tests/test_tokens_and_sentences.py) and make it several times faster:

    - no URL pattern: it is tried on every chunk of text (a tenth of the tokenizer's time) and no rule of ours looks
      at URLs;
    - remembered chunks: spaCy caches nothing after the first special case in a Doc (a line break is one), so the
      same words were split again and again; each chunk's tokens are remembered (bounded);
    - remembered affix searches, for the chunks that are not remembered whole.

    Built in one go: each tokenizer setter would reload spaCy's 1,300 special cases (50 ms each)."""
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

    def make(nlp: Language) -> Any:
        defaults = nlp.Defaults
        return ChunkMemoTokenizer(
            nlp.vocab,
            rules=defaults.tokenizer_exceptions,
            prefix_search=_memoized(compile_prefix_regex(defaults.prefixes).search),
            suffix_search=_memoized(compile_suffix_regex(defaults.suffixes).search),
            infix_finditer=_memoized(compile_infix_regex(defaults.infixes).finditer, as_list=True),
            token_match=defaults.token_match,
            url_match=None,
        )

    return make


def clear_caches(nlp: Language) -> None:
    """Forget what the pipeline remembers of notes already seen: tokenizer affix results and the rules worth trying
    at each word. Both are bounded and only make later notes faster; like spaCy's own vocabulary they hold strings
    from earlier notes, in memory only."""
    tokenizer = nlp.tokenizer
    clear_chunks = getattr(tokenizer, "clear_chunks", None)
    if clear_chunks is not None:
        clear_chunks()
    for name in ("prefix_search", "suffix_search", "infix_finditer"):
        clear = getattr(getattr(tokenizer, name, None), "cache_clear", None)
        if clear is not None:
            clear()
    groups = {id(g): g for _, component in nlp.pipeline
              if (g := getattr(_matchers_of(component)[1], "_notecheck_group", None)) is not None}
    for group in groups.values():
        group.clear_caches()


MAX_CHARS = 50_000_000  # ten times the largest note any entry point accepts by default


def build_pipeline(book: Rulebook, family: Optional[str] = None, span_extensions: bool = False) -> Language:
    """spacy.blank('en') + our sentence splitter + medspaCy sectionizer, target matcher and ConText + findings.

    notecheck reads each target's rule from the target matcher's records and its modifiers from ConText's graph, so
    by default the pipeline skips medspaCy's per-span extensions. span_extensions=True writes them too
    (span._.target_rule, span._.modifiers, span._.is_negated, ...) for anyone inspecting the Doc's spans."""
    from medspacy.context import ConTextRule
    from medspacy.section_detection import SectionRule
    from medspacy.target_matcher import TargetRule

    from notecheck.extraction import CONTEXT_FLAGS  # also registers notecheck_findings and the Span flags

    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "notecheck.Tokenizer.v1"}}})
    # spaCy's 1,000,000-character guard protects its parser and NER, which this pipeline does not have; every stage
    # here is linear in the note's length, so the byte limit of the reader or the service is the only limit.
    nlp.max_length = MAX_CHARS
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
    span_attrs = {category: {flag: True} for category, flag in CONTEXT_FLAGS.items()}
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
    _speed_up_regex_matching([sectionizer, matcher, context])
    context.__class__ = _sentence_local_context_class()
    context.notecheck_span_extensions = matcher.notecheck_span_extensions = span_extensions
    sectionizer.__class__ = _header_only_sectionizer_class()
    matcher.__class__ = _rule_keeping_target_matcher_class()
    return nlp
