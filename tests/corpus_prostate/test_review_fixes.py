"""Reviewer findings on the prostate rules, each pinned by a clinical scenario against the shipped corpus.

The scenarios are disease situations, not one patient's wording: each states the population a trial or
label covers and checks the rules neither over- nor under-reach it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.knowledge import load_knowledge
from assistant.models import Biomarker, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def _prostate_corpus(dest: Path) -> Path:
    """Only what the prostate rules depend on, so another specialty's files cannot hide or cause failures here."""
    shutil.copytree(CORPUS / "lexicon", dest / "lexicon")
    shutil.copytree(CORPUS / "labels", dest / "labels")
    shutil.copytree(CORPUS / "guidelines" / "prostate", dest / "guidelines" / "prostate")
    (dest / "rules").mkdir()
    for rule_file in (CORPUS / "rules").glob("prostate*.yaml"):
        shutil.copy(rule_file, dest / "rules" / rule_file.name)
    return dest


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return _prostate_corpus(tmp_path_factory.mktemp("prostate-review"))


@pytest.fixture(scope="module")
def knowledge(corpus_dir):
    return load_knowledge(corpus_dir)


@pytest.fixture(scope="module")
def engine(knowledge) -> RuleEngine:
    return RuleEngine(knowledge)


def ctx(state: str, therapies=(), labs=None, biomarkers=(), **kw) -> PatientContext:
    return PatientContext(
        diagnoses=["prostate_cancer"],
        disease_state=state,
        therapies=[TherapyExposure(therapy=t, status=s) for t, s in therapies],
        labs={n: LabValue(name=n, value=v) for n, v in (labs or {}).items()},
        biomarkers=[Biomarker(name=n, result=r, origin=o) for n, r, o in biomarkers],
        sex="male",
        **kw,
    )


def kinds(findings, therapy: str) -> set[str]:
    return {
        f.kind for f in findings if f.therapy == therapy and f.kind in ("recommend", "consider", "exclude")
    }


def by_rule(findings, rule_id: str):
    return [f for f in findings if f.rule_id == rule_id]


def asks(findings) -> str:
    return " ".join(f.reason for f in findings if f.kind == "ask").lower()


# ------------------------------------------------------------------ 1. EMBARK population
RP = ("radical_prostatectomy", "completed")
SRT = ("salvage_radiotherapy", "completed")
PRIMARY_RT = ("radiotherapy", "completed")


def test_embark_not_offered_after_prostatectomy_alone(engine):
    f = engine.evaluate(ctx("BCR", [RP], {"psadt_months": 6, "psa": 1.5}))
    # Neither offered nor shown as excluded: salvage RT comes first, but a man who cannot have it may still be
    # treated as in EMBARK (item 11: ineligible must not read as "must not give").
    assert kinds(f, "enzalutamide") == set()
    assert kinds(f, "salvage_radiotherapy") == {"recommend"}
    assert by_rule(f, "PCA-WARN-BCR-SALVAGE-FIRST"), "asks whether salvage RT was offered"


@pytest.mark.parametrize(
    "therapies,labs,expected",
    [
        ([RP, SRT], {"psadt_months": 6, "psa": 1.5, "testosterone": 400}, "recommend"),
        ([RP, SRT], {"psadt_months": 6, "psa": 0.5, "testosterone": 400}, "exclude"),  # PSA under 1 after RP
        ([RP, SRT], {"psadt_months": 6, "psa": 1.5, "testosterone": 30}, "exclude"),  # castrate
        ([PRIMARY_RT], {"psadt_months": 5, "psa": 1.2, "testosterone": 400}, "exclude"),  # under 2 after RT
        ([PRIMARY_RT], {"psadt_months": 5, "psa": 3.5, "testosterone": 400}, "recommend"),
        ([RP, SRT], {"psadt_months": 14, "psa": 1.5, "testosterone": 400}, "exclude"),  # low risk
    ],
)
def test_embark_entry_criteria(therapies, labs, expected, engine):
    assert kinds(engine.evaluate(ctx("BCR", therapies, labs)), "enzalutamide") == {expected}


def test_embark_asks_for_missing_psa_and_testosterone(engine):
    f = engine.evaluate(ctx("BCR", [RP, SRT], {"psadt_months": 6}))
    assert kinds(f, "enzalutamide") == {"recommend"}
    text = asks(f)
    assert "testosterone" in text and "psa" in text


# ------------------------------------------------------------------ 2. prostate RT needs a prostate
def test_prostate_radiotherapy_not_offered_after_prostatectomy(engine):
    low_volume = {"bone": "present", "visceral": "absent"}
    f = engine.evaluate(ctx("mHSPC", [RP], sites=low_volume, ecog=1))
    rt = by_rule(f, "PCA-MHSPC-RT-PRIMARY")
    assert [x.kind for x in rt] == ["exclude"] and "prostatectomy" in rt[0].reason
    # prostate in place, newly diagnosed low-volume disease: still an option
    f = engine.evaluate(ctx("mHSPC", sites=low_volume, ecog=1, disease_volume="low", presentation="de_novo"))
    assert [x.kind for x in by_rule(f, "PCA-MHSPC-RT-PRIMARY")] == ["consider"]


# ------------------------------------------------------------------ 7. docetaxel reasons are true when they fire
@pytest.mark.parametrize(
    "therapies,after_arpi",
    [
        ([("leuprolide", "ongoing")], False),  # ARPI-naive
        (
            [("leuprolide", "ongoing"), ("enzalutamide", "intolerant")],
            False,
        ),  # stopped for toxicity, not failure
        ([("leuprolide", "ongoing"), ("abiraterone", "progressed")], True),
    ],
)
def test_docetaxel_reason_matches_arpi_history(therapies, after_arpi, engine):
    offers = [f for f in engine.evaluate(ctx("mCRPC", therapies, ecog=1)) if f.therapy == "docetaxel"]
    offers = [f for f in offers if f.kind in ("recommend", "consider")]
    assert len(offers) == 1
    says_after_arpi = "progressed on an arpi" in offers[0].reason.lower()
    assert says_after_arpi is after_arpi, offers[0].reason


# ------------------------------------------------------------------ 8. no token is both a therapy id and a class
def test_lexicon_has_no_id_class_clash(corpus_dir):
    from assistant.knowledge import validate_corpus

    report = validate_corpus(corpus_dir)
    assert report.ok
    assert not [w for w in report.warnings if "both a therapy id and a class" in w.reason]


@pytest.mark.parametrize("prior_rt", ["radiotherapy", "salvage_radiotherapy"])
def test_salvage_rt_not_repeated_after_any_radiotherapy(prior_rt, engine):
    f = engine.evaluate(ctx("BCR", [RP, (prior_rt, "completed")], {"psadt_months": 12}))
    assert kinds(f, "salvage_radiotherapy") == {"exclude"}


# ------------------------------------------------------------------ 9. neutrophil thresholds in the stored unit
@pytest.mark.parametrize(
    "anc,excluded",
    [(1.2, True), (1200, True), (1.5, False), (1500, False), (2.0, False), (2000, False)],
)
def test_docetaxel_neutrophil_limit_in_either_unit(anc, excluded, engine):
    f = engine.evaluate(ctx("mCRPC", [("abiraterone", "progressed")], {"anc": anc}, ecog=1))
    assert (kinds(f, "docetaxel") == {"exclude"}) is excluded


@pytest.mark.parametrize("anc,excluded", [(1.5, True), (1500, True), (1.6, False), (1600, False)])
def test_cabazitaxel_neutrophil_limit_in_either_unit(anc, excluded, engine):
    pretreated = [("abiraterone", "progressed"), ("docetaxel", "progressed")]
    f = engine.evaluate(ctx("mCRPC", pretreated, {"anc": anc}, ecog=1))
    assert (kinds(f, "cabazitaxel") == {"exclude"}) is excluded


# ------------------------------------------------------------------ 10. zoledronic acid renal warning from creatinine
@pytest.mark.parametrize("creatinine,warned", [(1.8, True), (0.8, False)])
def test_zoledronic_renal_warning_from_creatinine_age_weight(creatinine, warned, engine):
    f = engine.evaluate(
        ctx(
            "mCRPC",
            [("zoledronic_acid", "planned")],
            {"creatinine": creatinine},
            sites={"bone": "present"},
            age=78,
            weight_kg=70,
        )
    )
    assert bool(by_rule(f, "PCA-WARN-ZOLEDRONIC-RENAL")) is warned


# ------------------------------------------------------------------ 11. "not this pathway" must not read as "must not give"
def no_conflicts(findings) -> bool:
    return not [f for f in findings if f.rule_id.startswith("CONFLICT:")]


@pytest.mark.parametrize(
    "docetaxel_status,expected", [("completed", {"consider"}), ("progressed", {"exclude"})]
)
def test_docetaxel_rechallenge_after_good_response(docetaxel_status, expected, engine):
    history = [("docetaxel", docetaxel_status), ("abiraterone", "progressed")]
    f = engine.evaluate(ctx("mCRPC", history, ecog=1))
    assert kinds(f, "docetaxel") == expected
    assert kinds(f, "cabazitaxel") == {"recommend"}
    assert no_conflicts(f)
    if expected == {"consider"}:
        assert "6 months" in by_rule(f, "PCA-MCRPC-DOCETAXEL-RECHALLENGE")[0].reason


def test_talazoparib_enzalutamide_after_abiraterone_for_cspc(engine):
    brca2 = [("BRCA2", "pathogenic", "germline")]
    asked = engine.evaluate(
        ctx(
            "mCRPC",
            [("abiraterone", "progressed"), ("talazoparib+enzalutamide", "planned")],
            biomarkers=brca2,
        )
    )
    assert kinds(asked, "talazoparib+enzalutamide") == {"consider"}
    assert "castration-sensitive" in by_rule(asked, "PCA-MCRPC-TALAZOPARIB-ENZALUTAMIDE-AFTER-ABI")[0].reason
    assert no_conflicts(asked)
    # not asked about: neither offered nor excluded (the setting of the abiraterone is unknown)
    quiet = engine.evaluate(ctx("mCRPC", [("abiraterone", "progressed")], biomarkers=brca2))
    assert kinds(quiet, "talazoparib+enzalutamide") == set()
    assert kinds(quiet, "enzalutamide") == {"exclude"}
    # after therapy for mCRPC (here Lu-177-PSMA-617) it is excluded outright
    treated = engine.evaluate(
        ctx("mCRPC", [("abiraterone", "progressed"), ("lu177_psma617", "progressed")], biomarkers=brca2)
    )
    assert kinds(treated, "talazoparib+enzalutamide") == {"exclude"}


def test_platinum_not_excluded_without_dna_repair_alteration(engine):
    f = engine.evaluate(
        ctx(
            "mCRPC",
            [("abiraterone", "progressed"), ("docetaxel", "progressed")],
            biomarkers=[("HRR", "negative", "somatic")],
        )
    )
    assert kinds(f, "carboplatin") == set(), "aggressive-variant disease may still warrant platinum"


def test_bone_agents_not_excluded_without_bone_metastases(engine):
    f = engine.evaluate(
        ctx("mCRPC", [("leuprolide", "ongoing")], sites={"bone": "absent", "lymph_node": "present"})
    )
    assert kinds(f, "denosumab") == set() and kinds(f, "zoledronic_acid") == set()
    assert by_rule(f, "PCA-WARN-BONE-HEALTH-ADT"), "bone health on ADT is still addressed"
