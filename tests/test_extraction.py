"""Each finding, with the negation, hypothetical, historical, family and conflict traps a coder relies on."""

import pytest

TRAUMA = "PREOPERATIVE DIAGNOSIS: Left posterior hip dislocation after a motor vehicle collision.\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (TRAUMA, "traumatic"),
        ("DIAGNOSIS: Developmental dysplasia of the left hip with dislocation.\n", "developmental"),
        ("DIAGNOSIS: Congenital dislocation of the right hip (teratologic).\n", "congenital"),
        ("DIAGNOSIS: Paralytic dislocation of the right hip in spastic quadriplegic cerebral palsy.\n", "pathological"),
        ("DIAGNOSIS: Posterior dislocation of right total hip arthroplasty after a fall.\n", "post_arthroplasty"),
        ("DIAGNOSIS: Hip dislocation.\nCODES: S73.014A\n", "traumatic"),
        ("DIAGNOSIS: Right hip dislocation.\n", "unknown"),
        # negated and family mentions of dysplasia must not turn a trauma into a spontaneous dislocation
        (TRAUMA + "HISTORY: No history of hip dysplasia. Mother had hip dysplasia as a baby.\n", "traumatic"),
        # a prosthesis placed years ago still makes the dislocation prosthetic
        ("HISTORY: Status post left total hip arthroplasty in 2019. Fell at home.\n"
         "DIAGNOSIS: Dislocated left hip.\n", "post_arthroplasty"),
    ],
)
def test_etiology(findings_of, text, expected):
    assert findings_of(text).etiology == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (TRAUMA + "PROCEDURE: Closed reduction of the left hip.\n", "closed"),
        (TRAUMA + "PROCEDURE: Open reduction through a Kocher-Langenbeck approach.\n", "open"),
        # failed closed attempt converted to open: what was finally done
        (TRAUMA + "DESCRIPTION: Closed reduction failed after three Allis attempts, so I converted to open reduction "
                  "and performed an arthrotomy.\n", "open"),
        # open reduction only as a consented possibility
        (TRAUMA + "INDICATIONS: Consent was obtained for closed and possible open reduction.\n"
                  "DESCRIPTION: The hip was reduced with an Allis maneuver.\n", "closed"),
        (TRAUMA, "unknown"),
    ],
)
def test_approach(findings_of, text, expected):
    assert findings_of(text).approach == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ANESTHESIA: General endotracheal anesthesia.\n", "general"),
        ("ANESTHESIA: Spinal anesthesia.\n", "regional"),
        ("ANESTHESIA: Fascia iliaca block.\n", "regional"),
        ("ANESTHESIA: Monitored anesthesia care by the anesthesia team.\n", "mac"),
        ("SEDATION: Procedural sedation with propofol by the ED physician.\n", "moderate_sedation"),
        ("ANESTHESIA: Local infiltration with lidocaine.\n", "local"),
        ("ANESTHESIA: None. The reduction was done without sedation.\n", "none"),
        ("The hip was reduced without anesthesia or sedation.\n", "none"),
        # hypothetical: anesthesia discussed as a risk is not documentation
        ("INDICATIONS: The risks of general anesthesia were discussed with the patient.\n", "unknown"),
        ("PLAN: If closed reduction fails we will proceed under general anesthesia.\n", "unknown"),
        # conflict: failed attempt under sedation, then success under general anesthesia
        ("DESCRIPTION: Two attempts under procedural sedation failed. In the OR, under general anesthesia, "
         "the hip was reduced.\n", "general"),
        # unchecked template boxes do not count
        ("ANESTHESIA: [ ] General  [ ] Spinal  [x] Procedural sedation\n", "moderate_sedation"),
    ],
)
def test_anesthesia(findings_of, text, expected):
    assert findings_of(text).anesthesia == expected


def test_anesthesia_provider_and_surgeon_role(findings_of):
    f = findings_of("ANESTHESIA: General anesthesia by the anesthesiologist.\nThe hip was reduced.\n")
    assert f.anesthesia_by == "separate_provider"
    assert f.surgeon_role_stated is False
    f = findings_of("ANESTHESIA: General anesthesia by the anesthesiologist.\nI performed the reduction.\n")
    assert f.surgeon_role_stated is True


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I reduced the hip with a Bigelow maneuver.\n", True),
        ("Closed reduction of the left hip.\n", True),
        ("No manipulative reduction was performed; a Pavlik harness was fitted.\n", False),
        ("A Pavlik harness was fitted.\n", None),
    ],
)
def test_manipulation(findings_of, text, expected):
    assert findings_of(text).manipulation is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A Pavlik harness was applied.\n", ["abduction"]),
        ("A hip spica cast was applied in the human position.\n", ["splint"]),
        ("Bryant's traction was started.\n", ["traction"]),
        ("Longitudinal traction was applied and the hip reduced.\n", []),  # a maneuver, not traction treatment
        ("No spica cast was needed.\n", []),
    ],
)
def test_technique(findings_of, text, expected):
    assert findings_of(text).technique == expected


def test_imaging_before_and_after(findings_of):
    f = findings_of("INDICATIONS: AP pelvis radiograph showed a posterior dislocation.\n"
                    "DESCRIPTION: Closed reduction with an Allis maneuver. Post-reduction CT showed a concentric hip.\n")
    assert (f.imaging_pre, f.imaging_post, f.fluoroscopy) == (True, True, False)
    f = findings_of("DESCRIPTION: Closed reduction with an Allis maneuver. Reduction was confirmed with fluoroscopy.\n"
                    "PLAN: CT will be obtained tomorrow.\n")
    assert (f.imaging_pre, f.imaging_post, f.fluoroscopy) == (False, True, True)


def test_imaging_ordered_is_not_done(findings_of):
    f = findings_of("DESCRIPTION: Closed reduction with an Allis maneuver.\nPLAN: Post-reduction CT ordered.\n")
    assert f.imaging_post is False


@pytest.mark.parametrize(
    "text, wall, head",
    [
        ("Posterior wall fracture and a Pipkin II femoral head fracture.\n", True, True),
        ("Pipkin IV fracture-dislocation.\n", True, True),
        ("Posterior wall fracture. No femoral head fracture.\n", True, False),
        ("CT showed no acetabular wall or femoral head fracture.\n", False, False),
    ],
)
def test_fractures(findings_of, text, wall, head):
    f = findings_of(text)
    assert (f.acetabular_wall_fracture, f.femoral_head_fracture) == (wall, head)


def test_shortening_and_tenotomy(findings_of):
    f = findings_of("A femoral shortening osteotomy of 2 cm was performed, and an adductor tenotomy.\n")
    assert f.femoral_shortening and f.tenotomy
    f = findings_of("Femoral shortening was not required. No tenotomy was performed.\n")
    assert not f.femoral_shortening and not f.tenotomy


@pytest.mark.parametrize(
    "text, expected",
    [
        ("DIAGNOSIS: Left hip dislocation.\n", "left"),
        ("DIAGNOSIS: Dislocation of the right total hip arthroplasty.\nThe right hip was reduced.\n", "right"),
        ("DIAGNOSIS: Bilateral hip dislocations (DDH).\n", "bilateral"),
        ("DIAGNOSIS: Hip dislocation.\nICD-10: T84.021A\n", "left"),
        ("DIAGNOSIS: Hip dislocation.\n", "unknown"),
    ],
)
def test_laterality(findings_of, text, expected):
    assert findings_of(text).laterality == expected


def test_codes_written_in_note(findings_of):
    f = findings_of("DIAGNOSIS: Left hip dislocation.\nCPT: 27252-LT, 76000   ICD-10: S73.015A, s32.422a\n")
    assert f.cpt_codes == ["27252", "76000"]
    assert f.icd10_codes == ["S73.015A", "S32.422A"]


def test_evidence_offsets_index_the_note(checker):
    text = "\ufeffPREOP DIAGNOSIS: Left hip dislocation after a fall.\r\nANESTHESIA: General.\r\n" \
           "PROCEDURE: Closed reduction.\r\nNo femoral head fracture.\r\n"
    text = text.lstrip("\ufeff")
    result = checker.check_text(text)
    assert result.evidence
    for e in result.evidence:
        assert text[e.start:e.end] == e.text
    negated = [e for e in result.evidence if e.field == "femoral_head_fracture"]
    assert negated and negated[0].is_negated and not negated[0].counted
    assert {e.section for e in result.evidence} >= {"preoperative_diagnosis", "anesthesia", "procedure"}


def test_findings_component_on_doc(checker):
    doc = checker.nlp("DIAGNOSIS: Left DDH.\nPROCEDURE: Closed reduction under general anesthesia, spica cast.\n")
    assert doc._.findings.etiology == "developmental"
    assert doc._.findings.technique == ["splint"]
    assert all(e.text == doc.text[e.start:e.end] for e in doc._.evidence)


@pytest.mark.parametrize("verb", ["showed", "revealed", "demonstrated", "confirmed"])
def test_imaging_verb_does_not_hide_negation(findings_of, verb):
    f = findings_of(f"DIAGNOSIS: Left hip dislocation.\nCT {verb} no posterior wall fracture and no femoral head "
                    "fracture.\n")
    assert not f.acetabular_wall_fracture and not f.femoral_head_fracture


def test_earlier_episode_anesthesia_does_not_count(findings_of):
    f = findings_of("DIAGNOSIS: Recurrent left hip dislocation after a fall.\nHISTORY: Two weeks ago she underwent "
                    "closed reduction under general anesthesia.\nANESTHESIA: Procedural sedation with propofol.\n")
    assert f.anesthesia == "moderate_sedation"


def test_bilateral_devices_do_not_make_the_case_bilateral(findings_of):
    f = findings_of("PROCEDURE: Closed reduction of left hip dislocation. Bilateral lower extremity sequential "
                    "compression devices were placed.\n")
    assert f.laterality == "left"


@pytest.mark.parametrize("sentence", ["A CT after reduction is planned.", "Fluoroscopy was not available.",
                                      "Post-reduction films are pending."])
def test_planned_or_unavailable_imaging_is_not_done(findings_of, sentence):
    f = findings_of(f"DIAGNOSIS: Left hip dislocation.\nPROCEDURE: Closed reduction with an Allis maneuver. {sentence}\n")
    assert f.imaging_post is False


@pytest.mark.parametrize("line, claimed", [
    ("PLAN: Open reduction of the hip next week (likely 27258).", None),
    ("OR posting: closed reduction under GA, possible open - CPT 27252 (as posted)", "27252"),
    ("CHARGES: 27250-LT", "27250"),
])
def test_claimed_code_comes_from_billing_lines_not_plans(checker, line, claimed):
    result = checker.check("DIAGNOSIS: Left traumatic hip dislocation after a fall.\nPROCEDURE: Closed reduction with "
                           f"an Allis maneuver under procedural sedation.\n{line}\n")
    assert result.claimed_code == claimed


def test_reduction_attempts_become_events_and_the_successful_one_decides(checker):
    result = checker.check_text(
        "DIAGNOSIS: Left posterior hip dislocation after a motorcycle crash.\n"
        "ED course: closed reduction was attempted twice under procedural sedation with propofol; both attempts "
        "were unsuccessful.\n\n"
        "OPERATIVE NOTE: Under general endotracheal anesthesia given by the anesthesiologist, closed reduction with "
        "a Bigelow maneuver; the hip reduced with a clunk and was concentric on fluoroscopy.\n")
    events = result.findings.events
    assert [e.outcome for e in events] == ["failed", "succeeded"]
    assert [e.anesthesia for e in events] == ["moderate_sedation", "general"]
    assert [e.deciding for e in events] == [False, True]
    assert result.findings.anesthesia == "general" and result.supported_code == "27252"


def test_anesthesia_named_only_with_a_failed_attempt_does_not_decide(checker):
    result = checker.check_text(
        "DIAGNOSIS: Dislocated right total hip arthroplasty.\n"
        "Day 1: closed reduction under general anaesthesia in theatre was unsuccessful; the patient was returned "
        "to the ward.\n\n"
        "Day 2: closed reduction under procedural sedation with propofol by the ED physician; the hip relocated "
        "with a clunk, concentric on X-ray.\n")
    assert [e.outcome for e in result.findings.events] == ["failed", "succeeded"]
    assert result.findings.anesthesia == "moderate_sedation"
    assert any(r.field == "anesthesia" and "finally reduced" in r.reason for r in result.resolutions)
