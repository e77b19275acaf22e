"""Oncology safety profiles (corpus/safety/oncology.yaml) through the real rule engine and safety pass.

Each scenario first shows the drug is offered for a patient, then adds one label fact and asserts the safety
pass turns the offer into an exclusion (contraindication) or adds a warning (caution). The corpus is copied
without the general-medicine rules and profiles so another specialty's work in progress cannot hide a failure.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.knowledge import Knowledge, load_knowledge
from assistant.models import Finding, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine
from assistant.testing.oncology_patients import record_patient

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
ONCOLOGY_PROFILES = CORPUS / "safety" / "oncology.yaml"

pytestmark = pytest.mark.skipif(not ONCOLOGY_PROFILES.exists(), reason="oncology safety profiles missing")

OFFERS = ("recommend", "consider")


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory) -> Knowledge:
    dest = tmp_path_factory.mktemp("oncology-safety-corpus")
    shutil.copytree(CORPUS / "lexicon", dest / "lexicon")
    shutil.copytree(CORPUS / "labels", dest / "labels")
    shutil.copytree(CORPUS / "guidelines" / "prostate", dest / "guidelines" / "prostate")
    (dest / "rules").mkdir()
    for rule_file in (CORPUS / "rules").glob("prostate*.yaml"):
        shutil.copy(rule_file, dest / "rules" / rule_file.name)
    (dest / "safety").mkdir()
    shutil.copy(ONCOLOGY_PROFILES, dest / "safety" / ONCOLOGY_PROFILES.name)
    return load_knowledge(dest)


@pytest.fixture(scope="module")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


def _ctx(state: str, therapies=(), labs=None, **kw) -> PatientContext:
    return PatientContext(
        diagnoses=["prostate_cancer"],
        disease_state=state,
        therapies=[TherapyExposure(therapy=t, status=s) for t, s in therapies],
        labs={n: (v if isinstance(v, LabValue) else LabValue(name=n, value=v)) for n, v in (labs or {}).items()},
        sex="male",
        **kw,
    )


def _uln(name: str, multiple: float) -> LabValue:
    return LabValue(name=name, uln_multiple=multiple)


def _offered(findings: list[Finding], drug: str) -> bool:
    return any(f.kind in OFFERS and f.therapy == drug for f in findings)


def _safety(findings: list[Finding], drug: str, kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind and f.rule_id.startswith("SAFETY:") and f.therapy == drug]


def _assert_excluded(engine: RuleEngine, base: PatientContext, changed: PatientContext, drug: str, check: str) -> None:
    before = engine.evaluate(base)
    assert _offered(before, drug), f"{drug} should be offered before the contraindicating fact is added"
    after = engine.evaluate(changed)
    assert not _offered(after, drug), f"{drug} still offered: {[f.rule_id for f in after if f.therapy == drug]}"
    hits = _safety(after, drug, "exclude")
    assert any(check in f.rule_id for f in hits), f"no SAFETY exclusion {check!r} for {drug}: {[f.rule_id for f in hits]}"


def test_oncology_profiles_load_and_cover_prostate_drugs(knowledge: Knowledge) -> None:
    ids = {p.id for p in knowledge.safety_profiles}
    for pid in ("SAFE-DOCETAXEL", "SAFE-CABAZITAXEL", "SAFE-ABIRATERONE", "SAFE-ENZALUTAMIDE", "SAFE-RADIUM223",
                "SAFE-DENOSUMAB", "SAFE-ZOLEDRONIC-ACID", "SAFE-ADT", "SAFE-CAPIVASERTIB", "SAFE-LU177-PSMA617"):  # fmt: skip
        assert pid in ids, pid
    covered = {t for p in knowledge.safety_profiles for t in p.applies_to}
    for drug in ("olaparib", "talazoparib", "rucaparib", "niraparib", "carboplatin", "cisplatin", "mitoxantrone",
                 "sipuleucel_t", "pembrolizumab", "bicalutamide", "apalutamide", "darolutamide"):  # fmt: skip
        assert drug in covered, drug


def test_lexicon_separates_lutathera_and_marks_arpi_inducers(knowledge: Knowledge) -> None:
    lex = knowledge.lexicon
    psma_names = {n.lower() for n in lex.entries["lu177_psma617"].names}
    assert "lu-177" not in psma_names and "lutetium-177" not in psma_names
    assert "lutathera" in {n.lower() for n in lex.entries["lu177_dotatate"].names}
    assert "PSMA_radioligand" not in lex.classes_of("lu177_dotatate")
    for arpi in ("enzalutamide", "apalutamide"):
        assert "strong_CYP3A4_inducer" in lex.classes_of(arpi), arpi


def test_docetaxel_excluded_when_bilirubin_above_uln(engine: RuleEngine) -> None:
    normal = {"anc": 3.0, "bilirubin": _uln("bilirubin", 0.8), "ast": _uln("ast", 0.9), "alt": _uln("alt", 0.9),
              "alp": _uln("alp", 1.0)}  # fmt: skip
    base = _ctx("mCRPC", [("abiraterone", "progressed")], normal, ecog=1)
    changed = _ctx("mCRPC", [("abiraterone", "progressed")], {**normal, "bilirubin": _uln("bilirubin", 2.4)}, ecog=1)
    _assert_excluded(engine, base, changed, "docetaxel", "SAFE-DOCETAXEL.hepatic-impairment")


def test_docetaxel_excluded_for_transaminases_with_alkaline_phosphatase(engine: RuleEngine) -> None:
    normal = {"anc": 3.0, "bilirubin": _uln("bilirubin", 0.8), "ast": _uln("ast", 0.9), "alt": _uln("alt", 0.9),
              "alp": _uln("alp", 1.0)}  # fmt: skip
    base = _ctx("mCRPC", [("abiraterone", "progressed")], normal, ecog=1)
    raised = {**normal, "ast": _uln("ast", 1.8), "alp": _uln("alp", 2.8)}
    changed = _ctx("mCRPC", [("abiraterone", "progressed")], raised, ecog=1)
    _assert_excluded(engine, base, changed, "docetaxel", "SAFE-DOCETAXEL.hepatic-impairment")


def test_docetaxel_asks_for_liver_tests_when_unknown(engine: RuleEngine) -> None:
    out = engine.evaluate(_ctx("mCRPC", [("abiraterone", "progressed")], {"anc": 3.0}, ecog=1))
    assert _offered(out, "docetaxel")
    assert any(f.kind == "ask" and "bilirubin" in f.reason.lower() for f in out if f.rule_id.startswith("SAFETY:")), [
        (f.rule_id, f.reason) for f in out if f.kind == "ask"
    ]


def test_cabazitaxel_excluded_above_three_times_uln_bilirubin(engine: RuleEngine) -> None:
    prior = [("docetaxel", "progressed"), ("abiraterone", "progressed")]
    normal = {"anc": 3.0, "bilirubin": _uln("bilirubin", 0.8), "ast": _uln("ast", 0.9)}
    base = _ctx("mCRPC", prior, normal, ecog=1)
    changed = _ctx("mCRPC", prior, {**normal, "bilirubin": _uln("bilirubin", 3.5)}, ecog=1)
    _assert_excluded(engine, base, changed, "cabazitaxel", "SAFE-CABAZITAXEL.severe-hepatic-impairment")


def test_enzalutamide_seizure_history_is_a_warning_that_gives_way_to_darolutamide(engine: RuleEngine) -> None:
    # The label warns (it does not contraindicate); the profile marks the warning prefer_alternative, so with
    # darolutamide (no seizure warning) offered for the same nmCRPC question, enzalutamide steps aside.
    base = _ctx("nmCRPC", labs={"psadt_months": 6})
    assert _offered(engine.evaluate(base), "enzalutamide")
    out = engine.evaluate(_ctx("nmCRPC", labs={"psadt_months": 6}, comorbidities={"seizure_disorder": "present"}))
    assert any("SAFE-ENZALUTAMIDE.seizure-risk" in f.rule_id for f in _safety(out, "enzalutamide", "warn"))
    assert _offered(out, "darolutamide")
    assert not _offered(out, "enzalutamide")


def test_denosumab_excluded_with_uncorrected_hypocalcaemia(engine: RuleEngine) -> None:
    prior = [("abiraterone", "progressed")]
    base = _ctx("mCRPC", prior, {"anc": 3.0}, ecog=1, sites={"bone": "present"})
    changed = _ctx("mCRPC", prior, {"anc": 3.0}, ecog=1, sites={"bone": "present"},
                   comorbidities={"hypocalcemia": "present"})  # fmt: skip
    _assert_excluded(engine, base, changed, "denosumab", "SAFE-DENOSUMAB.hypocalcemia")


# ------------------------------------------------------------------ oncology pack drugs (safety/oncology_targeted.yaml)
# The pack's own patient for an approval record (its tumour, markers, setting and prior therapy), plus the clinical
# facts the patient reader takes from one sentence of patient text: the pass must warn on (or withdraw) the offer.
# The tumour part is built from the record because the marker reader is not what these tests are about.
TARGETED_PROFILES = CORPUS / "safety" / "oncology_targeted.yaml"


@pytest.fixture(scope="module")
def full_knowledge() -> Knowledge:
    return load_knowledge(CORPUS)


@pytest.fixture(scope="module")
def full_engine(full_knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(full_knowledge)


def _record_patient(knowledge: Knowledge, record_id: str, facts: str = "") -> PatientContext:
    return record_patient(knowledge, record_id, facts)


def _pack_offer(findings: list[Finding], record_id: str) -> bool:
    return any(f.rule_id == record_id and f.kind in OFFERS for f in findings)


def _warned(findings: list[Finding], drug: str, check: str) -> list[Finding]:
    return [f for f in findings if f.kind == "warn" and f.therapy == drug and check in f.rule_id]


@pytest.mark.skipif(not TARGETED_PROFILES.exists(), reason="targeted oncology profiles missing")
@pytest.mark.parametrize(
    ("record_id", "facts", "drug", "check"),
    [
        # type 1 diabetes on the PI3K/AKT inhibitors: the drug, its PI3K sibling and the AKT inhibitor
        ("ONC-BREAST-PIK3CA-ALPELISIB-FULVESTRANT-MET", "She has type 1 diabetes.", "alpelisib",
         "SAFE-ALPELISIB.type1-or-uncontrolled-diabetes"),
        ("ONC-BREAST-PIK3CA-INAVOLISIB-PALBOCICLIB-FULVESTRANT-MET", "She has type 1 diabetes.", "inavolisib",
         "SAFE-INAVOLISIB.type1-or-treated-type2-diabetes"),
        ("ONC-BREAST-PIK3CA-CAPIVASERTIB-FULVESTRANT-MET", "She has type 1 diabetes.", "capivasertib",
         "SAFE-CAPIVASERTIB.type1-or-insulin-treated-diabetes"),
        # heart failure on ribociclib (a QT risk the label lists)
        ("ONC-BREAST-HR-RIBOCICLIB-AI-MET-1L", "She has heart failure.", "ribociclib", "SAFE-RIBOCICLIB.cardiac-disease"),
        # Child-Pugh C on the CDK4/6 inhibitors (same drug family, three labels)
        ("ONC-BREAST-HR-RIBOCICLIB-AI-MET-1L", "Cirrhosis, Child-Pugh C.", "ribociclib", "SAFE-RIBOCICLIB.hepatic-impairment"),
        ("ONC-BREAST-PIK3CA-INAVOLISIB-PALBOCICLIB-FULVESTRANT-MET", "Cirrhosis, Child-Pugh C.", "palbociclib",
         "SAFE-PALBOCICLIB.severe-hepatic-impairment"),
        # a transplant recipient offered two different checkpoint inhibitors (class profile reaches both)
        ("ONC-MELANOMA-ANY-NIVOLUMAB-MET", "Kidney transplant recipient on tacrolimus.", "nivolumab",
         "SAFE-CHECKPOINT-INHIBITOR-CLASS.solid-organ-transplant"),
        ("ONC-MELANOMA-ANY-NIVOLUMAB-IPILIMUMAB-MET", "Kidney transplant recipient on tacrolimus.", "ipilimumab",
         "SAFE-CHECKPOINT-INHIBITOR-CLASS.solid-organ-transplant"),
    ],
)  # fmt: skip
def test_pack_offer_is_warned_for_the_label_fact(full_knowledge, full_engine, record_id, facts, drug, check) -> None:
    before = full_engine.evaluate(_record_patient(full_knowledge, record_id))
    assert _pack_offer(before, record_id), f"{record_id} should be offered to its own patient"
    assert not _warned(before, drug, check), f"{check} fired without the fact"
    after = full_engine.evaluate(_record_patient(full_knowledge, record_id, facts))
    hits = _warned(after, drug, check)
    assert hits, f"no warning {check!r} on {drug}: {[(f.kind, f.rule_id) for f in after if f.therapy == drug]}"
    assert hits[0].severity in ("high", "moderate"), hits[0]


def test_long_qt_withdraws_ribociclib_but_not_the_aromatase_inhibitor_alone(full_knowledge, full_engine) -> None:
    record_id = "ONC-BREAST-HR-RIBOCICLIB-AI-MET-1L"
    before = full_engine.evaluate(_record_patient(full_knowledge, record_id))
    assert _pack_offer(before, record_id)
    after = full_engine.evaluate(_record_patient(full_knowledge, record_id, "Known long QT syndrome."))
    assert not _pack_offer(after, record_id), [(f.kind, f.rule_id) for f in after if f.rule_id == record_id]
    assert any(
        f.kind == "exclude" and "SAFE-RIBOCICLIB.long-qt-or-low-potassium" in f.rule_id for f in after
    ), [(f.kind, f.rule_id) for f in after if "ribociclib" in (f.therapy or "")]


def test_cirrhosis_without_a_child_pugh_class_asks_for_it(full_knowledge, full_engine) -> None:
    record_id = "ONC-BREAST-HR-RIBOCICLIB-AI-MET-1L"
    out = full_engine.evaluate(_record_patient(full_knowledge, record_id, "She has liver cirrhosis."))
    assert _pack_offer(out, record_id)
    asks = [f for f in out if f.kind == "ask" and "SAFE-RIBOCICLIB.hepatic-impairment" in f.rule_id]
    assert asks and "child-pugh" in asks[0].reason.lower(), [(f.kind, f.rule_id) for f in out if f.kind == "ask"]


def test_every_targeted_profile_names_pack_drugs(full_knowledge) -> None:
    # A profile for a drug id the pack does not use would never fire: every applies_to entry must be a lexicon id or class.
    profiles = [p for p in full_knowledge.safety_profiles if p.id.startswith("SAFE-") and p.applies_to]
    targeted = {p.id for p in profiles} & {
        "SAFE-CHECKPOINT-INHIBITOR-CLASS", "SAFE-TRASTUZUMAB", "SAFE-RIBOCICLIB", "SAFE-ALPELISIB", "SAFE-OSIMERTINIB",
    }  # fmt: skip
    assert len(targeted) == 5, targeted
    lex = full_knowledge.lexicon
    known = set(lex.entries) | {c for t in lex.entries for c in lex.classes_of(t)}
    for p in profiles:
        if p.id in targeted:
            assert set(p.applies_to) <= known, (p.id, p.applies_to)


def test_a_drug_and_its_class_holding_the_same_check_warn_once_from_the_drug_label() -> None:
    """Pembrolizumab's own profile and the checkpoint-inhibitor class profile both hold 'solid-organ-transplant':
    the drug's label speaks once; nivolumab (class only) still gets the class warning."""
    from assistant.patient import extract_context

    engine = RuleEngine(load_knowledge(CORPUS))
    ctx = extract_context("He had a kidney transplant 6 years ago and takes tacrolimus.", lexicon=engine.lexicon)
    view = engine.view(ctx)
    pembro = [v for v in engine.safety.assess("pembrolizumab", view) if v.check and v.check.id == "solid-organ-transplant"]
    assert len(pembro) == 1 and "pembrolizumab" in pembro[0].profile.applies_to
    nivo = [v for v in engine.safety.assess("nivolumab", view) if v.check and v.check.id == "solid-organ-transplant"]
    assert len(nivo) == 1 and nivo[0].profile.id == "SAFE-CHECKPOINT-INHIBITOR-CLASS"


def test_one_class_warning_over_several_offered_drugs_is_one_pitfall_line(full_knowledge, full_engine) -> None:
    """End to end from the real safety pass to the composed answer (so the composer's merge keeps working with the
    wording the safety pass actually writes): a transplant recipient offered several checkpoint inhibitors."""
    from assistant.answer.compose import compose_answer
    from assistant.answer.format import SECTIONS
    from assistant.models import TumourContext, TumourMarker
    from assistant.patient import extract_context
    from assistant.plan import build_plan

    read = extract_context("He had a kidney transplant 6 years ago and takes tacrolimus.", lexicon=full_knowledge.lexicon)
    ctx = read.model_copy(update={"focus": ["oncology"], "tumour": TumourContext(
        tumour="nsclc", settings=["metastatic"], line="first",
        markers=[TumourMarker(marker="PDL1", score={"tps": 80.0}), TumourMarker(marker="EGFR", status="negative"),
                 TumourMarker(marker="ALK", status="negative")])})  # fmt: skip
    findings = full_engine.evaluate(ctx)
    class_warned = {f.therapy for f in findings if f.kind == "warn" and "CHECKPOINT-INHIBITOR-CLASS.solid-organ" in f.rule_id}
    assert len(class_warned) >= 2, class_warned
    body = compose_answer("What first-line immunotherapy?", build_plan(findings, ctx, full_knowledge.lexicon), []).body
    pitfalls = body.split(f"## {SECTIONS[3]}")[1].split("\n## ")[0]
    merged = [line for line in pitfalls.splitlines() if "Graft rejection" in line]
    assert len(merged) == 1 and " need caution: " in merged[0], pitfalls
