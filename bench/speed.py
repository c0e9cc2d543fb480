"""Speed benchmark (not a test): notecheck against its floor and its peer, in one run on the same notes.

    python bench/speed.py [--rounds 7]

Measures notes/s and tokens/s on 400-word notes (corpus and sample notes cut or padded to 400 words) for:
  (a) spacy.blank("en") tokenization alone, the floor any spaCy pipeline pays;
  (b) medspaCy 1.3.1's default pipeline, medspacy.load() (PyRuSH + TargetMatcher + ConText), with notecheck's own
      target rules added to its matcher, loguru sinks left as installed;
  (c) the full notecheck check (extraction, validation and the JSON report);
then the ratios c/a and c/b, the cold start of `notecheck check NOTE` against `python -c "import spacy"` (and against
`spacy.blank("en")` built in a fresh process, the floor of any spaCy pipeline's cold start), peak RSS of one check,
and time per 400 words at 1x, 4x and 16x a 400-word note.

Method: (a) and (c) run in alternating rounds over all the notes, and each figure is the median over rounds, so that
a slow moment of a shared machine hits both sides alike; (b) is slow and runs a few rounds on 20 notes. notecheck's
caches (tokenizer affix results, per-word rule candidates) are cleared before every timed round of (c) and every
length run, so that the same notes seen again cannot flatter it; a warm-cache figure is printed for reference only.
Cold starts are the median of 7 processes.
"""

from __future__ import annotations

import argparse
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


def round_time(fn, texts: list[str]) -> float:
    start = time.perf_counter()
    for t in texts:
        fn(t)
    return time.perf_counter() - start


def tokens_per_note(texts: list[str]) -> float:
    import spacy

    tok = spacy.blank("en")
    return sum(len(tok.make_doc(t)) for t in texts) / len(texts)


def cold(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds of (a) and (c) (default 7)")
    args = ap.parse_args()
    import spacy

    texts = notes_of(400)
    tokens = tokens_per_note(texts)
    blank = spacy.blank("en")

    import medspacy
    from loguru import logger  # noqa: F401  (left as installed: this is medspaCy's default experience)
    from medspacy.target_matcher import TargetRule

    from notecheck.rulebook import load_rulebook

    book = load_rulebook()
    med = medspacy.load()
    med.get_pipe("medspacy_target_matcher").add(
        [TargetRule(r.literal, r.category, pattern=r.pattern) for r in book.targets.target_rules])
    few = texts[:20]
    round_time(med, few[:3])
    b = len(few) / statistics.median(round_time(med, few) for _ in range(3))

    from notecheck import Checker

    checker = Checker()

    def check(t: str) -> None:
        checker.check(t).model_dump_json()

    round_time(blank, texts)
    round_time(check, texts)
    a_times, c_times, warm_times = [], [], []
    for _ in range(args.rounds):
        a_times.append(round_time(blank, texts))
        # notecheck remembers tokenizer affix results and per-word rule candidates across notes. Each timed round
        # starts with those caches empty, so repeating the same notes does not flatter it; a warm round follows.
        checker.clear_caches()
        c_times.append(round_time(check, texts))
        warm_times.append(round_time(check, texts))
    a = len(texts) / statistics.median(a_times)
    c = len(texts) / statistics.median(c_times)
    warm = len(texts) / statistics.median(warm_times)
    ratios = sorted(at / ct for at, ct in zip(a_times, c_times))

    print(f"{len(texts)} notes of ~400 words ({tokens:.0f} tokens); Python {sys.version.split()[0]}, "
          f"spaCy {spacy.__version__}, medspaCy {medspacy.__version__}, {os.cpu_count()} CPUs; "
          f"median of {args.rounds} alternating rounds")
    print(f"{'pipeline':<48} {'notes/s':>9} {'tokens/s':>10}")
    for name, n in (("(a) spacy.blank('en') tokenizer", a), ("(b) medspacy.load() + notecheck targets", b),
                    ("(c) notecheck full check + JSON, caches cleared", c),
                    ("    the same, caches warm (not used below)", warm)):
        print(f"{name:<48} {n:>9.1f} {n * tokens:>10.0f}")
    print(f"c/a = {c / a:.2f} (per round: {ratios[0]:.2f} to {ratios[-1]:.2f})   c/b = {c / b:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.txt"
        note.write_text(texts[0], encoding="utf-8")
        spacy_import = cold([sys.executable, "-c", "import spacy"])
        spacy_blank = cold([sys.executable, "-c", "import spacy; spacy.blank('en')"])
        check_cold = cold([sys.executable, "-m", "notecheck", "check", str(note)])
        rss = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "notecheck", "check", str(note)],
                             capture_output=True, text=True).stderr.strip().splitlines()[-1]
    print(f"cold start: notecheck check {check_cold:.2f} s vs python -c 'import spacy' {spacy_import:.2f} s "
          f"= {check_cold / spacy_import:.2f}x (spacy.blank('en') alone: {spacy_blank:.2f} s "
          f"= {spacy_blank / spacy_import:.2f}x); peak RSS of one check {int(rss) / 1024:.0f} MB")

    base = texts[0]
    for mult in (1, 4, 16):
        text = "\n".join([base] * mult)
        runs = []
        for _ in range(max(3, 48 // mult)):
            checker.clear_caches()  # a repeated note would otherwise find its own words remembered
            runs.append(round_time(checker.check, [text]))
        secs = statistics.median(runs)
        print(f"{mult:>2}x ({len(text.split()):>5} words): {1000 * secs:8.1f} ms per note, "
              f"{1000 * secs / mult:6.1f} ms per 400 words")


if __name__ == "__main__":
    main()
