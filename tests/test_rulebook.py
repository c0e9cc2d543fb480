"""patterns/ is validated on load: a broken rule file fails with the file and the field named."""

import json
import shutil

import pytest

from notecheck.rulebook import RulebookError, default_patterns_dir, load_rulebook


@pytest.fixture()
def patterns(tmp_path):
    dst = tmp_path / "patterns"
    shutil.copytree(default_patterns_dir(), dst)
    return dst


def _edit(path, change):
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_packaged_rules_load():
    book = load_rulebook()
    assert {c.code for c in book.families["hip_dislocation"].codes} == {
        "27250", "27252", "27253", "27254", "27256", "27257", "27258", "27259", "27265", "27266"}


def test_bad_regex_names_file_and_field(patterns):
    _edit(patterns / "target_rules.json", lambda d: d["target_rules"][3].update(pattern="(unclosed"))
    with pytest.raises(RulebookError, match=r"target_rules\.json: field target_rules\.3\.pattern"):
        load_rulebook(patterns)


@pytest.mark.parametrize("where, change", [
    ("linked.cue", lambda d: d["linked"].update(cue="(unclosed")),
    ("dictation.0.not_after", lambda d: d["dictation"][0].update(not_after="[bad")),
    ("other_site.site", lambda d: d["other_site"].update(site="(unclosed")),
    ("claims_yield.claim_line", lambda d: d["claims_yield"].update(claim_line="[bad")),
    ("sound_alikes.0.heard", lambda d: d["sound_alikes"][0].update(heard="(unclosed")),
    ("blocks.chronology.index_marker", lambda d: d["blocks"]["chronology"].update(index_marker="(unclosed")),
])
def test_bad_regex_in_findings_policy_names_field(patterns, where, change):
    _edit(patterns / "findings.json", change)
    with pytest.raises(RulebookError, match=r"findings\.json: field " + where.replace(".", r"\.")):
        load_rulebook(patterns)


def test_a_chronology_entry_must_say_where_its_date_is(patterns):
    _edit(patterns / "findings.json", lambda d: d["blocks"]["chronology"].update(entry=r"^\d\d/\d\d/\d\d"))
    with pytest.raises(RulebookError, match=r"blocks\.chronology\.entry.*group named 'date'"):
        load_rulebook(patterns)


def test_a_block_rule_read_nowhere_is_refused(patterns):
    def change(d):
        rule = next(r for r in d["blocks"]["rules"] if r["id"] == "B-PLANNED-RISK-LIST")
        rule["inline_sentence"] = False
    _edit(patterns / "findings.json", change)
    with pytest.raises(RulebookError, match="B-PLANNED-RISK-LIST: a rule not read at line starts needs inline_sentence"):
        load_rulebook(patterns)


def test_unknown_act_field_in_follow_up(patterns):
    _edit(patterns / "findings.json", lambda d: d["follow_up"].update(act_fields=["no_such_field"]))
    with pytest.raises(RulebookError, match="no_such_field"):
        load_rulebook(patterns)


def test_unknown_field_in_title_vetoes(patterns):
    _edit(patterns / "findings.json", lambda d: d["title_vetoes"].update(fields=["approach", "no_such_field"]))
    with pytest.raises(RulebookError, match="no_such_field"):
        load_rulebook(patterns)


def test_unknown_field_in_findings_policy(patterns):
    _edit(patterns / "findings.json", lambda d: d["other_site"].update(fields=["approach", "no_such_field"]))
    with pytest.raises(RulebookError, match="no_such_field"):
        load_rulebook(patterns)


def test_bad_value_in_family_names_file_and_field(patterns):
    _edit(patterns / "families" / "hip_dislocation.json", lambda d: d["codes"][0].update(global_days="30"))
    with pytest.raises(RulebookError, match=r"hip_dislocation\.json: field codes\.0\.global_days"):
        load_rulebook(patterns)


def test_unknown_rule_reference(patterns):
    _edit(patterns / "families" / "hip_dislocation.json",
          lambda d: d["codes"][0]["requirements"][0].update(rule_missing="NC999"))
    with pytest.raises(RulebookError, match="NC999"):
        load_rulebook(patterns)


def test_not_json(patterns):
    (patterns / "context_rules.json").write_text("{ nope", encoding="utf-8")
    with pytest.raises(RulebookError, match=r"context_rules\.json: not valid JSON"):
        load_rulebook(patterns)


def test_bad_patterns_dir_from_cli(patterns):
    from typer.testing import CliRunner

    from notecheck.cli import app

    (patterns / "rules.json").write_text("[]", encoding="utf-8")
    res = CliRunner().invoke(app, ["rules", "--patterns", str(patterns)])
    assert res.exit_code == 2 and "rules.json" in res.output


def test_unknown_target_category(patterns):
    _edit(patterns / "target_rules.json", lambda d: d["target_rules"][0].update(category="etiologgy"))
    with pytest.raises(RulebookError, match=r"target_rules\.json: target_rules\.0 .*unknown category 'etiologgy'"):
        load_rulebook(patterns)


def test_unknown_context_category(patterns):
    _edit(patterns / "context_rules.json", lambda d: d["context_rules"][0].update(category="NEGATIVE"))
    with pytest.raises(RulebookError, match=r"context_rules\.json: context_rules\.0 .*unknown category 'NEGATIVE'"):
        load_rulebook(patterns)


def test_unknown_terminating_category(patterns):
    _edit(patterns / "context_rules.json", lambda d: d["context_rules"][0].update(terminated_by=["HEER"]))
    with pytest.raises(RulebookError, match=r"context_rules\.0 .*terminated_by names unknown category 'HEER'"):
        load_rulebook(patterns)


def test_two_context_rules_with_one_literal_are_refused(patterns):
    """A second rule with the same literal and category is shadowed by the first (its scope never applies)."""
    _edit(patterns / "context_rules.json", lambda d: d["context_rules"].append(dict(d["context_rules"][0])))
    with pytest.raises(RulebookError, match=r"context_rules\.json: .*two rules share literal"):
        load_rulebook(patterns)


def test_requirement_on_unknown_finding(patterns):
    _edit(patterns / "families" / "hip_dislocation.json",
          lambda d: d["codes"][2]["requirements"][1].update(finding="anaesthesia"))
    with pytest.raises(RulebookError, match=r"hip_dislocation\.json: .*unknown finding 'anaesthesia'"):
        load_rulebook(patterns)


def test_a_requirement_not_for_an_unknown_code_is_refused(patterns):
    _edit(patterns / "families" / "hip_dislocation.json",
          lambda d: d["common_requirements"][0].update(not_for=["27999"]))
    with pytest.raises(RulebookError, match=r"hip_dislocation\.json: requirement imaging_pre: not_for names 27999"):
        load_rulebook(patterns)


def test_no_event_rule_on_unknown_finding(patterns):
    _edit(patterns / "findings.json", lambda d: d["no_event"][0]["reset"].update(anaesthesia="unknown"))
    with pytest.raises(RulebookError, match=r"findings\.json: no_event\.0: unknown finding 'anaesthesia'"):
        load_rulebook(patterns)


def test_a_reading_never_changes_the_copys_length():
    """Dictation marks and sound-alikes are read in a same-length copy: a reading longer than the words it replaces
    is not made, and a shorter one is padded with spaces, so every offset still points into the note as given."""
    import re

    from notecheck.reading import apply_dictation

    rules = [(re.compile(r"\bso\s+as(?=\s+tenotomy)", re.I), "psoas", None),
             (re.compile(r"\bspike\s+a\s+cast", re.I), "spica cast", None),
             (re.compile(r"\bK-L\b", re.I), "Kocher-Langenbeck", None)]
    text = "so as tenotomy; hip spike a cast; K-L approach"
    read = apply_dictation(text, rules)
    assert read == "psoas tenotomy; hip spica cast  ; K-L approach"
    assert len(read) == len(text)


def test_an_anchor_needs_a_mid_line_search(patterns):
    def change(d):
        rule = next(r for r in d["blocks"]["rules"] if not r.get("quoted") and not r.get("inline_sentence"))
        rule["inline_anchor"] = "plan"
    _edit(patterns / "findings.json", change)
    with pytest.raises(RulebookError, match="inline_anchor only narrows"):
        load_rulebook(patterns)


def _notes():
    from conftest import ROOT
    return sorted([*ROOT.glob("corpus/*.txt"), *ROOT.glob("holdout*/*.txt"), *ROOT.glob("writers/w1[0-3]*/*.txt")])


def test_an_anchored_mid_line_search_finds_what_a_full_scan_finds():
    """inline_anchor is a speed device only: on every note, the cues found near the anchors are the cues a scan of
    the whole note finds."""
    import re

    from notecheck.encounter import _QUOTE_OPENS, _inline_cues

    anchored = [r for r in load_rulebook().findings.blocks.rules if r.inline_anchor]
    assert anchored
    searches = [(p, r.inline_anchor) for r in anchored
                for p in ([r.pattern] if r.inline_sentence else []) + (["(?:" + r.pattern + ")" + _QUOTE_OPENS]
                                                                       if r.quoted else [])]
    found = 0
    for path in _notes():
        text = path.read_text(encoding="utf-8")
        for pattern, anchor in searches:
            full = [m.span() for m in re.finditer(pattern, text, re.I)]
            assert [m.span() for m in _inline_cues(text, pattern, anchor)] == full, path.name
            found += len(full)
    assert found > 50


def test_dictation_probes_change_nothing():
    """The lower-cased probes only skip commands that cannot apply: the reading is the same with and without them."""
    from notecheck import Checker
    from notecheck.reading import apply_dictation, normalize_for_matching

    checker = Checker()
    texts = [normalize_for_matching(p.read_text(encoding="utf-8")) for p in _notes()]
    texts.append("Hip reduced period new paragraph Pav lick harness, so as tenotomy to years ago comma stable")
    changed = 0
    for text in texts:
        plain = apply_dictation(text, checker._dictation)
        assert apply_dictation(text, checker._dictation, checker._dictation_probes) == plain
        changed += plain != text
    assert changed >= 2
