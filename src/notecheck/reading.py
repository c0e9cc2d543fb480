"""Read a note from a file or standard input as text, with one-line errors that never echo its content."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

MAX_NOTE_BYTES = 2_000_000  # an operative note is a few KB; anything this large is not a note


class ReadError(Exception):
    """The note could not be read or decoded. The message names the source and the reason, never the text."""


@dataclass(frozen=True)
class Note:
    source: str
    text: str
    warnings: tuple[str, ...] = ()


def decode(data: bytes, source: str) -> Note:
    """UTF-8 with or without a BOM. CRLF is kept as is so that evidence offsets index the text exactly."""
    warnings = []
    if len(data) > MAX_NOTE_BYTES:
        raise ReadError(f"{source}: {len(data)} bytes is larger than the {MAX_NOTE_BYTES}-byte limit for one note")
    if b"\x00" in data:
        raise ReadError(f"{source}: looks like a binary file (contains NUL bytes), not a text note")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"{source}: not valid UTF-8 (invalid byte at offset {exc.start}); save the note as UTF-8") from None
    if data.startswith(b"\xef\xbb\xbf"):
        warnings.append("a UTF-8 byte-order mark was removed; offsets count from the character after it")
    if not text.strip():
        raise ReadError(f"{source}: the note is empty")
    return Note(source=source, text=text, warnings=tuple(warnings))


def read_note(path: str, stdin: Optional[BinaryIO] = None) -> Note:
    """Read PATH, or standard input when PATH is '-'."""
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return decode(stream.read(), "<stdin>")
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReadError(f"{path}: is a directory, not a note file") from None
    except PermissionError:
        raise ReadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ReadError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return decode(data, path)
