"""The working form of a matched span before it becomes Evidence (shared by extraction and the encounter model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(slots=True)
class Mention:
    """A target span with what it means; the working form before it becomes Evidence."""

    field: str
    value: Any
    start: int
    end: int
    text: str
    section: Optional[str]
    rule: str
    flags: dict[str, bool]
    modifiers: list[tuple[str, str, int]]  # (category, text, start_char)
    counted: bool
    meta: dict[str, Any] = field(default_factory=dict)

    labelled: bool = False

    def derive(self, field_name: str, value: Any, rule: str, meta: dict[str, Any],
               counted: Optional[bool] = None) -> "Mention":
        """A mention implied by this one (same words, another field)."""
        return Mention(field_name, value, self.start, self.end, self.text, self.section, rule, self.flags,
                       self.modifiers, self.counted if counted is None else counted, meta, self.labelled)

    def evidence_row(self, field_name: Optional[str] = None) -> dict[str, Any]:
        """The fields of this mention's Evidence; rows are validated into Evidence all at once (one call, not one per
        mention)."""
        val = self.value
        return {
            "field": field_name or self.field,
            "value": None if val is None else str(val).lower() if isinstance(val, bool) else str(val),
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "section": self.section,
            "rule": self.rule,
            "modifiers": list(dict.fromkeys(m[1] for m in self.modifiers)),  # each cue once, in order
            "counted": self.counted,
            "labelled": self.labelled,
            **self.flags,
        }
