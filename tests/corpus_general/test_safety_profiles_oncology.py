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
