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
from functools import lru_cache, partial
from typing import Any, Optional

import numpy
import spacy
from loguru import logger
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from notecheck.fastregex import matching_text
from notecheck.rulebook import Rulebook

# medspaCy imports PyRuSH, which logs token text through loguru; we never use it, and we keep it silent regardless.
logger.disable("PyRuSH")
# medspaCy keeps an empty token Matcher beside our regex rules; spaCy warns (W036) on every call otherwise.
warnings.filterwarnings("ignore", message=r"\[W036\]")

SPAN_GROUP = "notecheck"
_END_PUNCT = {".", "!", "?"}
_CLOSERS = (")", "]")  # '(Kuang-Tien?) under GA': a stop inside brackets does not end the sentence
_WRAP_MIN_LINE = 60  # a line at least this long, without closing punctuation, may continue on the next line
_CONTINUATION_INDENT = 8
# Abbreviations that end in a full stop mid-sentence ("incl. general anaesthesia", "approx. 2 cm"): the stop after
# them does not end the sentence, so a cue before them keeps its reach.
_ABBREVIATIONS = frozenset({"incl", "approx", "appx", "esp", "resp", "eg", "ie", "cf", "viz", "fig", "figs",
                            "dr", "drs", "mr", "mrs", "ms", "prof", "vs", "ca", "abt", "bilat", "ant", "prox",
                            # German, French, Italian and Spanish ones that sit mid-sentence before a noun
                            "geschl", "ggf", "evtl", "bzw", "pat", "wo", "inkl", "bds", "sog", "zust", "nr",
                            "mme", "pr", "sig", "sra", "dott", "dssa", "dra",
                            # Hungarian: the side ('j.o.', 'b.o.'), 'approximately', 'e.g.', 'status post'
                            "j.o", "b.o", "kb", "pl", "st.p", "ill"})


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
        package = _DeferredPackage(spec.name)  # what module_from_spec would set up, on our module type
        package.__spec__, package.__loader__, package.__file__ = spec, spec.loader, spec.origin
        package.__package__ = spec.name
        package.__path__ = list(spec.submodule_search_locations or [])
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


HANGING_WORDS = frozenset({  # a line ending on one of these goes on: it cannot end a sentence
    "a", "an", "the", "and", "or", "of", "to", "with", "for", "in", "on", "at", "by", "from", "under", "into", "was",
    "were", "is", "are", "be", "been", "that", "which", "as", "but", "has", "had", "have", "his", "their", "our",
    "my", "its", "your",
    # the same in the other languages notes come in: articles, conjunctions, prepositions
    "der", "die", "das", "des", "dem", "ein", "eine", "einer", "einem", "einen", "eines", "und", "oder", "mit",
    "bei", "zur", "zum", "vom", "nach", "über", "unter", "auf", "für", "durch", "het", "een", "en", "van", "voor",
    "door", "le", "la", "les", "une", "du", "et", "ou", "avec", "pour", "sur", "sous", "dans", "el", "los", "las",
    "una", "y", "con", "por", "para", "del", "uma", "com", "pela", "pelo", "och", "eller", "af", "og", "med", "til",
    "i", "z", "w", "oraz", "lub", "przez", "pod", "nad", "przy", "ve", "ile", "veya", "olursa", "halinde",
    "durumunda"})
_QUOTE_MARKS = re.compile(r"[ \t]*(>+|\|)[ \t]*")  # the marks that open each line of a quotation
_LINE_NUMBER = re.compile(r"[ \t]*(?:\d{1,3}:)?(\d{1,2})[ \t]{2,}(?=\S)")  # a transcript's page:line number
_BREAK_OR_END = re.compile(r"[\n\r.!?]")
_STOP_THEN_LOWER = re.compile(r"[.!?][ \t]+[a-z]")
_STOP_THEN_UPPER = re.compile(r"[.!?][ \t]+[A-Z]")
_DICTATION_MIN_STOPS = 3  # stops before a lower-case word a note needs to be read as lower-case dictation


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
    # Voice-recognition dictation often never capitalises: when most full stops are followed by a lower-case word,
    # the lower-case word starts a sentence too (else one 'plan' cue reaches over the whole note).
    lower = len(_STOP_THEN_LOWER.findall(text))
    dictation = lower >= _DICTATION_MIN_STOPS and lower > len(_STOP_THEN_UPPER.findall(text))
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
            # a wrapped line may go on with a bracket ('une réduction chirurgicale\n(voie médiale) serait ...')
            opens = (nxt == "(" and lengths[i + 1] == 1 and i + 2 < n
                     and text[offsets[i + 2] : offsets[i + 2] + 1].islower())
            # a line that ends on 'an', 'and', 'to' cannot end its sentence ('... incorrectly lists an\n"open ...')
            hangs = line[line.rfind(" ") + 1 :].lower() in HANGING_WORDS
            # an e-mail style quotation ('>> ... no acetabular' / '>>   or femoral head fracture') wraps inside
            # its quote marks: the word after the next line's marks decides
            if nxt in (">", "|") and i + 1 < n:
                mark = _QUOTE_MARKS.match(line)
                after = _QUOTE_MARKS.match(text, offsets[i + 1])
                if mark is not None and after is not None and mark.group(1) == after.group(1):
                    nxt = text[after.end() : after.end() + 1]
            # a deposition transcript numbers every line ('10:10   ... over days. No' / '10:11   manipulation, ...'):
            # the word after the next line's number decides
            if nxt.isdigit() and i + 1 < n:
                numbered = _LINE_NUMBER.match(line)
                after = _LINE_NUMBER.match(text, offsets[i + 1])
                if numbered is not None and after is not None \
                        and int(after.group(1)) == int(numbered.group(1)) + 1:  # numbered lines, not clock times
                    nxt = text[after.end() : after.end() + 1]
            wrapped = (w.count("\n") < 2 and len(line) >= _WRAP_MIN_LINE and line[-1:] not in ".:;!?"
                       and (nxt.islower() or opens or hangs or indent >= _CONTINUATION_INDENT))
            if not wrapped and i + 1 < n:
                sent[i + 1] = 1
        elif w in _END_PUNCT and (dictation or not nxt.islower()) and nxt[:1] not in _CLOSERS and i + 1 < n:
            if w == "?" and start + 1 == offsets[i + 1] and (nxt[:1].isalpha() or nxt == "#"):
                continue  # a query prefix ('?ORIF', '?#NOF') opens the words it doubts
            if w == "." and i and offsets[i - 1] + lengths[i - 1] == start and nxt[:1].isalnum():
                before = text[offsets[i - 1] : start].lower()
                if before in _ABBREVIATIONS or (nxt.islower() and len(before) < 2):
                    continue
            sent[i + 1] = 1
    for i in breaks:  # a line break belongs to the sentence it ends
        if i:
            sent[i] = -1
    doc.from_array([SENT_START], numpy.asarray(sent, dtype="int64").astype("uint64").reshape(-1, 1))
    return doc


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


_CHUNK_MEMO_SIZE = 50_000  # distinct whitespace-separated chunks remembered, each at most _AFFIX_MEMO_CHUNK long
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
    for _, component in nlp.pipeline:
        clear = getattr(component, "clear_caches", None)  # the rule matcher's per-word candidates
        if clear is not None:
            clear()


MAX_CHARS = 50_000_000  # ten times the largest note any entry point accepts by default


# Our own cue options: medspaCy's ConTextRule does not take them as arguments; they travel in its metadata (and
# a shorter reach behind the cue as its public on_modifies callback).
_NOTECHECK_CUE_FIELDS = {"metadata", "modifies_targets_within", "backward_scope"}


def _within_reach_behind(reach: int, target: Any, cue: Any, between: Any) -> bool:
    """A bidirectional cue whose rule sets backward_scope modifies a target behind it only within that many tokens."""
    return target.start >= cue.start or target.end > cue.start - reach


def context_rules(book: Rulebook) -> list[Any]:
    """medspaCy ConTextRules for the rulebook's cues, with our options carried through medspaCy's public API: the
    same rules serve our matcher and medspaCy's own ConText (the equivalence tests build both from here)."""
    from medspacy.context import ConTextRule

    return [
        ConTextRule(**r.model_dump(exclude_none=True, exclude=_NOTECHECK_CUE_FIELDS),
                    on_modifies=(partial(_within_reach_behind, r.backward_scope)
                                 if r.backward_scope is not None else None),
                    metadata={**(r.metadata or {}), "modifies_targets_within": r.modifies_targets_within})
        for r in book.context.context_rules
    ]


def build_pipeline(book: Rulebook, family: Optional[str] = None, span_extensions: bool = False) -> Language:
    """spacy.blank('en') + our sentence splitter + one scan for sections, targets and ConText cues + findings.

    notecheck reads each target's rule from the matcher's records and its modifiers from ConText's graph, so by
    default the pipeline skips medspaCy's per-span extensions. span_extensions=True writes them too
    (span._.target_rule, span._.modifiers, span._.is_negated, ...) for anyone inspecting the Doc's spans."""
    from medspacy.section_detection import SectionRule
    from medspacy.target_matcher import TargetRule

    from notecheck.extraction import CONTEXT_FLAGS  # also registers notecheck_findings and the Span flags
    from notecheck.matching import RuleMatcher  # registers notecheck_matcher

    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "notecheck.Tokenizer.v1"}}})
    # spaCy's 1,000,000-character guard protects its parser and NER, which this pipeline does not have; every stage
    # here is linear in the note's length, so the byte limit of the reader or the service is the only limit.
    nlp.max_length = MAX_CHARS
    nlp.add_pipe("notecheck_sentences")
    matcher = nlp.add_pipe("notecheck_matcher", config={
        "span_group_name": SPAN_GROUP,
        "span_extensions": span_extensions,
        "context_attributes": {category: {flag: True} for category, flag in CONTEXT_FLAGS.items()},
    })
    assert isinstance(matcher, RuleMatcher)
    matcher.add([SectionRule(**r.model_dump(exclude_none=True)) for r in book.sections.section_rules])
    matcher.add([
        TargetRule(literal=r.literal, category=r.category, pattern=r.pattern, attributes=r.attributes,
                   metadata=r.metadata.model_dump())
        for r in book.targets.target_rules
    ])
    matcher.add(context_rules(book))
    nlp.add_pipe("notecheck_findings", config={"patterns_dir": str(book.root)})
    return nlp
