"""Assertion benchmark (not a test): notecheck's ConText cue rules against medspaCy's default ConText rules, in one
run, on the public ConText test set (Harkema et al., J Biomed Inform 2009; 2,376 annotated sentences).

    python bench/context_testset.py [--data PATH] [--json] [--errors N]

`--data` is the data set's directory (or its .txt file); by default ../shared/data/context-testset next to the
repository. The data set is read in place, never copied; see its README for the format and licence (Apache-2.0).

For every sentence, the annotated condition (found in the sentence case-insensitively, any run of whitespace matching
any other) becomes the only target, labelled CONDITION, and ConText decides whether it is
  negated            (ConText NEGATED_EXISTENCE;  gold: negation_status "Negated"),
  historical         (ConText HISTORICAL;         gold: temporality "Historical"),
  hypothetical       (ConText HYPOTHETICAL;       gold: temporality "Not particular"),
  other experiencer  (ConText FAMILY;             gold: experiencer "Family member" or "Other").
Sentences whose condition cannot be found are counted, reported and left out of the scores.

Two systems run on the same spaCy tokenisation, each built as spacy.blank("en") + sentencizer + a component that
sets the target as the Doc's only entity + medspaCy's ConText:
  (a) medspaCy's default ConText rules, ConText's settings left at their defaults;
  (b) notecheck's rules, patterns/context_rules.json read with ConTextRule.from_json, into ConText(rules=None) with
      the same default settings. Categories without a counterpart in the test set (PRE_REDUCTION, POST_REDUCTION)
      are skipped; TERMINATE and PSEUDO rules are kept, and so are POSSIBLE_EXISTENCE rules (the set's negation
      scheme names "possible", and these cues, e.g. "cannot be ruled out", outrank shorter overlapping negation cues
      through ConText's overlap pruning) unless --drop-possible is given.
Rules restricted to notecheck's own target labels (allowed_types such as "technique") never apply to a CONDITION,
as they would not on a condition in a note.

Output: per class, the gold count and precision, recall and F1 of each system, and the run time (loading, and each
system's pass over the set). --json prints the same as JSON. --errors N adds the N most frequent false-negative and
false-positive cue phrases of notecheck's rules per class: for a false positive, our cue; for a false negative, our
cue of that class in the sentence that did not reach the target, else our PSEUDO cue that blocked it, else the cue
medspaCy's defaults used, else the words just before the target. No network; the data set is read, never written.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import medspacy
import spacy
from medspacy.context import ConText, ConTextRule  # importing ConText registers the medspacy_context factory
from spacy.language import Language
from spacy.tokens import Doc

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "context-testset"
DATA_FILE = "rsAnnotations-1-120-random.txt"
RULES_FILE = ROOT / "patterns" / "context_rules.json"
TARGET_LABEL = "CONDITION"
TARGET_KEY = "context_testset_target"  # Doc.user_data key holding the target's character offsets
SYSTEMS = ("medspaCy default", "notecheck")

# Scored class -> the ConText category that predicts it.
CLASSES: dict[str, str] = {
    "negated": "NEGATED_EXISTENCE",
    "historical": "HISTORICAL",
    "hypothetical": "HYPOTHETICAL",
    "other experiencer": "FAMILY",
}
# Categories of notecheck's rules kept besides the scored ones (TERMINATE and PSEUDO rules are kept by direction).
KEPT_EXTRA = ("TERMINATE", "POSSIBLE_EXISTENCE")

NEGATION = {"Affirmed", "Negated"}
TEMPORALITY = {"Recent", "Historical", "Not particular"}
EXPERIENCER = {"Patient", "Family member", "Other"}

# medspaCy keeps an empty token Matcher beside regex-only rules; spaCy warns (W036) on every call otherwise.
warnings.filterwarnings("ignore", message=r"\[W036\]")


@dataclass(frozen=True)
class Item:
    row: str
    condition: str
    sentence: str
    gold: frozenset[str]  # the scored classes this item belongs to
    target: Optional[tuple[int, int]]  # character offsets of the condition in the sentence, None if not found


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def gold(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


@dataclass
class Prediction:
    categories: set[str] = field(default_factory=set)
    cues: dict[str, list[str]] = field(default_factory=dict)  # category -> lower-cased cues modifying the target
    # (category, direction, lower-cased cue) of every modifier in the target's sentence that may modify a CONDITION,
    # whether it modified the target or not
    sentence_cues: list[tuple[str, str, str]] = field(default_factory=list)
    before: str = ""  # up to three words before the target, within its sentence
    split: bool = False  # the sentencizer split the item into more than one sentence


def find_condition(condition: str, sentence: str) -> Optional[tuple[int, int]]:
    """Character offsets of the condition in the sentence, case-insensitively and with any whitespace run matching
    any other. The source upper-cases the annotated mention, so an upper-case occurrence is preferred."""
    words = condition.split()
    if not words:
        return None
    found = list(re.finditer(r"\s+".join(re.escape(w) for w in words), sentence, re.IGNORECASE))
    if not found:
        return None
    upper = [m for m in found if m.group().isupper()]
    best = (upper or found)[0]
    return best.start(), best.end()


def read_items(path: Path) -> list[Item]:
    """The test set's rows (tab-separated, one header line) as Items; fails loudly on an unexpected value."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    if len(header) != 6 or not header[1].lower().startswith("condition"):
        raise SystemExit(f"{path}: unexpected header {header!r}")
    items = []
    for n, row in enumerate(body, start=2):
        if len(row) != 6:
            raise SystemExit(f"{path}:{n}: expected 6 tab-separated columns, got {len(row)}")
        row_id, condition, _, negation, temporality, experiencer = (c.strip() for c in row)
        sentence = row[2]  # unstripped: the target's offsets index the sentence as given
        if negation not in NEGATION or temporality not in TEMPORALITY or experiencer not in EXPERIENCER:
            raise SystemExit(f"{path}:{n}: unexpected annotation {(negation, temporality, experiencer)!r}")
        gold = {name for name, yes in (("negated", negation == "Negated"),
                                        ("historical", temporality == "Historical"),
                                        ("hypothetical", temporality == "Not particular"),
                                        ("other experiencer", experiencer != "Patient")) if yes}
        items.append(Item(row_id, condition, sentence, frozenset(gold), find_condition(condition, sentence)))
    return items


@Language.component(TARGET_KEY)
def set_target(doc: Doc) -> Doc:
    """Make the span at doc.user_data[TARGET_KEY] (character offsets) the Doc's only entity."""
    offsets: Optional[tuple[int, int]] = doc.user_data.get(TARGET_KEY)
    span = None
    if offsets is not None:
        span = doc.char_span(offsets[0], offsets[1], label=TARGET_LABEL, alignment_mode="expand")
    doc.ents = [span] if span is not None else []
    return doc


def project_rules(path: Path, drop_possible: bool) -> tuple[list[ConTextRule], Counter[str]]:
    """notecheck's ConText rules as medspaCy ConTextRules, without categories the test set has no counterpart for.
    Returns the kept rules and the count of skipped rules per category."""
    kept_categories = set(CLASSES.values()) | set(KEPT_EXTRA)
    if drop_possible:
        kept_categories.discard("POSSIBLE_EXISTENCE")
    kept: list[ConTextRule] = []
    skipped = Counter[str]()
    for rule in ConTextRule.from_json(str(path)):
        if rule.category in kept_categories or rule.direction in ("TERMINATE", "PSEUDO"):
            kept.append(rule)
        else:
            skipped[rule.category] += 1
    return kept, skipped


def build_pipeline(rules: Optional[list[ConTextRule]]) -> Language:
    """spacy.blank("en") + sentencizer + target + ConText: medspaCy's default rules if rules is None, else only
    the given ConTextRules. ConText's other settings are its defaults either way."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe(TARGET_KEY)
    if rules is None:
        nlp.add_pipe("medspacy_context")
    else:
        context = nlp.add_pipe("medspacy_context", config={"rules": None})
        assert isinstance(context, ConText)
        context.add(rules)
    return nlp


def make_docs(nlp: Language, items: Iterable[Item]) -> Iterator[Doc]:
    for item in items:
        doc = nlp.make_doc(item.sentence)
        doc.user_data[TARGET_KEY] = item.target
        yield doc


def predict(doc: Doc) -> Prediction:
    """The ConText categories that modify the Doc's target, with the cue text of each."""
    pred = Prediction()
    if not doc.ents:
        return pred
    target = doc.ents[0]
    sent = target.sent
    pred.split = len(sent) != len(doc)
    pred.before = " ".join(t.lower_ for t in doc[max(sent.start, target.start - 3) : target.start] if not t.is_space)
    for modifier in target._.modifiers:
        pred.categories.add(modifier.category)
        pred.cues.setdefault(modifier.category, []).append(cue_text(doc, modifier.modifier_span))
    for modifier in doc._.context_graph.modifiers:
        start, end = modifier.modifier_span
        if sent.start <= start and end <= sent.end and modifier.allows(TARGET_LABEL):
            pred.sentence_cues.append((modifier.category, modifier.direction, cue_text(doc, (start, end))))
    return pred


def cue_text(doc: Doc, span: tuple[int, int]) -> str:
    return " ".join(doc[span[0] : span[1]].text.lower().split())


def run(nlp: Language, items: list[Item]) -> tuple[list[Prediction], list[tuple[int, ...]], float]:
    """Run a pipeline over the items; returns predictions, each Doc's token start offsets and the seconds taken."""
    start = time.perf_counter()
    preds, tokens = [], []
    for doc in nlp.pipe(make_docs(nlp, items), batch_size=256):
        preds.append(predict(doc))
        tokens.append(tuple(t.idx for t in doc))
    return preds, tokens, time.perf_counter() - start


def score(items: list[Item], preds: list[Prediction]) -> dict[str, Score]:
    scores = {name: Score() for name in CLASSES}
    for item, pred in zip(items, preds):
        for name, category in CLASSES.items():
            gold, hit = name in item.gold, category in pred.categories
            scores[name].tp += gold and hit
            scores[name].fp += hit and not gold
            scores[name].fn += gold and not hit
    return scores


def missed_because(category: str, mine: Prediction, theirs: Prediction) -> str:
    """A short cue phrase for a false negative of notecheck's rules: our own cue of the category in the sentence that
    did not reach the target (scope, termination, or a longer overlapping cue of another category won), our pseudo
    cue that blocked it, else medspaCy's cue, else the words before the target."""
    ours = sorted({c for cat, way, c in mine.sentence_cues if cat == category and way != "PSEUDO"})
    if ours:
        return " / ".join(f'"{c}"' for c in ours) + " (ours, did not reach the target)"
    pseudo = sorted({c for cat, way, c in mine.sentence_cues if cat == category and way == "PSEUDO"})
    if pseudo:
        return " / ".join(f'"{c}"' for c in pseudo) + " (our PSEUDO cue)"
    theirs_cues = sorted(set(theirs.cues.get(category, [])))
    if theirs_cues:
        return " / ".join(f'"{c}"' for c in theirs_cues) + " (medspaCy's cue, none of ours)"
    if mine.before:
        return f"(no cue in either) ... {mine.before} [TARGET]"
    return "(no cue in either; target opens sentence)"


def error_cues(items: list[Item], ours: list[Prediction], default: list[Prediction],
               top: int) -> dict[str, dict[str, list[tuple[str, int]]]]:
    """Per class, the most frequent cue phrases of notecheck's false negatives and false positives."""
    out: dict[str, dict[str, list[tuple[str, int]]]] = {}
    for name, category in CLASSES.items():
        fn, fp = Counter[str](), Counter[str]()
        for item, mine, theirs in zip(items, ours, default):
            gold, hit = name in item.gold, category in mine.categories
            if gold and not hit:
                fn[missed_because(category, mine, theirs)] += 1
            elif hit and not gold:
                fp.update(f'"{c}"' for c in sorted(set(mine.cues[category])))
        out[name] = {"false_negatives": fn.most_common(top), "false_positives": fp.most_common(top)}
    return out


def table(scores: dict[str, dict[str, Score]]) -> str:
    head = f"{'class':<18} {'gold':>5}" + "".join(f"  {s + ' P':>20} {'R':>6} {'F1':>6}" for s in SYSTEMS)
    lines = [head, "-" * len(head)]
    for name in CLASSES:
        row = f"{name:<18} {scores[SYSTEMS[0]][name].gold:>5}"
        for system in SYSTEMS:
            s = scores[system][name]
            row += f"  {s.precision:>20.3f} {s.recall:>6.3f} {s.f1:>6.3f}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"the test set's directory or its {DATA_FILE} (default: {DEFAULT_DATA})")
    parser.add_argument("--rules", type=Path, default=RULES_FILE,
                        help="notecheck's ConText rules (default: %(default)s)")
    parser.add_argument("--drop-possible", action="store_true",
                        help="also skip notecheck's POSSIBLE_EXISTENCE rules")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--errors", type=int, default=0, metavar="N",
                        help="list the N most frequent false-negative/false-positive cues of notecheck's rules")
    args = parser.parse_args(argv)

    data = args.data / DATA_FILE if args.data.is_dir() else args.data
    if not data.is_file():
        parser.error(f"test set not found: {data}")
    wall = time.perf_counter()
    items = read_items(data)
    found = [item for item in items if item.target is not None]
    missing = [item for item in items if item.target is None]

    start = time.perf_counter()
    rules, skipped = project_rules(args.rules, args.drop_possible)
    pipelines = {SYSTEMS[0]: build_pipeline(None), SYSTEMS[1]: build_pipeline(rules)}
    load_s = time.perf_counter() - start

    preds, seconds, tokens = {}, {}, {}
    for system, nlp in pipelines.items():
        preds[system], tokens[system], seconds[system] = run(nlp, found)
    if tokens[SYSTEMS[0]] != tokens[SYSTEMS[1]]:
        raise SystemExit("the two pipelines tokenised the sentences differently")
    scores = {system: score(found, preds[system]) for system in SYSTEMS}
    split = sum(p.split for p in preds[SYSTEMS[0]])
    errors = error_cues(found, preds[SYSTEMS[1]], preds[SYSTEMS[0]], args.errors) if args.errors else {}
    wall_s = time.perf_counter() - wall

    result: dict[str, Any] = {
        "data": str(data),
        "medspacy": medspacy.__version__,
        "spacy": spacy.__version__,
        "sentences": len(items),
        "scored": len(found),
        "condition_not_found": {"count": len(missing), "rows": [i.row for i in missing],
                                "gold_positive": sum(bool(i.gold) for i in missing)},
        "split_by_sentencizer": split,
        "notecheck_rules": {"kept": len(rules), "skipped_by_category": dict(skipped)},
        "scores": {system: {name: s.as_dict() | {"gold": s.gold} for name, s in scores[system].items()}
                   for system in SYSTEMS},
        "seconds": {"load": round(load_s, 2), **{system: round(s, 2) for system, s in seconds.items()},
                    "total": round(wall_s, 2)},
    }
    if errors:
        result["notecheck_errors"] = errors
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    print(f"ConText test set: {data}")
    print(f"{len(items)} sentences; {len(found)} scored; condition not found in {len(missing)} "
          f"(rows {', '.join(i.row for i in missing)}; {result['condition_not_found']['gold_positive']} of them "
          f"in a scored class); {split} split into several sentences by the sentencizer (the target's sentence is "
          f"ConText's scope)")
    print(f"medspaCy {medspacy.__version__}, spaCy {spacy.__version__}; notecheck rules: {len(rules)} kept, skipped "
          + (", ".join(f"{c} {n}" for c, n in sorted(skipped.items())) or "none"))
    print()
    print(table(scores))
    print()
    print(f"time: load {load_s:.2f} s, " + ", ".join(f"{s} {seconds[s]:.2f} s" for s in SYSTEMS)
          + f", total {wall_s:.2f} s")
    for name, lists in errors.items():
        for kind, cues in lists.items():
            if cues:
                print(f"\nnotecheck {name}, {kind.replace('_', ' ')}:")
                for cue, n in cues:
                    print(f"  {n:>4}  {cue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
