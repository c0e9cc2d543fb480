"""Fuzz the reader and checker for a fixed budget (not a test): random bytes, random Unicode, mutated real notes.

    python bench/fuzz.py [--inputs 20000] [--seed 1]

Every input goes through `decode` (bytes) and, when decodable, `Checker.check`; a crash is any exception other than
ReadError, any evidence span that does not quote the text, or a report that does not round-trip through its schema.
Prints inputs tried, refused (ReadError, expected for binary/empty input) and crashes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from notecheck import Checker
from notecheck.models import CheckResult
from notecheck.reading import ReadError, decode

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["hip", "dislocation", "reduced", "closed", "open", "general", "GA", "no", "not", "[ ]", "[x]", "CR'd",
          "Pipkin IV", "27252", "S73.014A", "T84.021A", "\r\n", "\r", "\n", "\f", "\x00", "é", "–", "\u2028", ":", "—"]


def inputs(rng: random.Random, notes: list[bytes]):
    while True:
        kind = rng.random()
        if kind < 0.2:
            yield bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
        elif kind < 0.4:
            yield "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 300))).encode("utf-8", "replace")
        elif kind < 0.6:
            yield " ".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 80))).encode("utf-8")
        else:
            data = bytearray(rng.choice(notes))
            for _ in range(rng.randint(1, 12)):
                pos = rng.randint(0, max(0, len(data) - 1))
                op = rng.random()
                if op < 0.4 and data:
                    del data[pos:pos + rng.randint(1, 20)]
                elif op < 0.8:
                    data[pos:pos] = rng.choice(TOKENS).encode("utf-8")
                else:
                    data[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 6)))
            yield bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    notes = [p.read_bytes() for p in sorted(ROOT.glob("sample_notes/*.txt")) + sorted(ROOT.glob("corpus/*.txt"))]
    checker = Checker()
    tried = refused = crashes = 0
    start = time.perf_counter()
    for data in inputs(rng, notes):
        if tried >= args.inputs:
            break
        tried += 1
        try:
            note = decode(data, f"fuzz-{tried}")
        except ReadError:
            refused += 1
            continue
        try:
            result = checker.check(note.text)
            CheckResult.model_validate_json(result.model_dump_json())
            bad = [e for e in result.evidence if note.text[e.start:e.end] != e.text]
            if bad:
                raise AssertionError(f"{len(bad)} evidence spans do not quote the text")
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes += 1
            print(f"crash on input {tried} (seed {args.seed}): {type(exc).__name__}: {exc}", file=sys.stderr)
    secs = time.perf_counter() - start
    print(f"inputs tried {tried}, refused as unusable {refused}, checked {tried - refused}, crashes {crashes}, "
          f"{secs:.0f} s (seed {args.seed})")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
