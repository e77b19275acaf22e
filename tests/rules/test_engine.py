"""Rule-engine behaviour on a small fixture corpus: three-valued logic, outcomes, asks, conflicts, ordering."""

from __future__ import annotations

import pytest

from assistant.knowledge import Condition
from assistant.models import Biomarker, LabValue, PatientContext, TherapyExposure
from assistant.plan import build_plan
from assistant.rules import PatientView, RuleEngine, and3, benchmark, not3, or3
from assistant.rules.conditions import _Evaluator


def tx(therapy: str, status: str = "received", classes: list[str] | None = None, **kw) -> TherapyExposure:
    return TherapyExposure(therapy=therapy, status=status, classes=classes or [], **kw)


def mcrpc(**kw) -> PatientContext:
    base = {"diagnoses": ["prostate_cancer"], "disease_state": "mCRPC", "sex": "male"}
    base.update(kw)
    return PatientContext(**base)


def kinds(findings) -> dict[str, str]:
    """rule id → its outcome (an ask from a rule that also offers/excludes does not hide the outcome)."""
    out: dict[str, str] = {}
    for f in findings:
        if f.rule_id not in out or out[f.rule_id] == "ask":
            out[f.rule_id] = f.kind
    return out


# ------------------------------------------------------------------ three-valued logic
@pytest.mark.parametrize(
    ("values", "expected_and", "expected_or"),
    [
        ([True, True], True, True),
        ([True, False], False, True),
        ([True, None], None, True),
        ([False, None], False, None),
        ([None, None], None, None),
        ([], True, False),
    ],
)
def test_kleene_logic(values, expected_and, expected_or):
    assert and3(values) is expected_and
    assert or3(values) is expected_or


def test_not_keeps_unknown():
    assert not3(None) is None and not3(True) is False


def ev(ctx: PatientContext, cond: dict, knowledge) -> bool | None:
    return _Evaluator(PatientView.build(ctx, knowledge.lexicon)).cond(Condition.model_validate(cond))


@pytest.mark.parametrize(
    ("ctx", "cond", "expected"),
    [
        (PatientContext(), {"state": ["mCRPC"]}, None),
        (mcrpc(), {"state": ["mCRPC", "nmCRPC"]}, True),
        (mcrpc(), {"state": ["mHSPC"]}, False),
        (PatientContext(), {"diagnosis": "atrial_fibrillation"}, False),
        (
            PatientContext(comorbidities={"mechanical_valve": "possible"}),
            {"comorbidity": "mechanical_valve"},
            None,
        ),
        (mcrpc(therapies=[tx("abiraterone", "progressed")]), {"progressed_on": "ARPI"}, True),
        (mcrpc(therapies=[tx("abiraterone", "intolerant")]), {"progressed_on": "ARPI"}, False),
        (mcrpc(therapies=[tx("abiraterone", "intolerant")]), {"received": "abiraterone"}, True),
        (mcrpc(therapies=[tx("abiraterone", "planned")]), {"received": "abiraterone"}, False),
        (mcrpc(therapies=[tx("abiraterone", "planned")]), {"planned": "ARPI"}, True),
        (
            mcrpc(therapies=[tx("abiraterone", "progressed", still_taking=True)]),
            {"current": "abiraterone"},
            True,
        ),
        (PatientContext(medications=["aspirin"]), {"current": "antiplatelet"}, True),
        (mcrpc(), {"site": "visceral"}, None),
        (mcrpc(sites={"liver": "present"}), {"site": "visceral"}, True),
        (mcrpc(sites={"visceral": "absent"}), {"site": "visceral"}, False),
        (mcrpc(sites={"liver": "possible"}), {"site": "visceral"}, None),
        (mcrpc(), {"lab": {"name": "egfr", "op": "<", "value": 30}}, None),
        (
            mcrpc(labs={"egfr": LabValue(name="egfr", value=25)}),
            {"lab": {"name": "egfr", "op": "<", "value": 30}},
            True,
        ),
        (mcrpc(ecog=3), {"ecog": {"op": "<=", "value": 2}}, False),
        (mcrpc(), {"symptomatic": True}, None),
        (PatientContext(sex="male"), {"pregnant": True}, False),
        (PatientContext(sex="female"), {"pregnant": True}, None),
        (mcrpc(), {"biomarker": {"genes": ["BRCA2"]}}, None),
        (mcrpc(biomarkers=[Biomarker(name="BRCA2")]), {"biomarker": {"genes": ["BRCA1", "BRCA2"]}}, True),
        (mcrpc(biomarkers=[Biomarker(name="BRCA")]), {"biomarker": {"genes": ["BRCA1", "BRCA2"]}}, True),
        (
            mcrpc(biomarkers=[Biomarker(name="CHEK2", result="vus")]),
            {"biomarker": {"genes": ["CHEK2"]}},
            False,
        ),
        (
            mcrpc(biomarkers=[Biomarker(name="CHEK2")]),
            {"biomarker": {"genes": ["CHEK2"], "origins": ["germline"]}},
            None,
        ),
        (
            mcrpc(biomarkers=[Biomarker(name="CHEK2", origin="somatic")]),
            {"biomarker": {"genes": ["CHEK2"], "origins": ["germline"]}},
            False,
        ),
        (
            mcrpc(biomarkers=[Biomarker(name="HRR", result="negative")]),
            {"biomarker": {"genes": ["ATM"]}},
            False,
        ),
        (
            mcrpc(biomarkers=[Biomarker(name="MSI-H", result="positive")]),
            {"biomarker": {"genes": ["MSI-H"]}},
            True,
        ),
        (
            mcrpc(biomarkers=[Biomarker(name="BRCA2", result="negative")]),
            {"tested_negative": ["BRCA2"]},
            True,
        ),
        (mcrpc(), {"tested_negative": ["BRCA2"]}, None),
        (mcrpc(), {"all": [{"state": "mCRPC"}, {"site": "visceral"}]}, None),
        (mcrpc(), {"any": [{"state": "mCRPC"}, {"site": "visceral"}]}, True),
        (mcrpc(), {"not": {"site": "visceral"}}, None),
        (mcrpc(allergies=["penicillin"]), {"allergy": "penicillin"}, True),
        (mcrpc(castration="orchiectomy"), {"castration": True}, True),
    ],
)
def test_atoms(ctx, cond, expected, fixture_knowledge):
    assert ev(ctx, cond, fixture_knowledge) is expected


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [
        (PatientContext(age=70, sex="male"), 1),  # age 65-74
        (PatientContext(age=76, sex="female", diagnoses=["hypertension"]), 4),
        (
            PatientContext(
                age=60, sex="male", comorbidities={"stroke_tia": "present", "heart_failure": "present"}
            ),
            3,
        ),
    ],
)
def test_cha2ds2_vasc_uses_open_medicine(ctx, expected, fixture_knowledge):
    view = PatientView.build(ctx, fixture_knowledge.lexicon)
    assert view.calc("cha2ds2_vasc") == (float(expected), [])


def test_missing_calculator_input_is_unknown_and_named(fixture_knowledge):
    e = _Evaluator(PatientView.build(PatientContext(sex="male"), fixture_knowledge.lexicon))
    assert (
        e.cond(Condition.model_validate({"calc": {"name": "cha2ds2_vasc", "op": ">=", "value": 2}})) is None
    )
    assert "age" in e.unknown


def test_crcl_computed_from_creatinine(fixture_knowledge):
    ctx = PatientContext(
        age=80, sex="male", weight_kg=60, labs={"creatinine": LabValue(name="creatinine", value=2.0)}
    )
    view = PatientView.build(ctx, fixture_knowledge.lexicon)
    assert view.lab("crcl") == pytest.approx(25.0, abs=0.1)  # (140-80)*60/(72*2)


def test_apixaban_criteria_decided_with_one_input_missing(fixture_knowledge):
    ctx = PatientContext(age=85, weight_kg=55, medications=["apixaban"], diagnoses=["atrial_fibrillation"])
    ids = kinds(RuleEngine(fixture_knowledge).evaluate(ctx))
    assert ids.get("W-APIXABAN-DOSE") == "warn"


# ------------------------------------------------------------------ outcomes
def test_reference_like_case(fixture_knowledge):
    ctx = mcrpc(
        castration="orchiectomy",
        therapies=[
            tx("docetaxel", "progressed", ["taxane"]),
            tx("abiraterone", "progressed", ["ARPI"]),
            tx("orchiectomy"),
            tx("lu177_psma617", "progressed", ["PSMA_radioligand"]),
        ],
        biomarkers=[Biomarker(name="CHEK2")],
    )
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    k = kinds(findings)
    assert k["T-CABA"] == "recommend" and k["T-OLAPARIB"] == "recommend"
    assert k["T-LU"] == "exclude" and "not repeated" in next(
        f.reason for f in findings if f.rule_id == "T-LU"
    )
    assert k["T-ENZA-NAIVE"] == "exclude" and k["T-ADT-CONTINUE"] == "exclude"
    # CHEK2 origin unknown → asked once, by the question rule.
    assert sum(1 for f in findings if f.kind == "ask" and "CHEK2" in f.reason) == 1
    # Offers come first, in preference order.
    offers = [f.rule_id for f in findings if f.kind in ("recommend", "consider")]
    assert offers == ["T-CABA", "T-OLAPARIB"]


def test_scope_false_says_nothing(fixture_knowledge):
    ctx = PatientContext(disease_state="mHSPC", diagnoses=["prostate_cancer"])
    rule_ids = {f.rule_id for f in RuleEngine(fixture_knowledge).evaluate(ctx)}
    assert not rule_ids & {"T-CABA", "T-OLAPARIB", "T-RA223", "Q-VISCERAL"}


def test_unknown_scope_says_nothing(fixture_knowledge):
    ctx = PatientContext(diagnoses=["prostate_cancer"], therapies=[tx("docetaxel", "progressed", ["taxane"])])
    assert "T-CABA" not in kinds(RuleEngine(fixture_knowledge).evaluate(ctx))


def test_ineligible_gives_exclude_with_reason(fixture_knowledge):
    findings = RuleEngine(fixture_knowledge).evaluate(mcrpc())
    caba = next(f for f in findings if f.rule_id == "T-CABA")
    assert caba.kind == "exclude" and "after docetaxel" in caba.reason and caba.refs == ["DEMO-CABA"]


def test_exclusion_wins_and_cites_both(fixture_knowledge):
    ctx = mcrpc(
        therapies=[tx("abiraterone", "progressed", ["ARPI"]), tx("rucaparib", "progressed", ["PARPi"])],
        biomarkers=[Biomarker(name="BRCA2")],
    )
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    ola = next(f for f in findings if f.rule_id == "T-OLAPARIB")
    assert ola.kind == "exclude" and "PARP" in ola.reason
    assert ola.refs == ["DEMO-PARP", "demo-guide#parp-inhibitors"]


def test_biomarker_label_trap_vus(fixture_knowledge):
    ctx = mcrpc(
        therapies=[tx("abiraterone", "progressed", ["ARPI"])],
        biomarkers=[Biomarker(name="CHEK2", result="vus")],
    )
    assert kinds(RuleEngine(fixture_knowledge).evaluate(ctx))["T-OLAPARIB"] == "exclude"


def test_missing_biomarker_asks_with_rule_wording(fixture_knowledge):
    ctx = mcrpc(therapies=[tx("abiraterone", "progressed", ["ARPI"])])
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    asks = [f for f in findings if f.kind == "ask"]
    assert any(
        f.rule_id == "T-OLAPARIB" and f.reason == "Has HRR testing (germline and tumour) been done?"
        for f in asks
    )
    assert "T-OLAPARIB" not in {f.rule_id for f in findings if f.kind != "ask"}


def test_eligible_with_unknown_exclusion_offers_and_asks(fixture_knowledge):
    ctx = mcrpc(sites={"bone": "present", "lymph_node": "absent"}, symptomatic=True)
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    assert kinds(findings)["T-RA223"] == "consider"
    visceral = [f for f in findings if f.kind == "ask" and f.title == "site:visceral"]
    assert len(visceral) == 1  # the rule's and the question rule's asks are merged
    assert set(visceral[0].refs) == {"DEMO-RA223"}


def test_asks_dropped_for_excluded_therapies(fixture_knowledge):
    ctx = mcrpc(sites={"bone": "present"}, symptomatic=False)
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    assert kinds(findings)["T-RA223"] == "exclude"
    assert not [f for f in findings if f.kind == "ask" and f.therapy == "radium223"]


def test_repeat_allowed_when_rule_says_so(fixture_knowledge):
    ctx = mcrpc(therapies=[tx("adt", "progressed", ["ADT"])])
    assert kinds(RuleEngine(fixture_knowledge).evaluate(ctx))["T-ADT-CONTINUE"] == "recommend"


def test_warning_fires_on_combination(fixture_knowledge):
    ctx = mcrpc(therapies=[tx("abiraterone", "ongoing", ["ARPI"]), tx("radium223", "planned")])
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    warn = next(f for f in findings if f.rule_id == "W-RA223-ABI")
    assert warn.kind == "warn" and warn.severity == "high"


def test_af_doac_and_valve_trap(fixture_knowledge):
    base = {"diagnoses": ["atrial_fibrillation", "hypertension"], "age": 76, "sex": "male"}
    ok = kinds(RuleEngine(fixture_knowledge).evaluate(PatientContext(**base)))
    assert ok["T-DOAC-AF"] == "recommend"
    valve = PatientContext(**base, comorbidities={"mechanical_valve": "present"})
    k = kinds(RuleEngine(fixture_knowledge).evaluate(valve))
    assert k["T-DOAC-AF"] == "exclude" and k["T-WARFARIN-VALVE"] == "recommend"


def test_low_stroke_risk_is_not_anticoagulated(fixture_knowledge):
    ctx = PatientContext(diagnoses=["atrial_fibrillation"], age=50, sex="male")
    assert kinds(RuleEngine(fixture_knowledge).evaluate(ctx))["T-DOAC-AF"] == "exclude"


def test_missing_age_asks(fixture_knowledge):
    ctx = PatientContext(diagnoses=["atrial_fibrillation"], sex="female")
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    assert any(f.kind == "ask" and f.title == "age" for f in findings)


def test_metformin_renal_threshold(fixture_knowledge):
    low = PatientContext(diagnoses=["diabetes"], labs={"egfr": LabValue(name="egfr", value=25)})
    high = PatientContext(diagnoses=["diabetes"], labs={"egfr": LabValue(name="egfr", value=60)})
    assert kinds(RuleEngine(fixture_knowledge).evaluate(low))["T-METFORMIN"] == "exclude"
    assert kinds(RuleEngine(fixture_knowledge).evaluate(high))["T-METFORMIN"] == "recommend"


def test_unverified_refs_mark_the_finding(fixture_knowledge):
    ctx = mcrpc(
        therapies=[tx("abiraterone", "progressed", ["ARPI"]), tx("docetaxel", "progressed", ["taxane"])],
        biomarkers=[Biomarker(name="BRCA2", origin="germline")],
    )
    ruca = next(f for f in RuleEngine(fixture_knowledge).evaluate(ctx) if f.rule_id == "T-RUCAPARIB")
    assert ruca.kind == "consider" and ruca.unverified


# ------------------------------------------------------------------ conflicts
def test_conflict_is_surfaced_and_exclusion_wins(fixture_knowledge, tmp_path):
    import shutil

    from assistant.knowledge import load_knowledge

    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_knowledge.corpus_dir, corpus)
    extra = corpus / "rules" / "conflict.yaml"
    extra.write_text(
        """rules:
  - id: T-CABA-NO
    type: therapy
    therapy: cabazitaxel
    domain: prostate_cancer
    applies_when: {state: [mCRPC]}
    exclusions:
      - id: neutropenia
        when: {lab: {name: anc, op: "<", value: 1.5}}
        reason: Neutrophils too low for cabazitaxel.
    finding: consider
    reason: placeholder
    cite: [DEMO-CABA]
    last_reviewed: 2026-11-29
""",
        encoding="utf-8",
    )
    know = load_knowledge(corpus)
    ctx = mcrpc(
        therapies=[tx("docetaxel", "progressed", ["taxane"])], labs={"anc": LabValue(name="anc", value=1.0)}
    )
    findings = RuleEngine(know).evaluate(ctx)
    conflict = [f for f in findings if f.rule_id == "CONFLICT:cabazitaxel"]
    assert conflict and conflict[0].kind == "warn" and "T-CABA" in conflict[0].reason
    assert not [f for f in findings if f.therapy == "cabazitaxel" and f.kind in ("recommend", "consider")]
    plan = build_plan(findings, ctx, know.lexicon)
    assert "cabazitaxel" in plan.must_not_recommend and "Jevtana" in plan.must_not_recommend
    assert plan.conflicts


def test_ineligible_pathway_does_not_exclude_an_offered_therapy(fixture_knowledge, tmp_path):
    import shutil

    from assistant.knowledge import load_knowledge

    corpus = tmp_path / "corpus"
    shutil.copytree(fixture_knowledge.corpus_dir, corpus)
    (corpus / "rules" / "second.yaml").write_text(
        """rules:
  - id: T-CABA-FIRSTLINE
    type: therapy
    therapy: cabazitaxel
    domain: prostate_cancer
    applies_when: {state: [mCRPC]}
    eligible_when: {not: {received: taxane}}
    ineligible_reason: Only before any taxane.
    finding: consider
    reason: placeholder
    cite: [DEMO-CABA]
    last_reviewed: 2026-11-29
""",
        encoding="utf-8",
    )
    ctx = mcrpc(therapies=[tx("docetaxel", "progressed", ["taxane"])])
    findings = RuleEngine(load_knowledge(corpus)).evaluate(ctx)
    assert not [f for f in findings if f.rule_id == "T-CABA-FIRSTLINE"]
    assert not [f for f in findings if f.rule_id.startswith("CONFLICT")]


# ------------------------------------------------------------------ plan
def test_plan_lists(fixture_knowledge):
    ctx = mcrpc(
        therapies=[tx("abiraterone", "ongoing", ["ARPI"]), tx("radium223", "planned")],
        sites={"bone": "present", "visceral": "absent", "lymph_node": "absent"},
        symptomatic=True,
    )
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    plan = build_plan(findings, ctx, fixture_knowledge.lexicon)
    assert plan.must_mention[0] == "radium223" or "radium223" in plan.must_mention
    assert any("ERA 223" in w for w in plan.must_warn)
    assert "Xtandi" not in plan.must_not_recommend or "enzalutamide" in plan.must_not_recommend
    assert plan.findings == findings


def test_plan_without_lexicon_keeps_ids_only(fixture_knowledge):
    findings = RuleEngine(fixture_knowledge).evaluate(mcrpc())
    plan = build_plan(findings, mcrpc())
    assert "cabazitaxel" in plan.must_not_recommend and "Jevtana" not in plan.must_not_recommend


def test_benchmark_reports_times(fixture_knowledge):
    result = benchmark(
        fixture_knowledge, [mcrpc(), PatientContext(diagnoses=["atrial_fibrillation"], age=70)], repeat=3
    )
    assert result.runs == 6 and result.rules == len(fixture_knowledge.rules) and result.mean_ms > 0


def test_plan_keeps_offers_outside_the_focus_out_of_must_mention(fixture_knowledge):
    ctx = PatientContext(
        diagnoses=["atrial_fibrillation", "diabetes"],
        age=76,
        sex="male",
        labs={"egfr": LabValue(name="egfr", value=60)},
        focus=["atrial_fibrillation"],
    )
    findings = RuleEngine(fixture_knowledge).evaluate(ctx)
    assert {"T-DOAC-AF", "T-METFORMIN"} <= {f.rule_id for f in findings if f.kind == "recommend"}
    plan = build_plan(findings, ctx, fixture_knowledge.lexicon)
    assert plan.must_mention == ["apixaban"]
    planned = ctx.model_copy(update={"therapies": [tx("metformin", "planned")]})
    assert "metformin" in build_plan(findings, planned).must_mention


def test_regimen_component_is_not_banned_by_name(fixture_knowledge):
    from assistant.models import Finding

    findings = [
        Finding(rule_id="A", kind="consider", therapy="olaparib+abiraterone", reason="r", refs=["DEMO-PARP"]),
        Finding(rule_id="B", kind="exclude", therapy="olaparib", reason="r", refs=["DEMO-PARP"]),
    ]
    plan = build_plan(findings, mcrpc(), fixture_knowledge.lexicon)
    assert "olaparib" not in plan.must_not_recommend and "Lynparza" not in plan.must_not_recommend


def test_dialysis_reads_as_lowest_clearance(fixture_knowledge):
    ctx = PatientContext(comorbidities={"dialysis": "present"})
    view = PatientView.build(ctx, fixture_knowledge.lexicon)
    assert view.lab("crcl") < 15 and view.calc("crcl")[0] < 15
