"""Speed benchmark (not a test): notecheck against its floor and its peer, in one run on the same notes.

    python bench/speed.py [--seconds 3]

Measures notes/s and tokens/s on 400-word notes (corpus and sample notes cut or padded to 400 words) for:
  (a) spacy.blank("en") tokenization alone, the floor any spaCy pipeline pays;
  (b) medspaCy 1.3.1's default pipeline, medspacy.load() (PyRuSH + TargetMatcher + ConText), with notecheck's own
      target rules added to its matcher, loguru sinks left as installed;
  (c) the full notecheck check (extraction, validation and the JSON report);
then the ratios c/a and c/b, the cold start of `notecheck check NOTE` against `python -c "import spacy"`, peak RSS of
one check, and time per note at 1x, 4x and 16x a 400-word note.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def notes_of(words: int) -> list[str]:
    out = []
    for path in sorted(ROOT.glob("corpus/*.txt")) + sorted(ROOT.glob("sample_notes/*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        base = text
        while len(text.split()) < words:
            text += "\n" + base
        cut = text.split(" ")
        out.append(" ".join(cut[: max(1, int(len(cut) * words / len(text.split())))]))
    return out


def rate(fn, texts: list[str], seconds: float) -> tuple[float, float]:
    """notes/s and tokens/s, running over the texts repeatedly for about `seconds`."""
    import spacy

    tok = spacy.blank("en")
    tokens = sum(len(tok.make_doc(t)) for t in texts) / len(texts)
    for t in texts[:5]:
        fn(t)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for t in texts:
            fn(t)
        done += len(texts)
    secs = time.perf_counter() - start
    return done / secs, done * tokens / secs


def cold(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    import spacy

    texts = notes_of(400)
    blank = spacy.blank("en")
    a = rate(blank, texts, args.seconds)

    import medspacy
    from loguru import logger  # noqa: F401  (left as installed: this is medspaCy's default experience)
    from medspacy.target_matcher import TargetRule

    from notecheck.rulebook import load_rulebook

    book = load_rulebook()
    med = medspacy.load()
    med.get_pipe("medspacy_target_matcher").add(
        [TargetRule(r.literal, r.category, pattern=r.pattern) for r in book.targets.target_rules])
    b = rate(med, texts[:20], min(args.seconds, 5.0))

    from notecheck import Checker

    checker = Checker()
    c = rate(lambda t: checker.check(t).model_dump_json(), texts, args.seconds)

    print(f"{len(texts)} notes of ~400 words; Python {sys.version.split()[0]}, spaCy {spacy.__version__}, "
          f"medspaCy {medspacy.__version__}, {os.cpu_count()} CPUs")
    print(f"{'pipeline':<44} {'notes/s':>9} {'tokens/s':>10}")
    for name, (n, t) in (("(a) spacy.blank('en') tokenizer", a), ("(b) medspacy.load() + notecheck targets", b),
                         ("(c) notecheck full check + JSON", c)):
        print(f"{name:<44} {n:>9.1f} {t:>10.0f}")
    print(f"c/a = {c[0] / a[0]:.2f}   c/b = {c[0] / b[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.txt"
        note.write_text(texts[0], encoding="utf-8")
        spacy_import = cold([sys.executable, "-c", "import spacy"])
        check = cold([sys.executable, "-m", "notecheck", "check", str(note)])
        rss = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "notecheck", "check", str(note)],
                             capture_output=True, text=True).stderr.strip().splitlines()[-1]
    print(f"cold start: notecheck check {check:.2f} s vs python -c 'import spacy' {spacy_import:.2f} s "
          f"= {check / spacy_import:.2f}x; peak RSS of one check {int(rss) / 1024:.0f} MB")

    base = texts[0]
    for mult in (1, 4, 16):
        text = "\n".join([base] * mult)
        n, _ = rate(lambda t: checker.check(t), [text], max(1.0, args.seconds / 2))
        print(f"{mult:>2}x ({len(text.split()):>5} words): {1000 / n:8.1f} ms per note, "
              f"{1000 / n / mult:6.1f} ms per 400 words")


if __name__ == "__main__":
    main()
