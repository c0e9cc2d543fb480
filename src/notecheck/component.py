"""The `notecheck` spaCy component, for a vendor's own pipeline: `nlp.add_pipe("notecheck")`.

It runs notecheck's own pipeline on `doc.text` in a private Doc, so the host pipeline's tokenizer, sentence
boundaries, `doc.ents` and span groups are never touched; the report lands on `doc._.notecheck` (a CheckResult whose
evidence offsets index `doc.text`). A claimed code can be passed per document in `doc._.notecheck_code`.
"""

from typing import Optional

from spacy.language import Language
from spacy.tokens import Doc

from notecheck.checker import Checker

for _attr in ("notecheck", "notecheck_code"):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)


class NotecheckComponent:
    def __init__(self, checker: Checker):
        self.checker = checker

    def __call__(self, doc: Doc) -> Doc:
        doc._.notecheck = self.checker.check(doc.text, code=doc._.notecheck_code)
        return doc


@Language.factory("notecheck", default_config={"patterns_dir": None, "family": "hip_dislocation"})
def make_notecheck(nlp: Language, name: str, patterns_dir: Optional[str], family: str) -> NotecheckComponent:
    return NotecheckComponent(Checker(patterns_dir=patterns_dir, family=family))
