"""The safety pass on a fixture corpus: label profiles turn offers into exclusions, warnings and questions.

Engine behaviour only (content-independent): a copy of the fixture corpus gets a small safety file written
by each test module, so every outcome here is decided by data the test can see.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.errors import CorpusValidationError
from assistant.knowledge import load_knowledge, validate_corpus
from assistant.models import Allergy, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

FIXTURE = Path(__file__).parent / "fixtures" / "corpus"

SAFETY_YAML = """
profiles:
  - id: SAFE-APIXABAN-T
    applies_to: [apixaban]
    label: "Test label for apixaban"
    revised: "2025-01"
    last_reviewed: 2026-12-02
    contraindicated:
      - id: pregnancy
        when: {pregnant: true}
        reason: Not for use in pregnancy in this test label; low-molecular-weight heparin instead.
        section: "8.1 Pregnancy"
        ask: Could the patient be pregnant?
      - id: severe-liver
        when: {child_pugh: [C]}
        reason: Severe hepatic impairment is outside this test label.
        section: "8.7"
    caution:
      - id: inducer
        when: {current: [strong_CYP3A4_inducer]}
        reason: Strong inducers lower exposure; avoid the combination in this test label.
        section: "7.2"
        severity: high
    monitor:
      - Haemoglobin and kidney function at least yearly.
  - id: SAFE-TAXANE-T
    applies_to: [taxane]
    label: "Test label for taxanes"
    last_reviewed: 2026-12-02
    contraindicated:
      - id: bilirubin
        when: {uln: {name: bilirubin, op: ">", value: 1.0}}
        reason: Bilirubin above the upper limit of normal raises toxic deaths in this test label.
        section: "Boxed warning"
  - id: SAFE-REST-T
    applies_to: [olaparib, rucaparib, talazoparib, radium223, lu177_psma617, enzalutamide, adt, prednisone, metformin, abiraterone, warfarin, aspirin]
    label: "Test label for the rest"
    last_reviewed: 2026-12-02
    contraindicated:
      - id: type1
        when: {diabetes_type: [type1]}
        reason: Not for type 1 diabetes in this test label (made-up check).
        section: "1"
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("safety") / "corpus"
    shutil.copytree(FIXTURE, root)
    (root / "safety").mkdir()
    (root / "safety" / "test.yaml").write_text(SAFETY_YAML, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def engine(corpus: Path) -> RuleEngine:
    return RuleEngine(load_knowledge(corpus))


def _af_woman(**kw) -> PatientContext:
    base = dict(diagnoses=["atrial_fibrillation", "hypertension"], age=40, sex="female",
                comorbidities={"hypertension": "present", "diabetes": "present", "stroke_tia": "present"})  # fmt: skip
    base.update(kw)
    return PatientContext(**base)


def _kinds(findings, therapy):
    return [f.kind for f in findings if f.therapy == therapy]


def test_profiles_load_and_render_citable_blocks(corpus: Path) -> None:
    k = load_knowledge(corpus)
    assert [p.id for p in k.safety_profiles] == ["SAFE-APIXABAN-T", "SAFE-TAXANE-T", "SAFE-REST-T"]
    assert k.resolve("SAFE-APIXABAN-T.pregnancy") is not None, "each check is a citable block"
    assert "pregnancy" in k.resolve("SAFE-APIXABAN-T.pregnancy").text.lower()
    assert k.profiles_for("docetaxel") and k.profiles_for("cabazitaxel"), "a class profile covers every member"
    assert k.report.counts["safety_checks"] == 5


def test_contraindication_turns_the_offer_into_an_exclusion(engine: RuleEngine) -> None:
    offered = engine.evaluate(_af_woman(pregnant=False))
    assert "recommend" in _kinds(offered, "apixaban")
    pregnant = engine.evaluate(_af_woman(pregnant=True, gestational_weeks=20))
    assert _kinds(pregnant, "apixaban") == ["exclude"]
    ex = next(f for f in pregnant if f.therapy == "apixaban")
    assert ex.rule_id == "SAFETY:SAFE-APIXABAN-T.pregnancy"
    assert "SAFE-APIXABAN-T.pregnancy" in ex.refs
    assert "pregnancy" in ex.reason.lower()


def test_unknown_pregnancy_in_a_woman_of_childbearing_age_is_asked(engine: RuleEngine) -> None:
    findings = engine.evaluate(_af_woman())
    asks = [f for f in findings if f.kind == "ask" and "pregnant" in f.reason.lower()]
    assert asks, [f.reason for f in findings]
    assert "recommend" in _kinds(findings, "apixaban"), "an open question does not withdraw the offer"
    older = engine.evaluate(_af_woman(age=70))
    assert not [f for f in older if f.kind == "ask" and "pregnant" in f.reason.lower()], "70-year-old: not asked"


def test_caution_adds_a_warning_and_keeps_the_offer(engine: RuleEngine) -> None:
    ctx = _af_woman(pregnant=False, medications=["rifampin"])
    findings = engine.evaluate(ctx)
    assert "recommend" in _kinds(findings, "apixaban")
    warn = [f for f in findings if f.kind == "warn" and f.rule_id == "SAFETY:SAFE-APIXABAN-T.inducer"]
    assert warn and warn[0].severity == "high"


def test_child_pugh_unknown_with_cirrhosis_is_not_true(engine: RuleEngine) -> None:
    ctx = _af_woman(pregnant=False, comorbidities={"cirrhosis": "present", "hypertension": "present",
                                                    "diabetes": "present", "stroke_tia": "present"})  # fmt: skip
    assert "recommend" in _kinds(engine.evaluate(ctx), "apixaban")
    ctx_c = ctx.model_copy(update={"child_pugh": "C"})
    assert _kinds(engine.evaluate(ctx_c), "apixaban") == ["exclude"]


@pytest.mark.parametrize(
    ("allergy", "kind"),
    [
        (Allergy(substance="apixaban", severity="severe", reaction="anaphylaxis"), "exclude"),
        (Allergy(substance="DOAC", classes=["DOAC"], severity="unknown"), "exclude"),
        (Allergy(substance="apixaban", severity="intolerance", reaction="nausea"), "recommend"),
        (Allergy(substance="warfarin", severity="severe"), "recommend"),
    ],
)
def test_allergy_to_the_drug_or_its_class_is_a_contraindication(engine, allergy, kind) -> None:
    ctx = _af_woman(pregnant=False, allergies=[allergy.substance], allergy_details=[allergy])
    assert kind in _kinds(engine.evaluate(ctx), "apixaban")


def test_declined_option_is_shown_as_declined_not_preferred(engine: RuleEngine) -> None:
    ctx = PatientContext(diagnoses=["prostate_cancer"], disease_state="mCRPC", sex="male",
                         therapies=[TherapyExposure(therapy="docetaxel", classes=["taxane", "chemotherapy"],
                                                    status="progressed")],
                         declined=["chemotherapy"])  # fmt: skip
    findings = engine.evaluate(ctx)
    caba = [f for f in findings if f.therapy == "cabazitaxel"]
    assert [f.kind for f in caba] == ["exclude"] and caba[0].severity == "declined"
    assert "declines" in caba[0].reason


def test_hepatic_threshold_in_uln_multiples_and_absolute_units(engine: RuleEngine) -> None:
    base = dict(diagnoses=["prostate_cancer"], disease_state="mCRPC", sex="male",
                therapies=[TherapyExposure(therapy="docetaxel", classes=["taxane"], status="progressed")])  # fmt: skip
    assert "recommend" in _kinds(engine.evaluate(PatientContext(**base)), "cabazitaxel")
    high = PatientContext(**base, labs={"bilirubin": LabValue(name="bilirubin", uln_multiple=2.4)})
    assert _kinds(engine.evaluate(high), "cabazitaxel") == ["exclude"]
    absolute = PatientContext(**base, labs={"bilirubin": LabValue(name="bilirubin", value=2.0, unit="mg/dL")})
    # The fixture corpus has no clinical.yaml: no reference ULN, so an absolute value cannot decide it.
    assert "recommend" in _kinds(engine.evaluate(absolute), "cabazitaxel")


def test_screen_excludes_drugs_named_outside_the_rules(engine: RuleEngine) -> None:
    ctx = _af_woman(pregnant=True)
    out = engine.screen(ctx, ["apixaban", "warfarin", "metformin"], findings=[])
    assert [f.therapy for f in out] == ["apixaban"]
    assert out[0].kind == "exclude" and out[0].severity == "label"


def test_missing_profile_for_an_offered_drug_is_a_validation_error(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURE, root)
    (root / "safety").mkdir()
    (root / "safety" / "x.yaml").write_text(SAFETY_YAML.replace("[olaparib, ", "["), encoding="utf-8")
    report = validate_corpus(root)
    assert any("no safety profile covers 'olaparib'" in str(e) for e in report.errors), report.errors
    with pytest.raises(CorpusValidationError):
        load_knowledge(root)


def test_unknown_atom_value_is_located(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURE, root)
    (root / "safety").mkdir()
    (root / "safety" / "x.yaml").write_text(SAFETY_YAML.replace("child_pugh: [C]", "child_pugh: [D]"), encoding="utf-8")
    report = validate_corpus(root)
    assert any("Child-Pugh" in str(e) and "x.yaml:" in str(e) for e in report.errors), report.errors


def test_review_sheet_states_every_rule_and_check_in_plain_language(corpus: Path, tmp_path: Path) -> None:
    from assistant.knowledge import main

    out = tmp_path / "review.md"
    assert main(["review", "--out", str(out), str(corpus)]) == 0
    sheet = out.read_text(encoding="utf-8")
    k = load_knowledge(corpus)
    for r in k.rules:
        assert f"{r.id}" in sheet, r.id
    assert "**Do not use when** pregnant — Not for use in pregnancy" in sheet
    assert "If unknown, asks: “Could the patient be pregnant?”" in sheet
    assert "**Do not use when** bilirubin above 1 × upper limit of normal" in sheet
    assert "**Caution (high) when** currently takes strong CYP3A4 inducer" in sheet
    assert "- **Applies when:** disease state is mCRPC" in sheet
    assert sheet.count("signed off by") >= len(k.rules) - sum(1 for r in k.rules if r.type == "question")


def test_a_high_label_warning_gives_way_to_a_same_class_sibling(real_knowledge) -> None:
    """Seizure history: enzalutamide/apalutamide carry a high-severity seizure warning, darolutamide does not —
    the siblings give way to it (and the warning stays visible); without darolutamide on offer they stay."""
    from assistant.patient import extract_context

    engine = RuleEngine(real_knowledge)
    q = ("nmCRPC on ADT, PSA doubling time 5 months, CT and bone scan negative. Epilepsy with a seizure "
         "4 months ago. Which androgen-receptor inhibitor?")  # fmt: skip
    findings = engine.evaluate(extract_context(q, lexicon=real_knowledge.lexicon))
    kinds = {f.therapy: f.kind for f in findings if f.therapy in ("darolutamide", "enzalutamide", "apalutamide")
             and f.kind in ("recommend", "consider", "exclude")}  # fmt: skip
    assert kinds == {"darolutamide": "recommend", "enzalutamide": "exclude", "apalutamide": "exclude"}, kinds
    assert any(f.kind == "warn" and f.therapy == "enzalutamide" for f in findings) or any(
        "darolutamide" in f.reason for f in findings if f.therapy == "enzalutamide"
    )
    no_seizure = engine.evaluate(extract_context(q.replace("Epilepsy with a seizure 4 months ago. ", ""),
                                                 lexicon=real_knowledge.lexicon))  # fmt: skip
    assert {f.therapy for f in no_seizure if f.kind == "recommend"} >= {"enzalutamide", "apalutamide", "darolutamide"}


def test_scope_exclusion_is_not_an_answer(corpus: Path, tmp_path: Path) -> None:
    """An exclusion marked scope (a child under an adult guideline) is kept apart from harm-based exclusions."""
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    rules = (root / "rules" / "fixture.yaml").read_text(encoding="utf-8")
    rules = rules.replace(
        "      - id: crcl\n        when: {lab: {name: crcl, op: \"<\", value: 15}}\n        reason: CrCl below 15 mL/min.",
        "      - id: child\n        scope: true\n        when: {age: {op: \"<\", value: 18}}\n        reason: Adult guideline.\n"
        "      - id: crcl\n        when: {lab: {name: crcl, op: \"<\", value: 15}}\n        reason: CrCl below 15 mL/min.",
    )
    (root / "rules" / "fixture.yaml").write_text(rules, encoding="utf-8")
    engine = RuleEngine(load_knowledge(root))
    child = engine.evaluate(_af_woman(age=12, pregnant=False))
    ex = [f for f in child if f.therapy == "apixaban" and f.kind == "exclude"]
    assert ex and ex[0].severity == "scope"
    adult_low_crcl = engine.evaluate(_af_woman(pregnant=False, labs={"crcl": LabValue(name="crcl", value=10)}))
    assert [f.severity for f in adult_low_crcl if f.therapy == "apixaban" and f.kind == "exclude"] == [None]


def test_review_command_as_a_clinician_runs_it(corpus: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "review.md"
    subprocess.run([sys.executable, "-m", "assistant.knowledge", "review", "--out", str(out), str(corpus)], check=True)
    sheet = out.read_text(encoding="utf-8")
    assert "### T-CABA" in sheet and " 0 therapy rules" not in sheet


def test_planned_comedication_interacts_like_a_current_one(engine: RuleEngine) -> None:
    """'Starting rifampin next week' must meet the same interaction check as rifampin already taken."""
    planned = _af_woman(pregnant=False, therapies=[TherapyExposure(therapy="rifampin", status="planned")])
    warn = [f for f in engine.evaluate(planned) if f.rule_id == "SAFETY:SAFE-APIXABAN-T.inducer"]
    assert warn, "a planned strong inducer must trigger the apixaban interaction check"


def test_all_members_of_a_class_excluded_forbids_the_class_word(real_knowledge) -> None:
    from assistant.models import Finding
    from assistant.plan import build_plan

    doacs = ["apixaban", "rivaroxaban", "edoxaban", "dabigatran"]
    findings = [Finding(rule_id=f"X-{d}", kind="exclude", therapy=d, reason="inducer") for d in doacs]
    plan = build_plan(findings, PatientContext(), real_knowledge.lexicon)
    assert "DOACs" in plan.must_not_recommend and "direct oral anticoagulant" in plan.must_not_recommend
    one_left = build_plan(findings[:3], PatientContext(), real_knowledge.lexicon)
    assert "DOACs" not in one_left.must_not_recommend
