"""Second-round oncology pack profiles (corpus/safety/oncology_targeted2.yaml) end to end.

Each case takes an approval record of the pack, builds that record's own patient (tumour, markers, setting, prior
therapy), checks the record is offered, then adds one sentence of patient text read by the real patient reader
(Child-Pugh C, CrCl below 30, long QT, warfarin/apixaban, heart failure, a CYP3A inducer) and asserts that the safety
pass warns on, or withdraws, the record's drug. Siblings of the same class are exercised with the same sentence.
One case reads the whole patient from text (HER2-positive breast cancer with heart failure).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Finding, PatientContext
from assistant.testing.oncology_patients import record_patient

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
PROFILES = CORPUS / "safety" / "oncology_targeted2.yaml"

pytestmark = pytest.mark.skipif(not PROFILES.exists(), reason="second-round oncology profiles missing")

OFFERS = ("recommend", "consider")


def _record_patient(knowledge: Knowledge, record_id: str, facts: str = "") -> PatientContext:
    return record_patient(knowledge, record_id, facts)


def _pack_offer(findings: list[Finding], record_id: str) -> bool:
    return any(f.rule_id == record_id and f.kind in OFFERS for f in findings)


def _hits(findings: list[Finding], drug: str, check: str, kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind and f.therapy == drug and check in f.rule_id]


def _about(findings: list[Finding], drug: str) -> list[tuple[str, str]]:
    return [(f.kind, f.rule_id) for f in findings if f.therapy == drug or drug in f.rule_id.lower()]


CHILD_PUGH_C = "Cirrhosis, Child-Pugh C."
CRCL_25 = "Creatinine clearance 25 mL/min."
LONG_QT = "Known long QT syndrome."
WARFARIN = "He takes warfarin for a mechanical valve."
APIXABAN = "She is on apixaban for atrial fibrillation."
HEART_FAILURE = "Heart failure with reduced ejection fraction."

WARNED = [
    # Child-Pugh C: the same fact across HER2 TKIs, ALK inhibitors, BCR-ABL, mTOR and BTK inhibitors
    ("ONC-BREAST-HER2-TUCATINIB-TRASTUZUMAB-CAPECITABINE-MET-LATER", CHILD_PUGH_C, "tucatinib",
     "SAFE-TUCATINIB.severe-hepatic-impairment"),
    ("ONC-BREAST-HER2-NERATINIB-CAPECITABINE-MET-LATER", CHILD_PUGH_C, "neratinib", "SAFE-NERATINIB.severe-hepatic-impairment"),
    ("ONC-NSCLC-ALK-ALECTINIB-MET-ANY", CHILD_PUGH_C, "alectinib", "SAFE-ALECTINIB.severe-hepatic-impairment"),
    ("ONC-NSCLC-ALK-BRIGATINIB-MET-ANY", CHILD_PUGH_C, "brigatinib", "SAFE-BRIGATINIB.severe-hepatic-impairment"),
    ("ONC-CML-BCRABL1-BOSUTINIB-CP-1L", CHILD_PUGH_C, "bosutinib", "SAFE-BOSUTINIB.hepatic-impairment"),
    ("ONC-BREAST-HR-EVEROLIMUS-EXEMESTANE-MET-LATER", CHILD_PUGH_C, "everolimus", "SAFE-EVEROLIMUS.hepatic-impairment"),
    ("ONC-CLL-NONE-ZANUBRUTINIB", CHILD_PUGH_C, "zanubrutinib", "SAFE-ZANUBRUTINIB.severe-hepatic-impairment"),
    ("ONC-CLL-NONE-ACALABRUTINIB", CHILD_PUGH_C, "acalabrutinib", "SAFE-ACALABRUTINIB.severe-hepatic-impairment"),
    # CrCl below 30 mL/min
    ("ONC-BREAST-HER2-TUCATINIB-TRASTUZUMAB-CAPECITABINE-MET-LATER", CRCL_25, "tucatinib", "SAFE-TUCATINIB.severe-renal-impairment"),
    ("ONC-NSCLC-ALK-BRIGATINIB-MET-ANY", CRCL_25, "brigatinib", "SAFE-BRIGATINIB.severe-renal-impairment"),
    ("ONC-NSCLC-ALK-CRIZOTINIB-MET-ANY", CRCL_25, "crizotinib", "SAFE-CRIZOTINIB.severe-renal-impairment"),
    ("ONC-NSCLC-ALK-ALECTINIB-MET-ANY", CRCL_25, "alectinib", "SAFE-ALECTINIB.severe-renal-impairment"),
    ("ONC-CML-BCRABL1-BOSUTINIB-CP-1L", CRCL_25, "bosutinib", "SAFE-BOSUTINIB.renal-impairment"),
    # long QT: crizotinib (ALK/ROS1) and vemurafenib (BRAF)
    ("ONC-NSCLC-ROS1-CRIZOTINIB-MET", LONG_QT, "crizotinib", "SAFE-CRIZOTINIB.long-qt-or-bradycardia"),
    ("ONC-MELANOMA-BRAFV600E-VEMURAFENIB-MET", LONG_QT, "vemurafenib", "SAFE-VEMURAFENIB.long-qt-or-qt-drugs"),
    # anticoagulated patients on the three BTK inhibitors
    ("ONC-CLL-NONE-IBRUTINIB", WARFARIN, "ibrutinib", "SAFE-IBRUTINIB.anticoagulant-or-antiplatelet"),
    ("ONC-CLL-NONE-ACALABRUTINIB", WARFARIN, "acalabrutinib", "SAFE-ACALABRUTINIB.antithrombotic-agents"),
    ("ONC-CLL-NONE-ZANUBRUTINIB", WARFARIN, "zanubrutinib", "SAFE-ZANUBRUTINIB.anticoagulant-or-antiplatelet"),
    ("ONC-CLL-NONE-IBRUTINIB", APIXABAN, "ibrutinib", "SAFE-IBRUTINIB.anticoagulant-or-antiplatelet"),
    ("ONC-CLL-NONE-IBRUTINIB", APIXABAN, "ibrutinib", "SAFE-IBRUTINIB.atrial-fibrillation-or-cardiac-disease"),
    ("ONC-CLL-NONE-ZANUBRUTINIB", APIXABAN, "zanubrutinib", "SAFE-ZANUBRUTINIB.anticoagulant-or-antiplatelet"),
    # heart failure on the HER2 antibodies: pertuzumab and its partner trastuzumab, and T-DM1
    ("ONC-BREAST-HER2-PERTUZUMAB-TRASTUZUMAB-DOCETAXEL-MET-1L", HEART_FAILURE, "pertuzumab", "SAFE-PERTUZUMAB.heart-failure-lvef"),
    ("ONC-BREAST-HER2-PERTUZUMAB-TRASTUZUMAB-DOCETAXEL-MET-1L", HEART_FAILURE, "trastuzumab", "SAFE-TRASTUZUMAB.heart-failure-lvef"),
    ("ONC-BREAST-HER2-TDM1-MET-LATER", HEART_FAILURE, "ado_trastuzumab_emtansine", "SAFE-ADO-TRASTUZUMAB-EMTANSINE.heart-failure-lvef"),
    # ILD on the anti-EGFR antibodies (two members of the class)
    ("ONC-CRC-KRASG12C-SOTORASIB-PANITUMUMAB-MET-LATER", "History of interstitial lung disease.", "panitumumab",
     "SAFE-PANITUMUMAB.interstitial-lung-disease"),
    ("ONC-CRC-KRASG12C-ADAGRASIB-CETUXIMAB-MET-LATER", "History of interstitial lung disease.", "cetuximab",
     "SAFE-CETUXIMAB.interstitial-lung-disease"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record_id", "facts", "drug", "check"), WARNED, ids=[f"{c[2]}:{c[3].split('.')[1]}" for c in WARNED]
)
def test_pack_offer_is_warned_for_the_label_fact(knowledge, engine, record_id, facts, drug, check) -> None:
    check_warned(knowledge, engine, record_id, facts, drug, check)


def check_warned(knowledge, engine, record_id: str, facts: str, drug: str, check: str) -> None:
    """The record is offered to its own patient without the warning, and warned once `facts` are added."""
    before = engine.evaluate(_record_patient(knowledge, record_id))
    assert _pack_offer(before, record_id), f"{record_id} should be offered to its own patient"
    assert not _hits(before, drug, check, "warn"), f"{check} fired without the fact"
    after = engine.evaluate(_record_patient(knowledge, record_id, facts))
    hits = _hits(after, drug, check, "warn")
    assert hits, f"no warning {check!r} on {drug}: {_about(after, drug)}"
    assert hits[0].severity in ("high", "moderate"), hits[0]


def test_strong_cyp3a_inducer_withdraws_lorlatinib(knowledge, engine) -> None:
    record_id = "ONC-NSCLC-ALK-LORLATINIB-MET-ANY"
    assert _pack_offer(engine.evaluate(_record_patient(knowledge, record_id)), record_id)
    after = engine.evaluate(_record_patient(knowledge, record_id, "She takes rifampin for tuberculosis."))
    assert not _pack_offer(after, record_id), _about(after, "lorlatinib")
    assert _hits(after, "lorlatinib", "SAFE-LORLATINIB.strong-cyp3a-inducer", "exclude"), _about(
        after, "lorlatinib"
    )


def test_long_qt_moves_a_kras_g12c_patient_from_adagrasib_to_sotorasib(knowledge, engine) -> None:
    # Adagrasib's QT warning prefers a same-class alternative; sotorasib (no QT warning) is offered for the same
    # patient, so with long QT adagrasib gives way and sotorasib stays.
    ada, soto = "ONC-NSCLC-KRAS-ADAGRASIB-ADV-LATER", "ONC-NSCLC-KRAS-SOTORASIB-ADV-LATER"
    before = engine.evaluate(_record_patient(knowledge, ada))
    assert _pack_offer(before, ada) and _pack_offer(before, soto)
    after = engine.evaluate(_record_patient(knowledge, ada, LONG_QT))
    assert _hits(after, "adagrasib", "SAFE-ADAGRASIB.long-qt", "warn"), _about(after, "adagrasib")
    assert not _pack_offer(after, ada), _about(after, "adagrasib")
    assert _pack_offer(after, soto), _about(after, "sotorasib")


def test_unstated_child_pugh_class_is_asked_for_a_btk_inhibitor(knowledge, engine) -> None:
    record_id = "ONC-CLL-NONE-ZANUBRUTINIB"
    out = engine.evaluate(_record_patient(knowledge, record_id, "He has liver cirrhosis."))
    assert _pack_offer(out, record_id)
    asks = _hits(out, "zanubrutinib", "SAFE-ZANUBRUTINIB.severe-hepatic-impairment", "ask")
    assert asks and "child-pugh" in asks[0].reason.lower(), [
        (f.kind, f.rule_id) for f in out if f.kind == "ask"
    ]


def test_her2_positive_breast_cancer_with_heart_failure_from_text(knowledge, engine) -> None:
    from assistant.patient.context import extract_context

    text = ("62-year-old woman with newly diagnosed metastatic HER2-positive, ER-negative, PR-negative breast cancer, "
            "no prior treatment for metastatic disease.")  # fmt: skip
    record_id = "ONC-BREAST-HER2-PERTUZUMAB-TRASTUZUMAB-DOCETAXEL-MET-1L"
    before = engine.evaluate(extract_context(text, lexicon=knowledge.lexicon))
    assert _pack_offer(before, record_id), [f.rule_id for f in before if f.kind in OFFERS]
    after = engine.evaluate(extract_context(f"{text} {HEART_FAILURE}", lexicon=knowledge.lexicon))
    assert _pack_offer(after, record_id)
    for drug, check in (
        ("pertuzumab", "SAFE-PERTUZUMAB.heart-failure-lvef"),
        ("trastuzumab", "SAFE-TRASTUZUMAB.heart-failure-lvef"),
    ):
        assert _hits(after, drug, check, "warn"), _about(after, drug)


def profiles_of_file(knowledge, path: Path):
    """(the file's profiles as loaded, the pack's regimen drugs, what every other profile applies to); asserts
    that every profile of the file loaded."""
    import yaml

    ids = {p["id"] for p in yaml.safe_load(path.read_text(encoding="utf-8"))["profiles"]}
    loaded = {p.id: p for p in knowledge.safety_profiles}
    assert ids <= set(loaded), ids - set(loaded)
    pack_drugs = {d for a in knowledge.approvals for d in a.regimen}
    earlier = {t for p in knowledge.safety_profiles if p.id not in ids for t in p.applies_to}
    return [loaded[pid] for pid in sorted(ids)], pack_drugs, earlier


def test_round_two_profiles_name_pack_drugs_and_say_what_was_read(knowledge) -> None:
    profiles, pack_drugs, earlier = profiles_of_file(knowledge, PROFILES)
    for profile in profiles:
        pid = profile.id
        assert set(profile.applies_to) <= pack_drugs, (pid, profile.applies_to)
        assert not set(profile.applies_to) & earlier - {"antineoplastic"}, (
            pid,
            "duplicates an earlier profile",
        )
        assert profile.verified_from and (profile.contraindicated or profile.caution), pid
