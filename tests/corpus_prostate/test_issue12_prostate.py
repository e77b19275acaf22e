"""Issue 12 fixes to the prostate rules, each pinned by scenarios one step either side of the boundary.

Every scenario is a disease situation (volume, presentation, prior local therapy, which ARPI, imaging), never one
patient's wording: the rule must fire on one side of the step and not on the other.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.knowledge import load_knowledge
from assistant.models import Biomarker, LabValue, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
PROSTATE_DIGESTS = sorted((CORPUS / "guidelines" / "prostate").glob("*.md"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> RuleEngine:
    # Only what the prostate rules depend on, so another specialty's files cannot hide or cause failures here.
    dest = tmp_path_factory.mktemp("prostate-issue12")
    shutil.copytree(CORPUS / "lexicon", dest / "lexicon")
    shutil.copytree(CORPUS / "labels", dest / "labels")
    shutil.copytree(CORPUS / "guidelines" / "prostate", dest / "guidelines" / "prostate")
    (dest / "rules").mkdir()
    for rule_file in (CORPUS / "rules").glob("prostate*.yaml"):
        shutil.copy(rule_file, dest / "rules" / rule_file.name)
    return RuleEngine(load_knowledge(dest))


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


def rule(findings, rule_id: str):
    return [f for f in findings if f.rule_id == rule_id]


def asked(findings, fact: str) -> bool:
    return any(f.kind == "ask" and f.title == fact for f in findings)


BONE_ONLY = {"bone": "present", "visceral": "absent"}
RP = ("radical_prostatectomy", "completed")
PRIMARY_RT = ("radiotherapy", "completed")


# ------------------------------------------------------------------ radiotherapy to the prostate (STAMPEDE H, PEACE-1)
@pytest.mark.parametrize(
    "therapies,volume,presentation,expected,why",
    [
        ([], "low", "de_novo", "consider", None),
        ([], "high", "de_novo", "exclude", "high-volume"),  # one step: volume
        ([PRIMARY_RT], "low", "metachronous", "exclude", "already been given"),  # one step: prior radical RT
        ([RP], "low", "metachronous", "exclude", "prostatectomy"),  # prostate removed
        ([], "low", "metachronous", "exclude", "newly diagnosed"),  # relapse without recorded local therapy
    ],
)
def test_prostate_rt_only_de_novo_low_volume_unirradiated(
    therapies, volume, presentation, expected, why, engine
):
    f = engine.evaluate(
        ctx("mHSPC", therapies, sites=BONE_ONLY, ecog=1, disease_volume=volume, presentation=presentation)
    )
    rt = rule(f, "PCA-MHSPC-RT-PRIMARY")
    assert [x.kind for x in rt] == [expected]
    if why:
        assert why in rt[0].reason.lower(), rt[0].reason


def test_prostate_rt_waits_for_volume_and_asks(engine):
    f = engine.evaluate(ctx("mHSPC", sites={"bone": "present"}, ecog=1, presentation="de_novo"))
    assert kinds(f, "radiotherapy") == set()
    assert asked(f, "volume")


def test_prostate_rt_not_offered_one_state_over(engine):
    f = engine.evaluate(ctx("mCRPC", sites=BONE_ONLY, ecog=1, disease_volume="low", presentation="de_novo"))
    assert not rule(f, "PCA-MHSPC-RT-PRIMARY")


# ------------------------------------------------------------------ triplets and the docetaxel doublet
@pytest.mark.parametrize(
    "volume,presentation,daro,abi,doce",
    [
        ("high", "de_novo", "recommend", "recommend", "consider"),
        ("high", "metachronous", "recommend", "exclude", "consider"),  # PEACE-1 was de novo only
        (
            "low",
            "de_novo",
            "consider",
            "consider",
            "exclude",
        ),  # CHAARTED: no gain from docetaxel in low volume
        ("low", "metachronous", "consider", "exclude", "exclude"),
    ],
)
def test_volume_and_presentation_decide_docetaxel_options(volume, presentation, daro, abi, doce, engine):
    f = engine.evaluate(ctx("mHSPC", ecog=0, disease_volume=volume, presentation=presentation))
    assert kinds(f, "darolutamide+docetaxel") == {daro}
    assert kinds(f, "abiraterone+docetaxel") == {abi}
    assert kinds(f, "docetaxel") == {doce}
    # the ARPI doublets stay the backbone whatever the volume
    assert kinds(f, "apalutamide") == {"recommend"}


def test_low_volume_never_gets_a_preferred_docetaxel_option(engine):
    f = engine.evaluate(ctx("mHSPC", ecog=0, disease_volume="low", presentation="de_novo"))
    preferred = [x for x in f if x.kind == "recommend" and x.therapy and "docetaxel" in x.therapy]
    assert not preferred, [x.rule_id for x in preferred]


def test_unknown_volume_offers_no_docetaxel_option_and_asks(engine):
    f = engine.evaluate(ctx("mHSPC", ecog=0, presentation="de_novo"))
    for therapy in ("darolutamide+docetaxel", "abiraterone+docetaxel", "docetaxel"):
        assert not kinds(f, therapy) & {"recommend", "consider"}, therapy
    assert asked(f, "volume")


# ------------------------------------------------------------------ olaparib: prior ARPI is a class
BRCA2 = [("BRCA2", "pathogenic", "germline")]


@pytest.mark.parametrize(
    "prior,expected",
    [
        ("abiraterone", "recommend"),  # label wording
        ("enzalutamide", "recommend"),
        ("apalutamide", "consider"),  # class wording (NCCN, TRITON3) -> consider, never excluded
        ("darolutamide", "consider"),
    ],
)
def test_olaparib_after_any_arpi(prior, expected, engine):
    f = engine.evaluate(ctx("mCRPC", [(prior, "progressed")], biomarkers=BRCA2))
    assert kinds(f, "olaparib") == {expected}
    if expected == "consider":
        reason = rule(f, "PCA-MCRPC-OLAPARIB-BRCA-OTHER-ARPI")[0].reason.lower()
        assert "label" in reason and "class" in reason
    assert kinds(f, "rucaparib") == {"consider"}


def test_olaparib_needs_some_arpi(engine):
    f = engine.evaluate(ctx("mCRPC", [("leuprolide", "ongoing")], biomarkers=BRCA2))
    assert not kinds(f, "olaparib") & {"recommend", "consider"}


def test_non_brca_olaparib_after_apalutamide_is_considered(engine):
    markers = [
        ("CHEK2", "pathogenic", "somatic"),
        ("BRCA1", "negative", "somatic"),
        ("BRCA2", "negative", "somatic"),
    ]
    f = engine.evaluate(ctx("mCRPC", [("apalutamide", "progressed")], biomarkers=markers))
    assert kinds(f, "olaparib") == {"consider"}


def test_first_line_parp_combinations_state_their_real_grounds(engine):
    f = engine.evaluate(ctx("mCRPC", [("apalutamide", "progressed")], biomarkers=BRCA2))
    for rid in ("PCA-MCRPC-NIRAPARIB-ABIRATERONE", "PCA-MCRPC-OLAPARIB-ABIRATERONE"):
        found = rule(f, rid)
        assert [x.kind for x in found] == ["exclude"], rid
        text = found[0].reason.lower()
        assert "first-line" in text and "arpi-naive" not in text, text
    assert "castration-sensitive" in rule(f, "PCA-MCRPC-NIRAPARIB-ABIRATERONE")[0].reason


# ------------------------------------------------------------------ EMBARK: two entry routes
@pytest.mark.parametrize(
    "therapies,psa,expected,nadir_warning",
    [
        ([RP, ("salvage_radiotherapy", "completed")], 1.5, "recommend", False),  # post-RP route: PSA >= 1
        ([RP, ("salvage_radiotherapy", "completed")], 0.6, "exclude", False),
        ([PRIMARY_RT], 3.0, "recommend", True),  # post-RT route: nadir must be checked
        ([PRIMARY_RT], 1.5, "exclude", False),  # cannot be 2 above any nadir
    ],
)
def test_embark_routes(therapies, psa, expected, nadir_warning, engine):
    f = engine.evaluate(ctx("BCR", therapies, {"psadt_months": 6, "psa": psa, "testosterone": 300}))
    assert kinds(f, "enzalutamide") == {expected}
    assert bool(rule(f, "PCA-WARN-EMBARK-NADIR")) is nadir_warning


# ------------------------------------------------------------------ nmCRPC on conventional imaging, PSMA-PET-only lesions
def test_psma_pet_only_lesions_stay_nmcrpc(engine):
    f = engine.evaluate(ctx("nmCRPC", labs={"psadt_months": 6}, metastasis_imaging="psma_pet_only"))
    for therapy in ("apalutamide", "darolutamide", "enzalutamide"):
        assert kinds(f, therapy) == {"recommend"}, therapy
    warn = rule(f, "PCA-WARN-NMCRPC-PSMA-ONLY")
    assert warn and "conventional imaging" in warn[0].reason
    assert "NCCN-PCA-NMCRPC-PSMA-ONLY" in warn[0].refs
    for therapy in ("lu177_psma617", "radium223", "cabazitaxel"):
        assert not kinds(f, therapy) & {"recommend", "consider"}, therapy


def test_psma_warning_not_shown_for_conventional_imaging(engine):
    f = engine.evaluate(ctx("nmCRPC", labs={"psadt_months": 6}, metastasis_imaging="conventional"))
    assert not rule(f, "PCA-WARN-NMCRPC-PSMA-ONLY")


# ------------------------------------------------------------------ capivasertib + abiraterone (CAPItello-281)
@pytest.mark.parametrize(
    "state,pten,expected",
    [
        ("mHSPC", "positive", {"consider"}),
        ("mHSPC", "negative", {"exclude"}),
        ("mCRPC", "positive", set()),  # one state over: not this indication
    ],
)
def test_capivasertib_for_pten_deficient_mhspc(state, pten, expected, engine):
    f = engine.evaluate(ctx(state, biomarkers=[("PTEN", pten, "somatic")], ecog=1))
    assert kinds(f, "capivasertib+abiraterone") == expected


def test_pten_testing_is_asked_in_mhspc(engine):
    f = engine.evaluate(ctx("mHSPC", ecog=1, biomarkers=BRCA2))
    assert asked(f, "tested:PTEN")


# ------------------------------------------------------------------ radium-223 + enzalutamide (PEACE-3)
def test_radium_enzalutamide_first_line_with_bone_protection(engine):
    f = engine.evaluate(ctx("mCRPC", [("leuprolide", "ongoing")], sites=BONE_ONLY))
    assert kinds(f, "radium223+enzalutamide") == {"consider"}
    planned = engine.evaluate(
        ctx("mCRPC", [("leuprolide", "ongoing"), ("radium223+enzalutamide", "planned")], sites=BONE_ONLY)
    )
    assert rule(planned, "PCA-WARN-RA223-BONE-PROTECTION")
    protected = engine.evaluate(
        ctx(
            "mCRPC",
            [("leuprolide", "ongoing"), ("radium223+enzalutamide", "planned"), ("denosumab", "ongoing")],
            sites=BONE_ONLY,
        )
    )
    assert not rule(protected, "PCA-WARN-RA223-BONE-PROTECTION")


@pytest.mark.parametrize(
    "extra,sites",
    [
        ([("enzalutamide", "progressed")], BONE_ONLY),  # after ARPI failure: outside PEACE-3
        ([], {"bone": "present", "liver": "present"}),  # visceral disease
    ],
)
def test_radium_enzalutamide_not_offered_one_step_away(extra, sites, engine):
    f = engine.evaluate(ctx("mCRPC", [("leuprolide", "ongoing"), *extra], sites=sites))
    assert not kinds(f, "radium223+enzalutamide") & {"recommend", "consider"}


def test_radium_with_abiraterone_still_warned(engine):
    f = engine.evaluate(
        ctx(
            "mCRPC", [("abiraterone", "ongoing"), ("radium223", "planned")], sites=BONE_ONLY, symptomatic=True
        )
    )
    assert rule(f, "PCA-WARN-RA223-ABIRATERONE")
    assert kinds(f, "radium223+enzalutamide") == {"exclude"}


# ------------------------------------------------------------------ verification badges
def test_prostate_digests_flag_only_unverified_blocks():
    for path in PROSTATE_DIGESTS:
        head = path.read_text().split("\n---\n", 1)[0]
        assert "\nunverified: false" in head, (
            f"{path.name}: document-level flag would mark every block unverified"
        )


def test_verified_rules_show_no_badge(engine):
    f = engine.evaluate(ctx("mCRPC", [("leuprolide", "ongoing")]))
    abi = rule(f, "PCA-MCRPC-ABIRATERONE")
    assert abi and not abi[0].unverified
    f = engine.evaluate(ctx("mHSPC", ecog=0, disease_volume="high", presentation="de_novo"))
    assert not rule(f, "PCA-MHSPC-TRIPLET-DAROLUTAMIDE")[0].unverified
