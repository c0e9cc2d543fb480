"""The `notecheck` spaCy component, for a vendor's own pipeline: `nlp.add_pipe("notecheck")`.

It runs notecheck's own pipeline on `doc.text` in a private Doc, so the host pipeline's tokenizer, sentence
boundaries, `doc.ents` and span groups are never touched; the report lands on `doc._.notecheck` (a CheckResult whose
evidence offsets index `doc.text`). A claimed code can be passed per document in `doc._.notecheck_code`.
"""

from typing import Optional

from spacy.language import Language
from spacy.tokens import Doc

from notecheck.checker import Checker
from notecheck.models import CheckResult


def _report(doc: Doc) -> Optional[CheckResult]:
    data = doc._.notecheck_data
    return CheckResult.model_validate_json(data) if data else None


# The report is stored as JSON text, so Doc.to_bytes, DocBin and nlp.pipe(n_process=...) keep working;
# doc._.notecheck rebuilds the pydantic CheckResult from it on access.
for _attr in ("notecheck_code", "notecheck_data"):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)
if not Doc.has_extension("notecheck"):
    Doc.set_extension("notecheck", getter=_report)


class NotecheckComponent:
    def __init__(self, checker: Checker):
        self.checker = checker

    def __call__(self, doc: Doc) -> Doc:
        result = self.checker.check(doc.text, code=doc._.notecheck_code)
        # A JSON string, not a dict: medspaCy's global msgpack hook would decode any dict with a "section" key
        # (which Evidence has) as one of its Section objects when the Doc is loaded again.
        doc._.notecheck_data = result.model_dump_json()
        return doc


@Language.factory("notecheck", default_config={"patterns_dir": None, "family": "hip_dislocation"})
def make_notecheck(nlp: Language, name: str, patterns_dir: Optional[str], family: str) -> NotecheckComponent:
    return NotecheckComponent(Checker(patterns_dir=patterns_dir, family=family))
