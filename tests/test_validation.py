"""Code selection and requirement checks from findings alone, for every code in the family."""

import pytest

from notecheck.models import Evidence, Findings
from notecheck.rulebook import load_rulebook
from notecheck.validation import validate

BOOK = load_rulebook()


def run(claimed=None, evidence=(), **kw):
    base = dict(hip_dislocation=True, reduction=True, laterality="left", imaging_pre=True, imaging_post=True)
    base.update(kw)
    return validate(Findings(**base), list(evidence), [], BOOK, source="t", claimed_code=claimed)


@pytest.mark.parametrize(
    "kw, code",
    [
        (dict(etiology="traumatic", approach="closed", anesthesia="moderate_sedation"), "27250"),
        (dict(etiology="traumatic", approach="closed", anesthesia="unknown"), "27250"),
        (dict(etiology="traumatic", approach="closed", anesthesia="mac"), "27252"),
        (dict(etiology="traumatic", approach="open", anesthesia="general"), "27253"),
        (dict(etiology="traumatic", approach="open", acetabular_wall_fracture=True), "27253"),
        (dict(etiology="traumatic", approach="open", acetabular_wall_fracture=True, femoral_head_fracture=True),
         "27254"),
        (dict(etiology="developmental", approach="closed", technique=["abduction"]), "27256"),
        (dict(etiology="developmental", approach="closed", anesthesia="general", manipulation=False,
              technique=["splint"]), "27256"),
        (dict(etiology="congenital", approach="closed", anesthesia="general", manipulation=True,
              technique=["splint"]), "27257"),
        (dict(etiology="pathological", approach="open"), "27258"),
        (dict(etiology="pathological", approach="open", femoral_shortening=True), "27259"),
        (dict(etiology="post_arthroplasty", approach="closed", anesthesia="mac"), "27265"),
        (dict(etiology="post_arthroplasty", approach="closed", anesthesia="regional"), "27266"),
        (dict(etiology="post_arthroplasty", approach="open", anesthesia="general"), None),
        (dict(etiology="traumatic", approach="closed", no_reduction=True), None),
        (dict(etiology="unknown", approach="closed"), None),
        (dict(etiology="traumatic", approach="closed", hip_dislocation=False), None),
    ],
)
def test_selection(kw, code):
    assert run(**kw).supported_code == code


def rules_of(result):
    return {i.rule for i in result.issues}


def test_wrong_claim_and_gap_rules():
    r = run("27252", etiology="traumatic", approach="closed", anesthesia="moderate_sedation")
    assert r.verdict == "not_supported" and {"NC001", "NC112"} <= rules_of(r) and r.has_errors
    r = run("27254", etiology="traumatic", approach="open", acetabular_wall_fracture=True)
    assert {"NC001", "NC142"} <= rules_of(r) and "NC141" not in rules_of(r)
    r = run("27266", etiology="post_arthroplasty", approach="closed", anesthesia="mac")
    assert "NC114" in rules_of(r) and "NC112" not in rules_of(r)
    r = run("27257", etiology="developmental", approach="closed", anesthesia="general", manipulation=True)
    assert "NC122" in rules_of(r)
    r = run("27259", etiology="developmental", approach="open")
    assert "NC151" in rules_of(r)
    r = run("27250", etiology="traumatic", approach="closed")
    assert "NC116" in rules_of(r) and not r.has_errors


def test_negated_fracture_is_a_conflict_not_missing():
    ev = Evidence(field="femoral_head_fracture", value="true", text="femoral head fracture", start=3, end=24,
                  section=None, rule="x", is_negated=True, counted=False)
    r = run("27254", evidence=[ev], etiology="traumatic", approach="open", acetabular_wall_fracture=True)
    req = next(q for q in r.requirements if q.id == "femoral_head_fracture")
    assert req.status == "conflict" and req.evidence == [ev]


def test_icd_contradiction_and_bundled_codes():
    r = run("27257", etiology="developmental", approach="closed", anesthesia="general", manipulation=True,
            technique=["splint"], icd10_codes=["S73.015A"], cpt_codes=["27257", "29305"])
    assert {"NC103", "NC182"} <= rules_of(r) and "NC001" not in rules_of(r)


def test_surgeon_role_and_modifiers():
    r = run("27252", etiology="traumatic", approach="closed", anesthesia="general", anesthesia_by="separate_provider")
    assert "NC115" in rules_of(r)
    assert [m.modifier for m in r.modifiers][:1] == ["LT"]
    r = run("27252", etiology="traumatic", approach="closed", anesthesia="general", anesthesia_by="surgeon",
            laterality="bilateral")
    assert {"50", "47"} <= {m.modifier for m in r.modifiers}
    r = run("27252", etiology="traumatic", approach="closed", anesthesia="general", laterality="unknown")
    assert "NC171" in rules_of(r) and not {"LT", "RT", "50"} & {m.modifier for m in r.modifiers}


def test_no_claim_checks_supported_code():
    r = run(None, etiology="traumatic", approach="closed", anesthesia="general")
    assert r.verdict == "no_claim" and r.supported_code == "27252" and "NC002" in rules_of(r)
    assert r.requirements
