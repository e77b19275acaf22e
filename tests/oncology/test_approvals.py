"""The FDA oncology approval pack, proven by generation: every record fires for a patient built from its own
requirements, stops firing when its biomarker turns negative or its tumour changes, and its drugs meet the
safety pass in pregnancy. No hand-picked cases: the patients come from the records."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import load_knowledge
from assistant.models import PatientContext, TumourContext, TumourMarker
from assistant.oncology.records import Approval
from assistant.rules import RuleEngine
from assistant.testing.oncology_patients import record_patient

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(CORPUS)


@pytest.fixture(scope="module")
def engine(knowledge):
    return RuleEngine(knowledge)


def _patient_for(rec: Approval, knowledge) -> PatientContext:
    return record_patient(knowledge, rec)


def _offered(findings, rec: Approval) -> bool:
    return any(f.kind in ("recommend", "consider") and f.therapy == rec.therapy for f in findings)


def test_pack_is_loaded_and_valid(knowledge):
    assert knowledge.report.ok, knowledge.report.errors[:5]
    assert len(knowledge.approvals) >= 250
    tumours = {a.tumour for a in knowledge.approvals}
    for t in ("nsclc", "colorectal", "breast", "ovarian", "aml", "cml", "solid_tumour", "melanoma", "cholangiocarcinoma"):
        assert t in tumours, t
    # every regimen drug is covered by a safety profile (the validator's coverage rule)
    for a in knowledge.approvals:
        for d in a.regimen:
            assert knowledge.profiles_for(d), (a.id, d)


def test_every_record_fires_for_its_own_patient(knowledge, engine):
    failures = []
    for rec in knowledge.approvals:
        findings = engine.evaluate(_patient_for(rec, knowledge))
        if not _offered(findings, rec):
            failures.append(rec.id)
    assert not failures, f"{len(failures)} records do not fire for their own patient: {failures[:15]}"


def _positive_keys(rec: Approval) -> list[str]:
    return [k for k, v in rec.biomarkers.items() if not set(v) & {"negative", "wild_type", "zero"}]


def test_a_negative_biomarker_withdraws_the_record(knowledge, engine):
    checked = 0
    for rec in knowledge.approvals:
        keys = _positive_keys(rec)
        if not keys:
            continue
        ctx = _patient_for(rec, knowledge)
        assert ctx.tumour is not None
        markers = [
            m.model_copy(update={"status": "negative", "alteration": "", "level": "", "score": {}})
            if m.marker == keys[0]
            else m
            for m in ctx.tumour.markers
        ]
        ctx = ctx.model_copy(update={"tumour": ctx.tumour.model_copy(update={"markers": markers})})
        findings = engine.evaluate(ctx)
        assert not any(f.rule_id == rec.id and f.kind in ("recommend", "consider") for f in findings), rec.id
        checked += 1
    assert checked >= 150


def test_another_tumour_does_not_inherit_the_record(knowledge, engine):
    for rec in knowledge.approvals:
        if rec.tumour in ("solid_tumour",) or knowledge.oncology.tumour_parent.get(rec.tumour) is None:
            continue
        ctx = _patient_for(rec, knowledge)
        other = "hcc" if rec.tumour != "hcc" else "rcc"
        ctx = ctx.model_copy(update={"tumour": ctx.tumour.model_copy(update={"tumour": other})})
        assert not any(f.rule_id == rec.id for f in engine.evaluate(ctx)), rec.id


def test_pregnancy_reaches_every_offered_drug(knowledge, engine):
    """The pack's offers go through the same safety pass: in pregnancy each offered drug is warned or excluded."""
    missed = []
    for rec in knowledge.approvals:
        ctx = _patient_for(rec, knowledge).model_copy(update={"pregnant": True, "sex": "female"})
        findings = engine.evaluate(ctx)
        offered = [f for f in findings if f.rule_id == rec.id and f.kind in ("recommend", "consider")]
        if not offered:
            continue  # excluded outright by a drug-specific profile
        flagged = {
            f.therapy
            for f in findings
            if f.kind in ("warn", "exclude") and any("pregnan" in r.lower() or "SAFE-" in r for r in [f.reason, *f.refs])
        }
        drugs = set(rec.regimen)
        if not any(d in flagged or any(d in (t or "").split("+") for t in flagged) for d in drugs):
            missed.append(rec.id)
    assert not missed, missed[:10]


def test_an_allergy_to_a_regimen_drug_withdraws_the_regimen(knowledge, engine):
    """Anaphylaxis to one drug of a regimen: the regimen is never offered (the safety pass, for every record)."""
    from assistant.models import Allergy

    kept = []
    for rec in knowledge.approvals:
        drug = rec.regimen[0]
        ctx = _patient_for(rec, knowledge).model_copy(
            update={
                "allergies": [drug],
                "allergy_details": [Allergy(substance=drug, reaction="anaphylaxis", severity="severe")],
            }
        )
        if _offered(engine.evaluate(ctx), rec):
            kept.append(rec.id)
    assert not kept, kept[:10]


def test_a_driver_without_any_approval_is_reported(knowledge, engine):
    ctx = PatientContext(
        tumour=TumourContext(
            tumour="nsclc",
            settings=["metastatic"],
            markers=[TumourMarker(marker="STK11", alteration="mutation")],
        )
    )
    match = engine.oncology_match(ctx)
    assert [m.marker for m in match.unapproved] == ["STK11"]
    approved = PatientContext(
        tumour=TumourContext(tumour="nsclc", settings=["metastatic"], markers=[TumourMarker(marker="KRAS", alteration="G12C")])
    )
    assert engine.oncology_match(approved).unapproved == []


def test_one_notion_of_directed_serves_matcher_and_abstention():
    """`targets_alteration`: a positive requirement on a non-context marker; with the patient's markers, one of them
    (a family by its members) or the drug's class named after it."""
    from assistant.oncology.match import targets_alteration

    knowledge = load_knowledge(CORPUS)
    vocab = knowledge.oncology
    by_id = {a.id: a for a in knowledge.approvals}
    for a in knowledge.approvals:
        context_only = all(k in ("HR", "PDL1") or set(v) & {"negative", "wild_type", "zero"} for k, v in a.biomarkers.items())
        assert targets_alteration(a, vocab) is not context_only, a.id
        if context_only:
            assert not targets_alteration(a, vocab, {m for m in vocab.markers})
    some = next(a for a in by_id.values() if "KRAS" in a.biomarkers and "G12C" in a.biomarkers["KRAS"])
    assert targets_alteration(some, vocab, {"KRAS"}) and not targets_alteration(some, vocab, {"EGFR"})
    assert targets_alteration(some, vocab, {"NTRK"}, classes=["NTRK_inhibitor"])


def test_every_label_check_of_every_regimen_drug_acts_on_the_records_own_patient(knowledge, engine):
    """Generated: for each approval record, each drug of its regimen and each check of that drug's own label
    profiles (liver, kidney, QT, diabetes, ILD, heart failure, interactions …), the record's patient is given the
    check's fact (solved from the check's condition). A contraindication must withdraw the regimen; a caution must
    leave a warning about that drug (or withdraw the regimen for a same-class alternative). Every record × drug ×
    check the solver can build is tested; the counts are asserted so the generator cannot silently shrink."""
    from assistant.testing.patients import Goal, PatientSolver

    solver = PatientSolver(knowledge, budget=400)
    tested = unsolved = 0
    failures: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for rec in knowledge.approvals:
        base = _patient_for(rec, knowledge)
        for drug in dict.fromkeys(rec.regimen):
            for prof in knowledge.profiles_for(drug):
                if "antineoplastic" in prof.applies_to:
                    continue  # the class profile (pregnancy, lactation) has its own generated test above
                for level, checks in (("contraindicated", prof.contraindicated), ("caution", prof.caution)):
                    for chk in checks:
                        key = (rec.tumour, drug, chk.id)
                        if key in seen:
                            continue  # one patient per tumour, drug and check keeps the run short
                        seen.add(key)
                        ctx = solver.solve([Goal(chk.when, True)], base=base)
                        if ctx is None or not solver.satisfies(ctx, [Goal(chk.when, True)]):
                            unsolved += 1
                            continue
                        findings = engine.evaluate(ctx)
                        tested += 1
                        offered = _offered(findings, rec)
                        warned = any(
                            f.kind in ("warn", "exclude") and chk.id in f.rule_id and drug in (f.therapy or "").split("+")
                            for f in findings
                        )
                        if level == "contraindicated" and offered:
                            failures.append(f"{rec.id}: {drug} {prof.id}.{chk.id} contraindicated but still offered")
                        elif level == "caution" and offered and not warned:
                            failures.append(f"{rec.id}: {drug} {prof.id}.{chk.id} caution without a warning")
    print(f"label checks on approval records: {tested} tested, {unsolved} not solvable")
    assert tested >= 150, (tested, unsolved)
    assert not failures, f"{len(failures)} of {tested}: {failures[:10]}"


def test_braf_v600e_tumour_agnostic_dabrafenib_trametinib_is_not_for_colorectal(knowledge, engine):
    """The label excludes colorectal cancer (intrinsic resistance): encorafenib + cetuximab is the BRAF option."""
    ctx = PatientContext(tumour=TumourContext(tumour="colorectal", settings=["metastatic"], line="later",
                                              markers=[TumourMarker(marker="BRAF", alteration="V600E")]), focus=["oncology"])
    offered = {f.therapy for f in engine.evaluate(ctx) if f.kind in ("recommend", "consider")}
    assert "dabrafenib+trametinib" not in offered and "encorafenib+cetuximab" in offered
