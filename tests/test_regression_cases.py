"""One generic test over the regression cases in tests/data/regression_cases.json (as sqlfluff runs its rule cases):
each case is a short snippet for a general failure pattern with the findings it must produce."""

import json
from pathlib import Path

import pytest

CASES = json.loads((Path(__file__).parent / "data" / "regression_cases.json").read_text(encoding="utf-8"))["cases"]


def test_cases_are_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for case in CASES:
        assert case["pattern"] and case["class"] and case["text"] and case["expect"], case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_regression_case(checker, case):
    result = checker.check_text(case["text"])
    found = result.findings.model_dump()
    found["supported_code"] = result.supported_code
    wrong = {k: (v, found[k]) for k, v in case["expect"].items() if found[k] != v}
    assert not wrong, f"{case['id']} ({case['pattern']}): expected vs found {wrong}"
