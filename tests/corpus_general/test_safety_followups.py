"""Follow-ups to the dev safety set (eval/safety.jsonl): label "avoid / not recommended" checks withdraw the drug,
pregnancy checks for GLP-1 RAs / tirzepatide / SGLT2 inhibitors, alternatives when DOACs are ruled out, provoked VTE,
adult-only CAP rules, and reason texts that do not offer possibly forbidden drugs.

Every test is a neighbour-state pair: the same patient with and without the one deciding fact, so a check that fires
for everyone (or for no one) fails. Profile checks are exercised through minimal offer rules on a copy of the corpus
(so the general rules, edited in parallel, cannot hide a failure); rule changes are exercised on the real corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.knowledge import Knowledge
from assistant.models import Finding, PatientContext
from assistant.patient import extract_context
from assistant.rules import RuleEngine
from assistant.testing.patients import patient_context

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
OFFERS = ("recommend", "consider")

# (therapy id, diagnosis that scopes its minimal offer rule)
OFFERED = [
    ("apixaban", "vte"), ("rivaroxaban", "vte"), ("edoxaban", "vte"), ("dabigatran", "vte"),
    ("rivaroxaban", "atrial_fibrillation"), ("dabigatran", "atrial_fibrillation"),
    ("semaglutide", "diabetes"), ("tirzepatide", "diabetes"), ("empagliflozin", "diabetes"), ("metformin", "diabetes"),
    ("doxycycline", "pneumonia"), ("trimethoprim_sulfamethoxazole", "uti"), ("nitrofurantoin", "uti"),
    ("olaparib", "prostate_cancer"), ("ticagrelor", "coronary_artery_disease"), ("finerenone", "ckd"),
]  # fmt: skip


@pytest.fixture(scope="module")
def profile_engine(tmp_path_factory, make_offer_corpus) -> RuleEngine:
    return RuleEngine(make_offer_corpus(tmp_path_factory.mktemp("safety-followups-corpus"), OFFERED))


# The shipped corpus and its engine come from the session fixtures in conftest.py (`knowledge`, `engine`).
_ctx = patient_context


def _offered(findings: list[Finding], drug: str) -> bool:
    return any(f.kind in OFFERS and f.therapy == drug for f in findings)


def _safety(findings: list[Finding], drug: str, kind: str) -> list[str]:
    return [
        f.rule_id
        for f in findings
        if f.kind == kind and f.rule_id.startswith("SAFETY:") and f.therapy == drug
    ]


def _withdrawn(
    engine: RuleEngine, base: PatientContext, changed: PatientContext, drug: str, check: str
) -> None:
    assert _offered(engine.evaluate(base), drug), f"{drug} should be offered before the fact is added"
    after = engine.evaluate(changed)
    assert not _offered(after, drug), [f.rule_id for f in after if f.therapy == drug]
    hits = _safety(after, drug, "exclude")
    assert any(check in h for h in hits), f"no SAFETY exclusion {check!r} for {drug}: {hits}"


def _kept_with_warning(engine: RuleEngine, ctx: PatientContext, drug: str, check: str) -> None:
    out = engine.evaluate(ctx)
    assert _offered(out, drug), (
        f"a caution must not remove {drug}: {[f.rule_id for f in out if f.therapy == drug]}"
    )
    assert any(check in h for h in _safety(out, drug, "warn")), _safety(out, drug, "warn")


# ------------------------------------------------------------------ 1. label "avoid" checks withdraw the drug
@pytest.mark.parametrize(
    ("drug", "inducer", "check"),
    [
        ("apixaban", "carbamazepine", "SAFE-APIXABAN.combined-inducer"),
        ("rivaroxaban", "phenytoin", "SAFE-RIVAROXABAN.combined-inducer"),
        ("edoxaban", "rifampin", "SAFE-EDOXABAN.pgp-inducer"),
        ("dabigatran", "rifampin", "SAFE-DABIGATRAN.pgp-inducer"),
    ],
)
def test_doac_withdrawn_with_a_strong_inducer(
    profile_engine: RuleEngine, drug: str, inducer: str, check: str
) -> None:
    base = _ctx("vte", sex="male", age=50, current=["levetiracetam"])
    _withdrawn(profile_engine, base, _ctx("vte", sex="male", age=50, current=[inducer]), drug, check)


def test_apixaban_withdrawn_in_child_pugh_c_not_b(profile_engine: RuleEngine) -> None:
    base = _ctx("vte", sex="male", age=60, child_pugh="B", comorb=["cirrhosis"])
    changed = _ctx("vte", sex="male", age=60, child_pugh="C", comorb=["cirrhosis"])
    _withdrawn(profile_engine, base, changed, "apixaban", "SAFE-APIXABAN.severe-hepatic")


@pytest.mark.parametrize(
    ("drug", "check"), [("rivaroxaban", "SAFE-RIVAROXABAN.hepatic"), ("edoxaban", "SAFE-EDOXABAN.hepatic")]
)
def test_xa_inhibitors_withdrawn_in_child_pugh_b(profile_engine: RuleEngine, drug: str, check: str) -> None:
    base = _ctx("vte", sex="male", age=60, child_pugh="A", comorb=["cirrhosis"])
    changed = _ctx("vte", sex="male", age=60, child_pugh="B", comorb=["cirrhosis"])
    _withdrawn(profile_engine, base, changed, drug, check)


def test_rivaroxaban_crcl_below_15_withdrawn_for_vte_but_only_warned_in_af(
    profile_engine: RuleEngine,
) -> None:
    base = _ctx("vte", sex="male", age=65, labs={"crcl": 40})
    changed = _ctx("vte", sex="male", age=65, labs={"crcl": 12})
    _withdrawn(profile_engine, base, changed, "rivaroxaban", "SAFE-RIVAROXABAN.severe-renal")
    af = _ctx("atrial_fibrillation", sex="male", age=65, labs={"crcl": 12})
    _kept_with_warning(profile_engine, af, "rivaroxaban", "SAFE-RIVAROXABAN.severe-renal-af")


def test_dabigatran_crcl_25_withdrawn_for_vte_but_only_warned_in_af(profile_engine: RuleEngine) -> None:
    base = _ctx("vte", sex="male", age=65, labs={"crcl": 45})
    changed = _ctx("vte", sex="male", age=65, labs={"crcl": 25})
    _withdrawn(profile_engine, base, changed, "dabigatran", "SAFE-DABIGATRAN.severe-renal-non-af")
    af = _ctx("atrial_fibrillation", sex="male", age=65, labs={"crcl": 25})
    _kept_with_warning(profile_engine, af, "dabigatran", "SAFE-DABIGATRAN.severe-renal")


def test_ticagrelor_and_finerenone_withdrawn_with_rifampin(profile_engine: RuleEngine) -> None:
    for drug, dx, check in [
        ("ticagrelor", "coronary_artery_disease", "SAFE-TICAGRELOR.strong-cyp3a-inducer"),
        ("finerenone", "ckd", "SAFE-FINERENONE.inducer"),
    ]:
        base = _ctx(dx, sex="male", age=60, labs={"egfr": 50, "potassium": 4.5})
        changed = _ctx(dx, sex="male", age=60, labs={"egfr": 50, "potassium": 4.5}, current=["rifampin"])
        _withdrawn(profile_engine, base, changed, drug, check)


def test_olaparib_withdrawn_with_rifampin_but_only_warned_when_replacing_enzalutamide(
    profile_engine: RuleEngine,
) -> None:
    base = _ctx("prostate_cancer", sex="male", age=70)
    changed = _ctx("prostate_cancer", sex="male", age=70, current=["rifampin"])
    _withdrawn(profile_engine, base, changed, "olaparib", "SAFE-OLAPARIB.cyp3a-inducer")
    arpi = _ctx("prostate_cancer", sex="male", age=70, current=["enzalutamide"])
    _kept_with_warning(profile_engine, arpi, "olaparib", "SAFE-OLAPARIB.cyp3a-inducer-arpi")


def test_nitrofurantoin_withdrawn_below_crcl_60_per_label(profile_engine: RuleEngine) -> None:
    base = _ctx("uti", sex="female", age=60, pregnant=False, labs={"crcl": 75})
    changed = _ctx("uti", sex="female", age=60, pregnant=False, labs={"crcl": 45})
    _withdrawn(profile_engine, base, changed, "nitrofurantoin", "SAFE-NITROFURANTOIN.moderate-renal")


def test_no_caution_still_says_the_label_advises_avoiding() -> None:
    """The policy: wording that says the label avoids the drug belongs under `contraindicated`."""
    for path in sorted((CORPUS / "safety").glob("*.yaml")):
        for prof in yaml.safe_load(path.read_text(encoding="utf-8"))["profiles"]:
            for chk in prof.get("caution") or []:
                text = " ".join(str(chk["reason"]).split()).lower()
                assert "label advises avoiding" not in text and "the label says avoid" not in text, (
                    f"{path.name} {prof['id']}.{chk['id']}: a label 'avoid' belongs under contraindicated"
                )


# ------------------------------------------------------------------ 2. pregnancy: GLP-1 RA, tirzepatide, SGLT2i, metformin
@pytest.mark.parametrize(
    ("drug", "check"),
    [("semaglutide", "SAFE-GLP1RA.pregnancy"), ("tirzepatide", "SAFE-TIRZEPATIDE.pregnancy")],
)
def test_glp1_and_tirzepatide_withdrawn_in_pregnancy(
    profile_engine: RuleEngine, drug: str, check: str
) -> None:
    base = _ctx("diabetes", sex="female", age=30, pregnant=False, diabetes_type="type2")
    changed = _ctx(
        "diabetes", sex="female", age=30, pregnant=True, gestational_weeks=16, diabetes_type="type2"
    )
    _withdrawn(profile_engine, base, changed, drug, check)


def test_glp1_asks_about_pregnancy_only_when_it_is_possible(profile_engine: RuleEngine) -> None:
    unknown = profile_engine.evaluate(_ctx("diabetes", sex="female", age=30, diabetes_type="type2"))
    asks = [f.reason for f in unknown if f.kind == "ask" and f.therapy == "semaglutide"]
    assert any("pregnant" in a.lower() for a in asks), asks
    male = profile_engine.evaluate(_ctx("diabetes", sex="male", age=30, diabetes_type="type2"))
    assert not [
        f for f in male if f.kind == "ask" and f.therapy == "semaglutide" and "pregnan" in f.reason.lower()
    ]


def test_sglt2i_withdrawn_from_second_trimester_warned_in_first(profile_engine: RuleEngine) -> None:
    first = _ctx("diabetes", sex="female", age=30, pregnant=True, gestational_weeks=9, diabetes_type="type2")
    second = _ctx(
        "diabetes", sex="female", age=30, pregnant=True, gestational_weeks=20, diabetes_type="type2"
    )
    _kept_with_warning(profile_engine, first, "empagliflozin", "SAFE-SGLT2I.pregnancy-first-trimester")
    _withdrawn(profile_engine, first, second, "empagliflozin", "SAFE-SGLT2I.pregnancy-2nd-3rd-trimester")


def test_metformin_in_pregnancy_is_a_warning_not_a_withdrawal(profile_engine: RuleEngine) -> None:
    preg = _ctx("diabetes", sex="female", age=30, pregnant=True, gestational_weeks=20, diabetes_type="type2",
                labs={"egfr": 90})  # fmt: skip
    _kept_with_warning(profile_engine, preg, "metformin", "SAFE-METFORMIN.pregnancy")
    not_preg = profile_engine.evaluate(_ctx("diabetes", sex="female", age=30, pregnant=False, diabetes_type="type2",
                                            labs={"egfr": 90}))  # fmt: skip
    assert not any("SAFE-METFORMIN.pregnancy" in h for h in _safety(not_preg, "metformin", "warn"))


# ------------------------------------------------------------------ 3. insulin for diabetes in pregnancy
def test_insulin_offered_for_diabetes_in_pregnancy_only(engine: RuleEngine) -> None:
    preg = engine.evaluate(
        _ctx("diabetes", sex="female", age=31, pregnant=True, gestational_weeks=16, diabetes_type="type2")
    )
    assert any(f.rule_id == "GEN-DM-PREGNANCY-INSULIN" and f.kind == "recommend" for f in preg)
    assert not _offered(preg, "metformin"), "metformin is not the first-line offer in pregnancy"
    gdm = engine.evaluate(
        _ctx(
            "diabetes", sex="female", age=31, pregnant=True, gestational_weeks=28, diabetes_type="gestational"
        )
    )
    assert _offered(gdm, "insulin")
    not_preg = engine.evaluate(
        _ctx("diabetes", sex="female", age=31, pregnant=False, diabetes_type="type2", labs={"egfr": 90})
    )
    assert not any(f.rule_id == "GEN-DM-PREGNANCY-INSULIN" for f in not_preg)


# ------------------------------------------------------------------ 4. alternatives when the DOAC labels rule DOACs out
def test_vte_at_crcl_below_15_offers_warfarin_with_heparin(engine: RuleEngine) -> None:
    low = engine.evaluate(_ctx("vte", sex="male", age=65, labs={"crcl": 12}))
    assert any(f.rule_id == "GEN-VTE-WARFARIN-ESKD" and f.kind in OFFERS for f in low)
    assert not _offered(low, "rivaroxaban")
    normal = engine.evaluate(_ctx("vte", sex="male", age=65, labs={"crcl": 70}))
    assert not any(f.rule_id == "GEN-VTE-WARFARIN-ESKD" and f.kind in OFFERS for f in normal)


def test_vte_on_carbamazepine_offers_lmwh_and_warfarin(engine: RuleEngine) -> None:
    on = engine.evaluate(
        _ctx("vte", sex="female", age=45, pregnant=False, labs={"crcl": 90}, current=["carbamazepine"])
    )
    assert _offered(on, "enoxaparin") and _offered(on, "warfarin")
    assert not _offered(on, "apixaban") and not _offered(on, "rivaroxaban")
    off = engine.evaluate(
        _ctx("vte", sex="female", age=45, pregnant=False, labs={"crcl": 90}, current=["levetiracetam"])
    )
    assert not any(
        f.rule_id in ("GEN-VTE-LMWH-INDUCER", "GEN-VTE-WARFARIN-INDUCER") and f.kind in OFFERS for f in off
    )
    assert _offered(off, "apixaban")


# ------------------------------------------------------------------ 5. provoked VTE: no extended phase
def test_provoked_vte_excluded_from_extended_phase(engine: RuleEngine) -> None:
    unprovoked = engine.evaluate(_ctx("vte", sex="male", age=55, care_phase="extended", labs={"crcl": 80}))
    assert _offered(unprovoked, "apixaban") and _offered(unprovoked, "rivaroxaban")
    provoked = engine.evaluate(_ctx("vte", sex="male", age=55, care_phase="extended", labs={"crcl": 80},
                                    comorb=["provoked_vte"]))  # fmt: skip
    assert not _offered(provoked, "apixaban") and not _offered(provoked, "rivaroxaban")
    excl = {f.rule_id for f in provoked if f.kind == "exclude"}
    assert {"GEN-VTE-APIXABAN-EXTENDED", "GEN-VTE-RIVAROXABAN-EXTENDED"} <= excl, excl


@pytest.mark.parametrize(
    ("text", "provoked"),
    [
        ("DVT 3 months after an elective hip replacement; completed 3 months of rivaroxaban.", True),
        ("Provoked PE after major surgery, now 3 months of apixaban.", True),
        ("Postoperative DVT following knee replacement.", True),
        ("PE following trauma four months ago.", True),
        ("Unprovoked PE 6 months ago; completed 6 months of apixaban; extend?", False),
        ("Un-provoked DVT, extended phase?", False),
    ],
)
def test_extractor_reads_provoked_vte(knowledge: Knowledge, text: str, provoked: bool) -> None:
    ctx = extract_context(text, lexicon=knowledge.lexicon)
    assert (ctx.comorbidities.get("provoked_vte") == "present") is provoked, ctx.comorbidities


# ------------------------------------------------------------------ 6. CAP rules are adult guidance; doxycycline under 8
@pytest.mark.parametrize("rule_id", ["GEN-CAP-AMOXICILLIN", "GEN-CAP-DOXYCYCLINE", "GEN-CAP-MACROLIDE"])
def test_cap_rules_exclude_children(engine: RuleEngine, rule_id: str) -> None:
    adult = engine.evaluate(_ctx("pneumonia", sex="male", age=30))
    assert any(f.rule_id == rule_id and f.kind in OFFERS for f in adult)
    child = engine.evaluate(_ctx("pneumonia", sex="male", age=6))
    assert any(f.rule_id == rule_id and f.kind == "exclude" and "PIDS/IDSA" in f.reason for f in child)


def test_cap_comorbid_rules_exclude_adolescents(engine: RuleEngine) -> None:
    teen = engine.evaluate(_ctx(["pneumonia", "asthma"], sex="female", age=15, pregnant=False))
    assert not any(f.rule_id.startswith("GEN-CAP-") and f.kind in OFFERS for f in teen)
    adult = engine.evaluate(_ctx(["pneumonia", "asthma"], sex="female", age=25, pregnant=False))
    assert any(f.rule_id.startswith("GEN-CAP-COMORBID") and f.kind in OFFERS for f in adult)


def test_doxycycline_withdrawn_under_8(profile_engine: RuleEngine) -> None:
    base = _ctx("pneumonia", sex="male", age=10)
    _withdrawn(
        profile_engine,
        base,
        _ctx("pneumonia", sex="male", age=6),
        "doxycycline",
        "SAFE-DOXYCYCLINE.child-under-8",
    )


# ------------------------------------------------------------------ 7. reasons do not offer possibly forbidden drugs
def test_reasons_do_not_name_forbidden_alternatives(knowledge: Knowledge) -> None:
    rules = {r.id: r for r in knowledge.rules}
    ccb = " ".join(rules["GEN-HTN-CCB"].reason.split())
    assert "ACE inhibitor" not in ccb and "ARB" not in ccb and "another first-line class" in ccb
    for rid in ("GEN-UTI-PYELO-FLUOROQUINOLONE", "GEN-UTI-PYELO-TMP-SMX"):
        text = " ".join(rules[rid].reason.split())
        assert "aminoglycoside dose if a cephalosporin cannot be used" in text, rid


# ------------------------------------------------------------------ 8. TMP-SMX while breastfeeding: the label's caution
def test_tmp_smx_breastfeeding_is_a_warning_and_crcl_below_15_withdraws(profile_engine: RuleEngine) -> None:
    nursing = _ctx("uti", sex="female", age=30, pregnant=False, lactating=True, labs={"crcl": 90})
    _kept_with_warning(profile_engine, nursing, "trimethoprim_sulfamethoxazole", "SAFE-TMP-SMX.lactation")
    not_nursing = profile_engine.evaluate(
        _ctx("uti", sex="female", age=30, pregnant=False, lactating=False, labs={"crcl": 90})
    )
    assert not any(
        "SAFE-TMP-SMX.lactation" in h for h in _safety(not_nursing, "trimethoprim_sulfamethoxazole", "warn")
    )
    base = _ctx("uti", sex="female", age=60, pregnant=False, labs={"crcl": 40})
    changed = _ctx("uti", sex="female", age=60, pregnant=False, labs={"crcl": 12})
    _withdrawn(profile_engine, base, changed, "trimethoprim_sulfamethoxazole", "SAFE-TMP-SMX.severe-renal")
