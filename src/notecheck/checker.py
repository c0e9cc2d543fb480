"""The Python API: build the pipeline once, then check many notes (read -> extract -> validate)."""

from __future__ import annotations

import gc
import itertools
import logging
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import Doc

from notecheck.extraction import ORIGINAL_TEXT_KEY
from notecheck.fastregex import lowered, remember_text
from notecheck.models import CheckResult
from notecheck.pipeline import build_pipeline, clear_caches
from notecheck.reading import Mark, Note, apply_dictation, normalize_for_matching, read_note, unusual_characters
from notecheck.rulebook import Rulebook, load_rulebook
from notecheck.validation import DEFAULT_FAMILY, validate

log = logging.getLogger("notecheck")


def _first_surrogate(text: str) -> Optional[int]:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return exc.start


_GC_LOCK = threading.Lock()
_GC_STATE = {"depth": 0, "was_enabled": False}


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Checking a note allocates thousands of short-lived objects; the cyclic garbage collector would stop several
    times per note to scan them (a tenth of the check's time). Pause it while any check runs (a count under a lock:
    checks run concurrently in the service), then run the collection that is due by the collector's own thresholds,
    so that the cycles a check leaves (a Doc and its parts) are freed even when checks never stop overlapping and
    the collector is never switched back on. It ends as found."""
    with _GC_LOCK:
        if _GC_STATE["depth"] == 0:
            _GC_STATE["was_enabled"] = gc.isenabled()
            gc.disable()
        _GC_STATE["depth"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE["depth"] -= 1
            last = _GC_STATE["depth"] == 0
            collect = bool(_GC_STATE["was_enabled"])
            if last and collect:
                gc.enable()
        if collect:
            _collect_due()


_FULL_COLLECTION_SPACING = 10  # the collector itself defers full collections until the old generation has grown


def _collect_due() -> None:
    """What the collector would have done by now, as its thresholds say: the oldest generation that is due. A full
    collection walks every object in the process (the pipeline's too), so like CPython's own collector it is spaced
    out further than its threshold alone would say."""
    threshold = gc.get_threshold()
    count = gc.get_count()
    if count[2] > threshold[2] * _FULL_COLLECTION_SPACING:
        gc.collect(2)
    elif count[1] > threshold[1]:
        gc.collect(1)
    elif count[0] > threshold[0]:
        gc.collect(0)


def _spoken_digit_command(words: dict[str, str], min_run: int) -> tuple[re.Pattern[str], Mark, None]:
    """A dictation command that reads a run of spoken digit words ('two seven two five four') as its digits."""
    word = "(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + ")"
    pattern = re.compile(rf"\b{word}(?:[ \t]+{word}){{{min_run - 1},}}\b", re.IGNORECASE)

    def digits(m: re.Match[str]) -> str:
        return "".join(words[w.lower()] for w in m.group(0).split())

    return pattern, digits, None


class Checker:
    """Reusable checker. Building the pipeline costs about half a second; checking a note a few milliseconds.

    One Checker can be shared by threads: checking reads the pipeline and rules, it never changes them.
    """

    def __init__(self, patterns_dir: Optional[Union[str, Path]] = None, family: str = DEFAULT_FAMILY) -> None:
        self.book: Rulebook = load_rulebook(Path(patterns_dir) if patterns_dir else None)
        self.book.family(family)  # fails early, naming the families that exist
        self.family = family
        self.nlp: Language = build_pipeline(self.book)
        self._dictation: list[tuple[re.Pattern[str], Mark, Optional[re.Pattern[str]]]] = [
            (re.compile(c.pattern, re.IGNORECASE), c.mark,
             re.compile(c.not_after, re.IGNORECASE) if c.not_after else None)
            for c in self.book.findings.dictation]
        # Struck-out text is read as blank: the same same-length rewrite, with a space for a mark.
        self._dictation += [(re.compile(p, re.IGNORECASE), " ", None) for p in self.book.findings.struck_out]
        # Speech-recognition sound-alikes are read as the term they stand for, in the same way.
        self._dictation += [(re.compile(s.heard, re.IGNORECASE), s.means, None)
                            for s in self.book.findings.sound_alikes]
        spoken = self.book.findings.spoken_digits
        if spoken is not None:
            self._dictation.append(_spoken_digit_command(spoken.words, spoken.min_run))
        self._dictation_probes = [lowered(pattern.pattern) for pattern, _, _ in self._dictation]

    def check(self, text: str, code: Optional[str] = None, note_id: Optional[str] = None) -> CheckResult:
        """Check one note's text; `code` is the claimed CPT code (default: the one written in the note)."""
        return self.check_text(text, source=note_id or "<text>", claimed_code=code)

    def check_many(self, texts: Iterable[str], codes: Optional[Sequence[Optional[str]]] = None,
                   batch_size: int = 32) -> Iterator[CheckResult]:
        """Check a stream of notes through nlp.pipe, yielding one result per text, in order, a batch at a time."""
        code_list = list(codes) if codes is not None else None
        stream = iter(texts)
        i = 0
        while True:
            batch = list(itertools.islice(stream, max(1, batch_size)))
            if not batch:
                return
            with _collector_paused():
                results = []
                for doc in self.nlp.pipe((self._make_doc(t) for t in batch), batch_size=batch_size):
                    code = code_list[i] if code_list is not None and i < len(code_list) else None
                    results.append(self._result(doc, f"<text {i}>", code, ()))
                    i += 1
            yield from results

    def check_text(self, text: str, *, source: str = "<text>", claimed_code: Optional[str] = None,
                   warnings: tuple[str, ...] = ()) -> CheckResult:
        with _collector_paused():
            return self._check_text(text, source, claimed_code, warnings)

    def _check_text(self, text: str, source: str, claimed_code: Optional[str],
                    warnings: tuple[str, ...]) -> CheckResult:
        doc = self.nlp(self._make_doc(text))
        if not text.strip():
            warnings = (*warnings, "the note is empty or contains only whitespace")
        unusual = unusual_characters(text)
        if unusual:
            warnings = (*warnings, f"the note carries {unusual} invisible or full-width character(s) (zero-width "
                                   "spaces, soft hyphens, bidi marks, full-width forms); they were read as spaces or "
                                   "plain characters, and evidence still quotes the note as given")
        log.debug("checked source=%s chars=%d mentions=%d", source, len(text), len(doc._.evidence))
        return self._result(doc, source, claimed_code, warnings)

    def _result(self, doc: Doc, source: str, claimed_code: Optional[str], warnings: tuple[str, ...]) -> CheckResult:
        """Validate a processed Doc's findings into the report."""
        return validate(doc._.findings, doc._.evidence, doc._.resolutions, self.book, source=source,
                        claimed_code=claimed_code, family=self.family, warnings=list(warnings),
                        sections=doc._.note_sections)

    def _make_doc(self, text: str) -> Doc:
        """Rules read a same-length normalised copy; the original is kept so evidence quotes the note as given."""
        if not isinstance(text, str):
            raise TypeError(f"note text must be str, not {type(text).__name__}")
        bad = _first_surrogate(text)
        if bad is not None:
            raise ValueError(f"note text has an unpaired surrogate code point at offset {bad}; "
                             "decode the note with errors='replace' before checking it")
        normalized = apply_dictation(normalize_for_matching(text), self._dictation, self._dictation_probes)
        doc = self.nlp.make_doc(normalized)
        doc.user_data[ORIGINAL_TEXT_KEY] = text
        remember_text(doc, normalized)
        return doc

    def clear_caches(self) -> None:
        """Forget what speeds up later notes (tokenizer affix results, rules worth trying per word): bounded, in
        memory only, holding strings from notes already checked, as spaCy's own vocabulary does."""
        clear_caches(self.nlp)

    def check_note(self, note: Note, claimed_code: Optional[str] = None) -> CheckResult:
        return self.check_text(note.text, source=note.source, claimed_code=claimed_code, warnings=note.warnings)

    def check_file(self, path: str, claimed_code: Optional[str] = None) -> CheckResult:
        return self.check_note(read_note(path), claimed_code)
