"""General-medicine safety profiles (corpus/safety/general_*.yaml) through the real rule engine and safety pass.

Each scenario offers a drug through a minimal therapy rule (so the general rules, edited in parallel, cannot hide
a failure), shows it is offered, then adds one label fact and asserts the safety pass turns the offer into an
exclusion (contraindication), a warning (caution) or a question (missing deciding fact). The class profiles are
checked on a sibling drug too (ramipril, not only lisinopril), since a profile written for a class must cover
every member.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import Knowledge
from assistant.models import Allergy, Finding, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
GENERAL_PROFILES = sorted((CORPUS / "safety").glob("general_*.yaml"))

pytestmark = pytest.mark.skipif(not GENERAL_PROFILES, reason="general safety profiles missing")

OFFERS = ("recommend", "consider")
# (therapy id, diagnosis that scopes its test rule)
OFFERED = [
    ("apixaban", "vte"), ("rivaroxaban", "vte"), ("dabigatran", "atrial_fibrillation"),
    ("edoxaban", "atrial_fibrillation"), ("warfarin", "vte"), ("enoxaparin", "vte"), ("ticagrelor", "coronary_artery_disease"),
    ("nitrofurantoin", "uti"), ("fosfomycin", "uti"), ("trimethoprim_sulfamethoxazole", "uti"),
    ("levofloxacin", "pneumonia"), ("amoxicillin", "pneumonia"), ("cefpodoxime", "pneumonia"), ("cephalexin", "uti"),
    ("doxycycline", "pneumonia"), ("clarithromycin", "pneumonia"),
    ("metformin", "diabetes"), ("empagliflozin", "ckd"), ("semaglutide", "diabetes"), ("finerenone", "ckd"),
    ("eplerenone", "heart_failure"), ("lisinopril", "hypertension"), ("ramipril", "hypertension"),
    ("valsartan", "hypertension"), ("sacubitril_valsartan", "heart_failure"), ("labetalol", "hypertension"),
    ("atorvastatin", "hyperlipidemia"), ("simvastatin", "hyperlipidemia"),
]  # fmt: skip


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory, make_offer_corpus) -> Knowledge:
    dest = tmp_path_factory.mktemp("general-safety-corpus")
    return make_offer_corpus(dest, OFFERED, safety_files=GENERAL_PROFILES, short_ids=True)


@pytest.fixture(scope="module")
def engine(knowledge: Knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


def _ctx(dx: str, *, labs: dict[str, float] | None = None, current=(), **kw) -> PatientContext:
    return PatientContext(
        diagnoses=[dx],
        therapies=[TherapyExposure(therapy=t, status="ongoing") for t in current],
        labs={n: LabValue(name=n, value=v) for n, v in (labs or {}).items()},
        **kw,
    )


def _offered(findings: list[Finding], drug: str) -> bool:
    return any(f.kind in OFFERS and f.therapy == drug for f in findings)


def _safety(findings: list[Finding], drug: str, kind: str) -> list[str]:
    return [
        f.rule_id
        for f in findings
        if f.kind == kind and f.rule_id.startswith("SAFETY:") and f.therapy == drug
    ]


def _excluded(
    engine: RuleEngine, base: PatientContext, changed: PatientContext, drug: str, check: str
) -> None:
    assert _offered(engine.evaluate(base), drug), f"{drug} should be offered before the fact is added"
    after = engine.evaluate(changed)
    assert not _offered(after, drug), (
        f"{drug} still offered: {[f.rule_id for f in after if f.therapy == drug]}"
    )
    hits = _safety(after, drug, "exclude")
    assert any(check in h for h in hits), f"no SAFETY exclusion {check!r} for {drug}: {hits}"


def _warned(engine: RuleEngine, ctx: PatientContext, drug: str, check: str) -> None:
    out = engine.evaluate(ctx)
    assert _offered(out, drug), f"a caution must not remove {drug}"
    assert any(check in h for h in _safety(out, drug, "warn")), _safety(out, drug, "warn")


def test_profiles_load_and_cover_every_offered_drug(knowledge: Knowledge) -> None:
    assert knowledge.report.ok, str(knowledge.report)
    for drug, _ in OFFERED:
        assert knowledge.profiles_for(drug), f"no safety profile covers {drug}"


def test_lexicon_splits_siblings_into_their_own_ids(knowledge: Knowledge) -> None:
    lex = knowledge.lexicon
    for name, drug in [("glyburide", "glyburide"), ("glimepiride", "glimepiride"), ("eplerenone", "eplerenone"),
                       ("ramipril", "ramipril"), ("valsartan", "valsartan"), ("augmentin", "amoxicillin_clavulanate"),
                       ("levofloxacin", "levofloxacin"), ("hctz", "hydrochlorothiazide"), ("praluent", "alirocumab")]:  # fmt: skip
        assert lex.by_name[name] == drug, name
    assert lex.matches("ramipril", "ACEi") and lex.matches("acei_unspecified", "ACEi")
    assert lex.matches("rifampin", "strong_CYP3A4_Pgp_inducer") and lex.matches(
        "ketoconazole", "strong_CYP3A4_Pgp_inhibitor"
    )
    assert lex.matches("tacrolimus", "immunosuppressant") and not lex.matches(
        "prednisone", "immunosuppressant"
    )


@pytest.mark.parametrize("drug", ["apixaban", "rivaroxaban", "dabigatran", "edoxaban"])
def test_doacs_excluded_in_pregnancy(engine: RuleEngine, drug: str) -> None:
    dx = dict(OFFERED)[drug]
    base = _ctx(dx, sex="female", age=30, pregnant=False, labs={"crcl": 80})
    _excluded(
        engine, base, base.model_copy(update={"pregnant": True, "gestational_weeks": 28}), drug, ".pregnancy"
    )


def test_doac_asks_about_pregnancy_in_a_woman_of_child_bearing_age(engine: RuleEngine) -> None:
    out = engine.evaluate(_ctx("vte", sex="female", age=30, labs={"crcl": 80}))
    assert any(
        f.kind == "ask" and "pregnant" in f.reason.lower() for f in out if f.rule_id.startswith("SAFETY:")
    ), [(f.rule_id, f.reason) for f in out if f.kind == "ask"]


def test_warfarin_pregnancy_excludes_except_mechanical_valve(engine: RuleEngine) -> None:
    base = _ctx("vte", sex="female", age=30, pregnant=False)
    _excluded(engine, base, base.model_copy(update={"pregnant": True}), "warfarin", "SAFE-WARFARIN.pregnancy")
    valve = base.model_copy(update={"pregnant": True, "comorbidities": {"mechanical_valve": "present"}})
    _warned(engine, valve, "warfarin", "SAFE-WARFARIN.pregnancy-mechanical-valve")


def test_dabigatran_excluded_with_mechanical_valve(engine: RuleEngine) -> None:
    base = _ctx("atrial_fibrillation", sex="male", labs={"crcl": 80})
    changed = base.model_copy(update={"comorbidities": {"mechanical_valve": "present"}})
    _excluded(engine, base, changed, "dabigatran", "SAFE-DOAC.mechanical-valve")


def test_edoxaban_excluded_in_af_with_high_crcl(engine: RuleEngine) -> None:
    base = _ctx("atrial_fibrillation", sex="male", labs={"crcl": 80})
    _excluded(
        engine, base, _ctx("atrial_fibrillation", sex="male", labs={"crcl": 110}), "edoxaban", "af-high-crcl"
    )


def test_ticagrelor_excluded_after_intracranial_haemorrhage(engine: RuleEngine) -> None:
    base = _ctx("coronary_artery_disease", sex="male")
    changed = base.model_copy(update={"comorbidities": {"intracranial_hemorrhage": "present"}})
    _excluded(engine, base, changed, "ticagrelor", "SAFE-TICAGRELOR.prior-ich")


def test_nitrofurantoin_excluded_at_term_and_in_pyelonephritis(engine: RuleEngine) -> None:
    base = _ctx("uti", sex="female", age=28, pregnant=True, gestational_weeks=30, labs={"crcl": 90})
    _excluded(
        engine, base, base.model_copy(update={"gestational_weeks": 39}), "nitrofurantoin", "term-pregnancy"
    )
    cystitis = _ctx("uti", sex="female", age=28, pregnant=False, infection_site="cystitis", labs={"crcl": 90})
    pyelo = cystitis.model_copy(update={"infection_site": "pyelonephritis"})
    _excluded(engine, cystitis, pyelo, "nitrofurantoin", "upper-tract")
    _excluded(engine, cystitis, pyelo, "fosfomycin", "upper-tract")


def test_fluoroquinolone_excluded_in_myasthenia_gravis(engine: RuleEngine) -> None:
    base = _ctx("pneumonia", sex="male", age=50)
    changed = base.model_copy(update={"comorbidities": {"myasthenia_gravis": "present"}})
    _excluded(engine, base, changed, "levofloxacin", "SAFE-FLUOROQUINOLONE.myasthenia")


def test_penicillin_allergy_excludes_amoxicillin_but_only_cautions_a_cephalosporin(
    engine: RuleEngine,
) -> None:
    base = _ctx("pneumonia", sex="male", age=50)
    hives = Allergy(
        substance="penicillin", classes=["penicillin", "beta_lactam"], reaction="hives", severity="non-severe"
    )
    mild = base.model_copy(update={"allergies": ["penicillin"], "allergy_details": [hives]})
    out = engine.evaluate(mild)
    assert not _offered(out, "amoxicillin"), (
        "any penicillin allergy other than intolerance excludes amoxicillin"
    )
    assert _offered(out, "cefpodoxime") and not _safety(out, "cefpodoxime", "warn"), (
        "non-severe: no reason to withhold"
    )
    ana = hives.model_copy(update={"reaction": "anaphylaxis", "severity": "severe"})
    severe = base.model_copy(update={"allergies": ["penicillin"], "allergy_details": [ana]})
    _warned(engine, severe, "cefpodoxime", "SAFE-CEPHALOSPORIN.severe-penicillin")


def test_cephalexin_excluded_after_anaphylaxis_to_amoxicillin(engine: RuleEngine) -> None:
    base = _ctx("uti", sex="female", age=40, pregnant=False)
    ana = Allergy(substance="amoxicillin", classes=["penicillin", "aminopenicillin", "beta_lactam"],
                  reaction="anaphylaxis", severity="severe")  # fmt: skip
    changed = base.model_copy(update={"allergies": ["amoxicillin"], "allergy_details": [ana]})
    _excluded(engine, base, changed, "cephalexin", "severe-aminopenicillin")


def test_metformin_and_sglt2i_excluded_in_type1_diabetes(engine: RuleEngine) -> None:
    base = _ctx("diabetes", sex="male", age=40, diabetes_type="type2", labs={"egfr": 70})
    _excluded(
        engine, base, base.model_copy(update={"diabetes_type": "type1"}), "metformin", "SAFE-METFORMIN.type1"
    )
    ckd = _ctx("ckd", sex="male", age=40, diabetes_type="type2", labs={"egfr": 45})
    _excluded(
        engine, ckd, ckd.model_copy(update={"diabetes_type": "type1"}), "empagliflozin", "SAFE-SGLT2I.type1"
    )


def test_sglt2i_excluded_after_kidney_transplant_and_warned_on_immunosuppressants(engine: RuleEngine) -> None:
    base = _ctx("ckd", sex="female", age=60, labs={"egfr": 45})
    changed = base.model_copy(update={"comorbidities": {"kidney_transplant": "present"}})
    _excluded(engine, base, changed, "empagliflozin", "SAFE-SGLT2I.kidney-transplant")
    tacro = base.model_copy(update={"therapies": [TherapyExposure(therapy="tacrolimus", status="ongoing")]})
    _warned(engine, tacro, "empagliflozin", "SAFE-SGLT2I.immunosuppression")


def test_metformin_excluded_below_egfr_30(engine: RuleEngine) -> None:
    base = _ctx("diabetes", sex="male", age=60, diabetes_type="type2", labs={"egfr": 70})
    _excluded(engine, base, base.model_copy(update={"labs": {"egfr": LabValue(name="egfr", value=25)}}),
              "metformin", "severe-renal")  # fmt: skip


def test_glp1ra_excluded_with_medullary_thyroid_carcinoma_history(engine: RuleEngine) -> None:
    base = _ctx("diabetes", sex="male", age=50, diabetes_type="type2")
    changed = base.model_copy(update={"comorbidities": {"medullary_thyroid_carcinoma": "present"}})
    _excluded(engine, base, changed, "semaglutide", "SAFE-GLP1RA.mtc-men2")


def test_finerenone_excluded_with_strong_cyp3a4_inhibitor(engine: RuleEngine) -> None:
    base = _ctx("ckd", sex="male", age=60, diabetes_type="type2", labs={"egfr": 50, "potassium": 4.5})
    changed = base.model_copy(
        update={"therapies": [TherapyExposure(therapy="itraconazole", status="ongoing")]}
    )
    _excluded(engine, base, changed, "finerenone", "strong-cyp3a4-inhibitor")
    high_k = base.model_copy(
        update={"labs": {**base.labs, "potassium": LabValue(name="potassium", value=5.3)}}
    )
    _excluded(engine, base, high_k, "finerenone", "potassium-high")


@pytest.mark.parametrize("drug", ["lisinopril", "ramipril", "valsartan", "sacubitril_valsartan"])
def test_raas_blockers_excluded_in_pregnancy(engine: RuleEngine, drug: str) -> None:
    dx = dict(OFFERED)[drug]
    base = _ctx(dx, sex="female", age=32, pregnant=False)
    _excluded(engine, base, base.model_copy(update={"pregnant": True}), drug, ".pregnancy")


def test_acei_excluded_with_angioedema_history_and_labetalol_kept_in_pregnancy(engine: RuleEngine) -> None:
    base = _ctx("hypertension", sex="female", age=32, pregnant=False)
    changed = base.model_copy(update={"comorbidities": {"angioedema_history": "present"}})
    _excluded(engine, base, changed, "ramipril", "SAFE-ACEI.angioedema")
    assert _offered(engine.evaluate(base.model_copy(update={"pregnant": True})), "labetalol")


def test_statins_excluded_in_pregnancy_and_lactation(engine: RuleEngine) -> None:
    base = _ctx("hyperlipidemia", sex="female", age=34, pregnant=False, lactating=False)
    _excluded(
        engine, base, base.model_copy(update={"pregnant": True}), "atorvastatin", "SAFE-STATIN.pregnancy"
    )
    _excluded(
        engine, base, base.model_copy(update={"lactating": True}), "atorvastatin", "SAFE-STATIN.lactation"
    )


def test_simvastatin_excluded_with_clarithromycin(engine: RuleEngine) -> None:
    base = _ctx("hyperlipidemia", sex="male", age=60)
    changed = base.model_copy(
        update={"therapies": [TherapyExposure(therapy="clarithromycin", status="ongoing")]}
    )
    _excluded(engine, base, changed, "simvastatin", "SAFE-SIMVASTATIN.strong-cyp3a4-inhibitor")
