"""Label digests: every prostate drug has the five blocks other rules cite, and key label facts are present."""

from __future__ import annotations

import re

import pytest

from assistant.knowledge import Knowledge

PROSTATE_DRUGS = [
    "abiraterone", "enzalutamide", "apalutamide", "darolutamide", "docetaxel", "cabazitaxel", "olaparib",
    "rucaparib", "talazoparib", "niraparib+abiraterone", "lu177_psma617", "radium223", "sipuleucel_t",
    "pembrolizumab", "denosumab", "zoledronic_acid", "relugolix", "degarelix", "leuprolide",
]  # fmt: skip
GENERAL_DRUGS = [
    "apixaban", "rivaroxaban", "dabigatran", "edoxaban", "warfarin", "metformin", "empagliflozin",
    "dapagliflozin", "nitrofurantoin",
]  # fmt: skip
SUFFIXES = ["IND", "DOSE", "CI", "WARN", "DDI"]


def block_id(drug: str, suffix: str) -> str:
    return "LBL-" + re.sub(r"[_+]", "-", drug.upper()) + "-" + suffix


@pytest.mark.parametrize("drug", PROSTATE_DRUGS + GENERAL_DRUGS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_required_label_block_exists(knowledge: Knowledge, drug: str, suffix: str) -> None:
    ref = block_id(drug, suffix)
    assert knowledge.resolve(ref) is not None, f"missing recommendation block {ref}"


@pytest.mark.parametrize(
    ("ref", "must_contain"),
    [
        # olaparib monotherapy gene list includes CHEK2 and ATM and needs a prior ARPI
        ("LBL-OLAPARIB-IND-PCA", ["CHEK2", "ATM", "RAD54L", "enzalutamide or abiraterone"]),
        ("LBL-OLAPARIB-IND-PCA-ABI", ["BRCA"]),
        ("LBL-TALAZOPARIB-IND", ["ATR", "FANCA", "MLH1", "MRE11A", "NBN", "2025"]),
        ("LBL-RUCAPARIB-IND", ["December 2025", "androgen receptor-directed", "taxane"]),
        ("LBL-NIRAPARIB-ABIRATERONE-IND", ["BRCA2", "castration-sensitive", "11 August 2023"]),
        ("LBL-LU177-PSMA617-IND", ["28 March 2025", "delay taxane", "PSMA PET"]),
        ("LBL-LU177-PSMA617-DOSE", ["7.4 GBq", "6 weeks", "6 doses"]),
        ("LBL-RADIUM223-IND", ["symptomatic bone metastases", "no known visceral"]),
        ("LBL-RADIUM223-WARN", ["abiraterone", "prednisone"]),
        ("LBL-CABAZITAXEL-DOSE", ["20 mg/m²", "25 mg/m²", "G-CSF"]),
        ("LBL-CABAZITAXEL-WARN", ["Boxed warning", "neutropenia"]),
        ("LBL-ZOLEDRONIC-ACID-DOSE", ["3.5 mg", "3.3 mg", "3.0 mg", "Below 30 mL/min", "35"]),
        ("LBL-DENOSUMAB-WARN", ["boxed warning", "eGFR < 30", "CKD-MBD"]),
        ("LBL-APIXABAN-DOSE", ["age ≥ 80", "≤ 60 kg", "1.5 mg/dL"]),
        ("LBL-EDOXABAN-IND", ["95 mL/min"]),
        ("LBL-DABIGATRAN-CI", ["mechanical prosthetic heart valve"]),
        ("LBL-METFORMIN-DOSE", ["30–45", "below 30"]),
    ],
)
def test_key_label_facts(knowledge: Knowledge, ref: str, must_contain: list[str]) -> None:
    text = " ".join(knowledge.text_for(ref).split())  # digests wrap lines; compare on single spaces
    for phrase in must_contain:
        assert phrase.lower() in text.lower(), f"{ref} should mention {phrase!r}"


def test_label_digests_name_their_drug_in_the_lexicon(knowledge: Knowledge) -> None:
    for drug in PROSTATE_DRUGS + GENERAL_DRUGS:
        assert drug in knowledge.lexicon.entries, f"{drug} is not a lexicon id"
