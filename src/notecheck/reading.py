"""Read a note from a file or standard input as text, with one-line errors that never echo its content.

Exports from clinical systems arrive as UTF-8 (with or without a BOM), UTF-16 with a BOM, or Windows-1252; all are
accepted, and anything other than plain UTF-8 is noted in the report's warnings. Binary files, empty notes and files
over the size limit are refused with the reason.
"""

from __future__ import annotations

import codecs
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Union

DEFAULT_MAX_BYTES = 5_000_000  # an operative note is a few KB; a file this large is not one note
_CONTROL_OK = {"\t", "\n", "\r", "\f", "\v"}


class ReadError(Exception):
    """The note could not be used. The message names the source and the reason, never the text."""


@dataclass(frozen=True)
class Note:
    source: str
    text: str
    warnings: tuple[str, ...] = ()


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in _CONTROL_OK)
    return "\x00" in sample or controls > max(8, len(sample) // 50)


def decode(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Note:
    """Bytes to text: UTF-8 (BOM optional), UTF-16 with BOM, else Windows-1252 / Latin-1 with a warning."""
    warnings: list[str] = []
    if len(data) > max_bytes:
        raise ReadError(f"{source}: {len(data)} bytes is over the {max_bytes}-byte limit for one note (--max-bytes)")
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError:
            raise ReadError(f"{source}: has a UTF-8 byte-order mark but is not valid UTF-8") from None
        warnings.append("a UTF-8 byte-order mark was removed; offsets count from the character after it")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ReadError(f"{source}: has a UTF-16 byte-order mark but is not valid UTF-16") from None
        warnings.append("decoded as UTF-16 (byte-order mark); offsets count characters of the decoded text")
    elif _utf8_ok(data):
        text = data.decode("utf-8")
    else:
        if b"\x00" in data:
            raise ReadError(f"{source}: looks like a binary file (NUL bytes, no UTF-16 byte-order mark)")
        try:
            text, name = data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            text, name = data.decode("latin-1"), "Latin-1"
        warnings.append(f"not valid UTF-8; decoded as {name}, so check accented characters")
    if _looks_binary(text):
        raise ReadError(f"{source}: looks like a binary file (control characters), not a text note")
    if not text.strip():
        raise ReadError(f"{source}: the note is empty")
    return Note(source=source, text=text, warnings=tuple(warnings))


_SPACE_LIKE = dict.fromkeys([*range(0, 9), 11, *range(14, 32), 0x7F, 0xA0], " ")
_BREAK_LIKE = {"\f": "\n", "\u2028": "\n", "\u2029": "\n", "\x0b": "\n"}


# Invisible and format characters that EHR exports and copy-paste leave in notes (zero-width spaces and joiners, soft
# hyphens, bidi marks, Unicode spaces): read as a space, so a code or a word next to one still matches.
_INVISIBLE = [0xAD, *range(0x2000, 0x200B), 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), 0x202F,
              0x205F, 0x2060, *range(0x2066, 0x206A), 0x3000, 0xFEFF]
# Full-width ASCII forms ("２７２５２") read as their ASCII characters, one for one.
_FULL_WIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
_NORMALIZE = str.maketrans({**{chr(c): v for c, v in _SPACE_LIKE.items()}, **_BREAK_LIKE,
                            **dict.fromkeys(map(chr, _INVISIBLE), " "), **_FULL_WIDTH})
_UNUSUAL = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "\uff01-\uff5e]")


def unusual_characters(text: str) -> int:
    """How many invisible, format or full-width characters the note carries (each is read as a space or as its ASCII
    form for matching; the report says so)."""
    return len(_UNUSUAL.findall(text))
_LONE_CR = re.compile(r"\r(?!\n)")


def normalize_for_matching(text: str) -> str:
    """A same-length copy for the rules to read: lone CR, form feed and Unicode line separators become newlines,
    other control characters, NBSP and invisible format characters become spaces, full-width forms become ASCII.
    Offsets stay valid for the original text, character for
    character, so evidence is always quoted from the note exactly as given."""
    if "\r" in text:
        text = _LONE_CR.sub("\n", text)
    return text.translate(_NORMALIZE)


Mark = Union[str, Callable[[re.Match[str]], str]]  # what a command is read as: a fixed mark, or one made from the match


def apply_dictation(text: str, commands: list[tuple[re.Pattern[str], Mark, Optional[re.Pattern[str]]]],
                    probes: Optional[list[Optional[re.Pattern[str]]]] = None) -> str:
    """Spoken punctuation ('period', 'comma', 'new paragraph') read as the mark it names (a sound-alike as its term),
    padded with spaces so the copy keeps the note's length and every offset; `not_after` (matched on the words before)
    keeps a word a word. `probes`: each command's pattern for lower-cased text (fastregex.lowered), a cheaper test of
    whether it applies at all on an ASCII note (most notes need no command)."""
    low = text.lower() if probes is not None and text.isascii() else None
    for i, (pattern, mark, not_after) in enumerate(commands):
        probe = probes[i] if probes is not None else None
        if probe is not None and low is not None:
            applies = probe.search(low) is not None
        else:
            applies = pattern.search(text) is not None
        if not applies:
            continue

        def replace(m: re.Match[str], mark: Mark = mark, not_after: Optional[re.Pattern[str]] = not_after,
                    source: str = text) -> str:
            if not_after is not None and not_after.search(source, max(0, m.start() - 24), m.start()) is not None:
                return m.group(0)
            read = mark(m) if callable(mark) else mark
            if len(read) > len(m.group(0)):  # the copy must keep every offset: a longer reading is not made
                return m.group(0)
            return (read + " " * len(m.group(0)))[: len(m.group(0))]

        changed = pattern.sub(replace, text)
        if low is not None and changed != text:
            low = changed.lower()
        text = changed
    return text


def _utf8_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def display_path(path: str) -> str:
    """A path as text that can always be written as UTF-8 (bytes that are not UTF-8 become \\x escapes)."""
    import os

    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def read_note(path: str, stdin: Optional[BinaryIO] = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Note:
    """Read PATH, or standard input when PATH is '-'."""
    real_path, path = path, display_path(path)
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return decode(stream.read(max_bytes + 1), "<stdin>", max_bytes)
    p = Path(real_path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise ReadError(f"{path}: {size} bytes is over the {max_bytes}-byte limit for one note (--max-bytes)")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReadError(f"{path}: is a directory, not a note file") from None
    except PermissionError:
        raise ReadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ReadError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return decode(data, path, max_bytes)
