"""The Python API: build the pipeline once, then check many notes (read -> extract -> validate)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Union

from notecheck.models import CheckResult
from notecheck.pipeline import build_pipeline
from notecheck.reading import Note, read_note
from notecheck.rulebook import Rulebook, load_rulebook
from notecheck.validation import DEFAULT_FAMILY, validate

log = logging.getLogger("notecheck")


class Checker:
    """Reusable checker. Building the medspaCy pipeline costs ~1 s; checking a note costs milliseconds."""

    def __init__(self, patterns_dir: Optional[Union[str, Path]] = None, family: str = DEFAULT_FAMILY):
        self.book: Rulebook = load_rulebook(Path(patterns_dir) if patterns_dir else None)
        self.family = family
        self.nlp = build_pipeline(self.book)

    def check_text(self, text: str, *, source: str = "<text>", claimed_code: Optional[str] = None,
                   warnings: tuple[str, ...] = ()) -> CheckResult:
        doc = self.nlp(text)
        log.debug("checked source=%s chars=%d mentions=%d", source, len(text), len(doc._.evidence))
        return validate(doc._.findings, doc._.evidence, doc._.resolutions, self.book, source=source,
                        claimed_code=claimed_code, family=self.family, warnings=list(warnings))

    def check_note(self, note: Note, claimed_code: Optional[str] = None) -> CheckResult:
        return self.check_text(note.text, source=note.source, claimed_code=claimed_code, warnings=note.warnings)

    def check_file(self, path: str, claimed_code: Optional[str] = None) -> CheckResult:
        return self.check_note(read_note(path), claimed_code)
