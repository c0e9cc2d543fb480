"""Shared fixtures: one Checker per test session (building the pipeline is the slow part)."""

from pathlib import Path

import pytest

from notecheck import Checker

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_notes"


@pytest.fixture(scope="session")
def checker() -> Checker:
    return Checker()


@pytest.fixture(scope="session")
def findings_of(checker):
    """Findings for a short note text."""

    def run(text: str):
        return checker.check_text(text).findings

    return run
