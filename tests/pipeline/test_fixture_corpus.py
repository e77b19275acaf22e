"""The fixture corpus the pipeline tests run on (tests/fixtures/corpus) passes the corpus validator, and its rules
give the scenario patient exactly the findings the pipeline tests are written around."""

from __future__ import annotations

from assistant.knowledge import validate_corpus


def test_the_fixture_corpus_passes_the_validator(knowledge):
    report = validate_corpus(knowledge.corpus_dir)
    assert report.ok, [str(e) for e in report.errors]
    assert not report.warnings, [str(w) for w in report.warnings]
    assert report.counts["rules"] == 5 and report.counts["recommendations"] == 6


def test_the_rules_give_the_scenario_one_finding_of_each_kind(engine, scenario_context):
    findings = engine.evaluate(scenario_context())
    assert [(f.rule_id, f.kind, f.therapy) for f in findings] == [
        ("R-CABA", "recommend", "cabazitaxel"),
        ("R-OLA", "consider", "olaparib"),
        ("R-LU", "exclude", "lu177_psma617"),
        ("R-RA", "warn", "radium223"),
        ("R-ASK", "ask", None),
    ]
    assert [f.refs for f in findings] == [["REC-CABA"], ["REC-OLA"], ["REC-LU"], ["REC-RA"], ["REC-GEN"]]


def test_brand_names_and_classes_come_from_the_fixture_lexicon(knowledge):
    lex = knowledge.lexicon
    assert "Pluvicto" in lex.names_of("lu177_psma617") and "Jevtana" in lex.names_of("cabazitaxel")
    assert lex.matches("olaparib", "PARPi") and lex.matches("lu177_psma617", "PSMA_radioligand")
