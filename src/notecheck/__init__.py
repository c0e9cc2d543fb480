"""notecheck: does an operative note support the hip-dislocation CPT code billed for it?

Importing the package registers the spaCy components `notecheck_sentences` and `notecheck_findings`.
"""

import notecheck.extraction  # noqa: E402,F401  (registers notecheck_findings)
from notecheck.checker import Checker
from notecheck.models import CheckResult, Evidence, Findings
from notecheck.reading import ReadError, read_note
from notecheck.rulebook import RulebookError, load_rulebook
from notecheck.version import __version__

__all__ = ["Checker", "CheckResult", "Evidence", "Findings", "ReadError", "RulebookError", "load_rulebook", "read_note",
           "__version__"]
