"""Third-round oncology pack profiles (corpus/safety/oncology_targeted3.yaml) end to end.

Each case builds an approval record's own patient (the helper of the round-two tests), checks the record is
offered, adds one sentence of patient text read by the real patient reader and asserts that the safety pass warns
on (or withdraws) the record's drug: DPD deficiency on both fluoropyrimidines, warfarin on capecitabine and
erlotinib, CrCl below 45 on pemetrexed, Child-Pugh C on lenvatinib and letrozole, long QT on sunitinib, a low
neutrophil count on paclitaxel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus_general.test_safety_profiles_oncology2 import (
    _about,
    _hits,
    _pack_offer,
    _record_patient,
    check_warned,
    profiles_of_file,
)

PROFILES = Path(__file__).resolve().parents[2] / "corpus" / "safety" / "oncology_targeted3.yaml"

pytestmark = pytest.mark.skipif(not PROFILES.exists(), reason="third-round oncology profiles missing")

DPD = "Known DPD deficiency (homozygous DPYD variant)."
WARFARIN = "He takes warfarin for a mechanical valve."
CHILD_PUGH_C = "Cirrhosis, Child-Pugh C."

WARNED = [
    ("ONC-GASTRIC-HER2-TRASTUZUMAB-CISPLATIN-FLUOROURACIL-MET-1L", DPD, "fluorouracil", "SAFE-FLUOROURACIL.dpd-deficiency"),
    ("ONC-GASTRIC-HER2-TRASTUZUMAB-CISPLATIN-CAPECITABINE-MET-1L", DPD, "capecitabine", "SAFE-CAPECITABINE.dpd-deficiency"),
    ("ONC-BREAST-HER2-NERATINIB-CAPECITABINE-MET-LATER", WARFARIN, "capecitabine", "SAFE-CAPECITABINE.vitamin-k-antagonist"),
    ("ONC-NSCLC-EGFR-ERLOTINIB-MET-ANY", WARFARIN, "erlotinib", "SAFE-ERLOTINIB.coumarin-anticoagulant"),
    ("ONC-NSCLC-EGFRNEG-PEMBROLIZUMAB-PEMETREXED-PLATINUM-MET-1L", "Creatinine clearance 40 mL/min.", "pemetrexed",
     "SAFE-PEMETREXED.crcl-below-45"),
    ("ONC-ENDOMETRIAL-PMMR-LENVATINIB-PEMBROLIZUMAB-ADV-LATER", CHILD_PUGH_C, "lenvatinib",
     "SAFE-LENVATINIB.severe-hepatic-impairment"),
    ("ONC-BREAST-HR-LETROZOLE-MET", CHILD_PUGH_C, "letrozole", "SAFE-LETROZOLE.severe-hepatic-impairment"),
    ("ONC-GIST-SUNITINIB-ADV-2L", "Known long QT syndrome.", "sunitinib", "SAFE-SUNITINIB.long-qt-or-qt-drugs"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record_id", "facts", "drug", "check"), WARNED, ids=[f"{c[2]}:{c[3].split('.')[1]}" for c in WARNED]
)
def test_pack_offer_is_warned_for_the_label_fact(knowledge, engine, record_id, facts, drug, check) -> None:
    check_warned(knowledge, engine, record_id, facts, drug, check)


def test_stated_absence_of_dpd_deficiency_leaves_fluorouracil_unwarned(knowledge, engine) -> None:
    record_id = "ONC-GASTRIC-HER2-TRASTUZUMAB-CISPLATIN-FLUOROURACIL-MET-1L"
    out = engine.evaluate(
        _record_patient(knowledge, record_id, "DPYD testing was normal; no DPD deficiency.")
    )
    assert _pack_offer(out, record_id)
    assert not _hits(out, "fluorouracil", "SAFE-FLUOROURACIL.dpd-deficiency", "warn"), _about(
        out, "fluorouracil"
    )


def test_low_neutrophils_withdraw_paclitaxel(knowledge, engine) -> None:
    record_id = "ONC-BREAST-HER2-TRASTUZUMAB-PACLITAXEL-MET-1L"
    assert _pack_offer(engine.evaluate(_record_patient(knowledge, record_id)), record_id)
    after = engine.evaluate(_record_patient(knowledge, record_id, "ANC 1.1 x10^9/L."))
    assert not _pack_offer(after, record_id), _about(after, "paclitaxel")
    assert any(
        f.kind == "exclude" and f.rule_id.endswith("SAFE-PACLITAXEL.low-baseline-neutrophils") for f in after
    ), _about(after, "paclitaxel")


def test_round_three_profiles_load_and_name_pack_drugs(knowledge) -> None:
    profiles, pack_drugs, earlier = profiles_of_file(knowledge, PROFILES)
    for profile in profiles:
        pid = profile.id
        assert set(profile.applies_to) <= pack_drugs, (pid, profile.applies_to)
        assert not set(profile.applies_to) & earlier, f"{pid} duplicates an earlier profile"
        assert profile.verified_from, pid
