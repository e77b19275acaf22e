"""Prostate corpus rules evaluated by the real rule engine on clinical scenarios.

Scenarios are general disease situations (not one patient's wording); each asserts the finding kinds
the AUA/SUO guideline and the FDA labels call for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.knowledge import load_knowledge, validate_corpus
from assistant.models import Biomarker, PatientContext, TherapyExposure
from assistant.rules import RuleEngine

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def _prostate_corpus(dest: Path) -> Path:
    """Copy only what the prostate rules depend on (lexicon, labels, prostate digests and rules), so a
    problem in another specialty's files does not hide or cause failures here."""
    shutil.copytree(CORPUS / "lexicon", dest / "lexicon")
    shutil.copytree(CORPUS / "labels", dest / "labels")
    shutil.copytree(CORPUS / "guidelines" / "prostate", dest / "guidelines" / "prostate")
    (dest / "rules").mkdir()
    for rule_file in (CORPUS / "rules").glob("prostate*.yaml"):
        shutil.copy(rule_file, dest / "rules" / rule_file.name)
    return dest


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return _prostate_corpus(tmp_path_factory.mktemp("prostate-corpus"))


@pytest.fixture(scope="module")
def engine(corpus_dir) -> RuleEngine:
    return RuleEngine(load_knowledge(corpus_dir))


def _ctx(state: str, therapies=(), biomarkers=(), sites=None, **kw) -> PatientContext:
    return PatientContext(
        diagnoses=["prostate_cancer"],
        disease_state=state,
        therapies=[TherapyExposure(therapy=t, status=s) for t, s in therapies],
        biomarkers=[Biomarker(name=n, result=r, origin=o) for n, r, o in biomarkers],
        sites=sites or {},
        sex="male",
        **kw,
    )


def _kinds(findings, therapy: str) -> set[str]:
    """Decision kinds for one therapy (asks about missing facts are checked separately)."""
    return {
        f.kind for f in findings if f.therapy == therapy and f.kind in ("recommend", "consider", "exclude")
    }


def _offered(findings, therapy: str) -> str | None:
    """'recommend' / 'consider' when the therapy is offered, else None (excluded, or waiting on a fact)."""
    kinds = _kinds(findings, therapy) & {"recommend", "consider"}
    return "recommend" if "recommend" in kinds else ("consider" if kinds else None)


def _ask_text(findings) -> str:
    return " ".join(f.reason + " " + f.title for f in findings if f.kind == "ask").lower()


def test_prostate_corpus_validates_and_meets_targets(corpus_dir):
    report = validate_corpus(corpus_dir)
    assert report.ok, "\n".join(str(e) for e in report.errors)
    know = load_knowledge(corpus_dir)
    prostate_rules = [r for r in know.rules if r.domain == "prostate_cancer"]
    assert len(prostate_rules) >= 40
    blocks = sum(
        p.read_text().count("::: recommendation") for p in (CORPUS / "guidelines" / "prostate").glob("*.md")
    )
    assert blocks >= 80


# mCRPC with a CHEK2 alteration, progressing on Lu-177-PSMA-617 after docetaxel and abiraterone, castrated by orchiectomy
POST_LU_CHEK2 = dict(
    state="mCRPC",
    therapies=[
        ("orchiectomy", "completed"),
        ("docetaxel", "completed"),
        ("abiraterone", "progressed"),
        ("lu177_psma617", "progressed"),
    ],
    biomarkers=[("CHEK2", "pathogenic", "unknown")],
)


def test_heavily_pretreated_chek2_mcrpc(engine):
    f = engine.evaluate(_ctx(**POST_LU_CHEK2))
    assert _kinds(f, "cabazitaxel") == {"recommend"}
    assert _kinds(f, "olaparib") == {"consider"}, (
        "CHEK2 is on the olaparib label; evidence is weaker -> consider"
    )
    olaparib = next(x for x in f if x.therapy == "olaparib")
    assert "TRIAL-PROFOUND-COHORT-B" in olaparib.refs
    assert _kinds(f, "lu177_psma617") == {"exclude"}
    assert _kinds(f, "enzalutamide") == {"exclude"}
    assert _kinds(f, "talazoparib+enzalutamide") == {"exclude"}
    assert "recommend" not in _kinds(f, "radium223") and "consider" not in _kinds(f, "radium223")
    assert "recommend" not in _kinds(f, "pembrolizumab")
    assert _kinds(f, "carboplatin") == {"consider"}
    asks = _ask_text(f)
    assert "visceral" in asks
    assert "chek2" in asks and "germline" in asks
    assert "msi" in asks or "mismatch" in asks
    warn_ids = {x.rule_id for x in f if x.kind == "warn"}
    assert {"PCA-WARN-CLINICAL-TRIAL", "PCA-WARN-BONE-HEALTH-ADT", "PCA-WARN-GENETIC-COUNSELLING"} <= warn_ids
    assert "adt" not in {x.therapy for x in f if x.kind == "recommend"}, "orchiectomy already castrates"


def test_msi_high_result_turns_pembrolizumab_on(engine):
    ctx = _ctx(
        **{
            **POST_LU_CHEK2,
            "biomarkers": [("CHEK2", "pathogenic", "germline"), ("MSI-H", "positive", "somatic")],
        }
    )
    f = engine.evaluate(ctx)
    assert _kinds(f, "pembrolizumab") == {"recommend"}
    assert "chek2" not in _ask_text(f), "origin is known, so it is not asked"


@pytest.mark.parametrize(
    "sites,symptomatic,expected",
    [
        ({"bone": "present", "visceral": "absent"}, True, "recommend"),
        ({"bone": "present", "liver": "present"}, True, "exclude"),
        ({"bone": "present", "visceral": "absent"}, False, "exclude"),
    ],
)
def test_radium223_needs_symptomatic_bone_only_disease(sites, symptomatic, expected, engine):
    ctx = _ctx(
        "mCRPC",
        therapies=[("enzalutamide", "progressed"), ("docetaxel", "progressed")],
        sites=sites,
        symptomatic=symptomatic,
    )
    assert _kinds(engine.evaluate(ctx), "radium223") == {expected}


def test_radium223_with_abiraterone_is_excluded_and_warned(engine):
    ctx = _ctx(
        "mCRPC",
        therapies=[("abiraterone", "ongoing"), ("radium223", "planned")],
        sites={"bone": "present", "visceral": "absent"},
        symptomatic=True,
    )
    f = engine.evaluate(ctx)
    assert _kinds(f, "radium223") == {"exclude"}
    assert any(x.rule_id == "PCA-WARN-RA223-ABIRATERONE" for x in f)


@pytest.mark.parametrize(
    "gene,olaparib,talazoparib_combo,niraparib_combo,rucaparib",
    [
        ("BRCA2", "recommend", "consider", "consider", "consider"),
        ("CHEK2", "consider", "consider", None, None),
        ("ATR", None, "consider", None, None),  # on talazoparib's list, not olaparib's
        ("RAD54L", "consider", None, None, None),  # on olaparib's list, not talazoparib's
    ],
)
def test_parp_inhibitor_gene_lists_follow_each_label(
    gene, olaparib, talazoparib_combo, niraparib_combo, rucaparib, engine
):
    # Enzalutamide stopped for toxicity: ARPI exposure without ARPI progression. BRCA1/2 reported negative
    # unless the row's gene is BRCA2.
    markers = [(gene, "pathogenic", "somatic")] + [
        (b, "negative", "somatic") for b in ("BRCA1", "BRCA2") if b != gene
    ]
    ctx = _ctx("mCRPC", therapies=[("enzalutamide", "intolerant")], biomarkers=markers)
    f = engine.evaluate(ctx)
    assert _offered(f, "olaparib") == olaparib
    assert _offered(f, "talazoparib+enzalutamide") == talazoparib_combo
    assert _offered(f, "niraparib+abiraterone") == niraparib_combo
    assert _offered(f, "rucaparib") == rucaparib
    if gene != "BRCA2":
        assert _kinds(f, "rucaparib") == {"exclude"}, (
            "BRCA-negative: rucaparib's BRCA-only label rules it out"
        )


def test_parp_after_parp_progression_is_excluded(engine):
    ctx = _ctx(
        "mCRPC",
        therapies=[("abiraterone", "progressed"), ("olaparib", "progressed")],
        biomarkers=[("BRCA2", "pathogenic", "germline")],
    )
    f = engine.evaluate(ctx)
    for therapy in ("olaparib", "rucaparib"):
        assert _kinds(f, therapy) == {"exclude"}


def test_first_line_mcrpc_arpi_naive(engine):
    f = engine.evaluate(_ctx("mCRPC", therapies=[("leuprolide", "ongoing")]))
    assert _kinds(f, "abiraterone") == {"recommend"}
    assert _kinds(f, "enzalutamide") == {"recommend"}
    assert _kinds(f, "docetaxel") == {"recommend"}
    assert _kinds(f, "adt") == {"recommend"}


def test_zoledronic_acid_renal_limit(engine):
    from assistant.models import LabValue

    ctx = _ctx("mCRPC", sites={"bone": "present"}, labs={"crcl": LabValue(name="crcl", value=25)})
    f = engine.evaluate(ctx)
    assert _kinds(f, "zoledronic_acid") == {"exclude"}
    assert _kinds(f, "denosumab") == {"recommend"}


@pytest.mark.parametrize("psadt,expected", [(6, {"recommend"}), (14, {"exclude"})])
def test_high_risk_bcr_embark(psadt, expected, engine):
    from assistant.models import LabValue

    ctx = _ctx(
        "BCR",
        therapies=[("radical_prostatectomy", "completed"), ("salvage_radiotherapy", "completed")],
        labs={"psadt_months": LabValue(name="psadt_months", value=psadt)},
    )
    assert _kinds(engine.evaluate(ctx), "enzalutamide") == expected


@pytest.mark.parametrize("psadt,expected", [(8, {"recommend"}), (15, {"exclude"})])
def test_nmcrpc_arpi_needs_short_psadt(psadt, expected, engine):
    from assistant.models import LabValue

    ctx = _ctx("nmCRPC", labs={"psadt_months": LabValue(name="psadt_months", value=psadt)})
    f = engine.evaluate(ctx)
    for therapy in ("apalutamide", "darolutamide", "enzalutamide"):
        assert _kinds(f, therapy) == expected


def test_mhspc_triplet_needs_fitness(engine):
    # Volume and presentation decide the triplet (issue 12); fitness still gates it.
    f = engine.evaluate(_ctx("mHSPC", ecog=1, disease_volume="high", presentation="de_novo"))
    assert _kinds(f, "darolutamide+docetaxel") == {"recommend"}
    assert _kinds(f, "abiraterone+docetaxel") == {"recommend"}
    f = engine.evaluate(_ctx("mHSPC", ecog=3, disease_volume="high", presentation="de_novo"))
    assert _kinds(f, "darolutamide+docetaxel") == {"exclude"}
