"""Corpus loader and validator: the real corpus loads; each kind of broken content fails with file:line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.errors import CorpusValidationError
from assistant.knowledge import corpus_version, load_knowledge, main, validate_corpus

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "rules" / "fixtures" / "corpus"

GOOD_RULE = """rules:
  - id: T-NEW
    type: therapy
    therapy: cabazitaxel
    domain: prostate_cancer
    applies_when: {state: [mCRPC]}
    finding: consider
    reason: A reason.
    cite: [DEMO-CABA]
    last_reviewed: 2026-11-29
"""


@pytest.fixture
def corpus(tmp_path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(FIXTURE, dst)
    return dst


def write_rule(corpus: Path, text: str, name: str = "extra.yaml") -> Path:
    path = corpus / "rules" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_real_corpus_is_valid():
    report = validate_corpus(ROOT / "corpus")
    assert report.ok, "\n".join(str(e) for e in report.errors[:20])
    assert report.counts["rules"] > 0 and report.counts["recommendations"] > 0


def test_real_corpus_every_cite_resolves_to_text():
    know = load_knowledge(ROOT / "corpus")
    for rule in know.rules:
        for ref in rule.cite:
            hit = know.resolve(ref)
            assert hit is not None, f"{rule.id}: {ref}"
            if hit.rec_id:
                assert hit.text.strip() and hit.strength and hit.source, ref


def test_fixture_loads_with_counts_and_refs():
    know = load_knowledge(FIXTURE)
    assert know.report.counts["recommendations"] == 6
    assert know.report.counts["rules_therapy"] == 10
    assert know.text_for("DEMO-CABA").startswith("Offer cabazitaxel")
    assert "fractures" in know.text_for("demo-guide#interactions")
    ref = know.resolve("DEMO-RUCA")
    assert ref.unverified and ref.strength == "Conditional Recommendation" and ref.doc_id == "demo-guide"
    assert know.resolve("demo-guide#parp-inhibitors").heading_path == ("Demo guideline", "PARP inhibitors")


def test_version_changes_when_a_file_changes(corpus):
    before = corpus_version(corpus)
    assert before == corpus_version(corpus)
    write_rule(corpus, GOOD_RULE)
    assert corpus_version(corpus) != before


@pytest.mark.parametrize(
    ("rule_text", "line", "message"),
    [
        (
            GOOD_RULE.replace("    reason: A reason.\n", "    reason: A reason.\n    colour: blue\n"),
            9,
            "unknown key",
        ),
        (GOOD_RULE.replace("[DEMO-CABA]", "[DEMO-NOPE]"), 9, "resolves to nothing"),
        (GOOD_RULE.replace("[DEMO-CABA]", "[demo-guide#no-such-heading]"), 9, "no heading with slug"),
        (GOOD_RULE.replace("2026-11-29", "2026-13-40"), 10, "date"),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{stage: [mCRPC]}"), 6, "unknown key"),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{state: [mcrpc]}"), 6, "unknown disease state"),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{progressed_on: docetaxol}"), 6, "not a therapy id or class"),
        (GOOD_RULE.replace("therapy: cabazitaxel", "therapy: cabazitaxol"), 4, "not a therapy id or class"),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{biomarker: {genes: [BRAC2]}}"), 6, "unknown gene"),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{lab: {name: gfr, op: '<', value: 30}}"), 6, "unknown lab"),
        (
            GOOD_RULE.replace("{state: [mCRPC]}", "{calc: {name: chads2, op: '>=', value: 2}}"),
            6,
            "unknown calculator",
        ),
        (GOOD_RULE.replace("{state: [mCRPC]}", "{}"), 6, "empty condition"),
        (GOOD_RULE.replace("finding: consider", "finding: maybe"), 7, "finding"),
        (GOOD_RULE.replace("type: therapy", "type: advice"), 2, "type must be"),
        (
            GOOD_RULE.replace("    finding", "    eligible_when: {state: [mCRPC]}\n    finding"),
            2,
            "ineligible_reason",
        ),
        (GOOD_RULE.replace("    cite: [DEMO-CABA]\n", ""), 2, "cite"),
        (GOOD_RULE.replace("domain: prostate_cancer", "domain: prostate"), 5, "unknown domain"),
        ("rules:\n  - id: X\n    type: therapy\n   bad: [\n", 4, "invalid YAML"),
    ],
)
def test_broken_rule_fails_with_file_and_line(corpus, rule_text, line, message):
    write_rule(corpus, rule_text)
    report = validate_corpus(corpus)
    assert not report.ok
    hit = [e for e in report.errors if message in e.reason]
    assert hit, [str(e) for e in report.errors]
    assert hit[0].path.endswith("rules/extra.yaml")
    assert hit[0].line == line, str(hit[0])
    with pytest.raises(CorpusValidationError) as exc:
        load_knowledge(corpus)
    assert "extra.yaml" in str(exc.value)


def test_duplicate_rule_id_across_files(corpus):
    write_rule(corpus, GOOD_RULE.replace("T-NEW", "T-CABA"))
    errors = validate_corpus(corpus).errors
    assert any("rule id 'T-CABA' already used in" in e.reason for e in errors), errors


def test_ask_fact_must_be_known(corpus):
    write_rule(
        corpus, GOOD_RULE + "    ask_if_unknown:\n      - {fact: 'site:belly', question: 'Where is it?'}\n"
    )
    assert any("unknown site 'belly'" in e.reason for e in validate_corpus(corpus).errors)


DIGEST = """---
id: demo-two
kind: guideline
title: Second demo
sources: [{title: x, url: "https://example.org"}]
last_reviewed: 2026-11-29
---

# Second

## Part

::: recommendation
id: TWO-1
strength: Strong
evidence: A
population: everyone
source: "s1"
---
Text one.
:::
"""


def write_digest(corpus: Path, text: str) -> Path:
    path = corpus / "guidelines" / "demo" / "two.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_second_digest_is_fine(corpus):
    write_digest(corpus, DIGEST)
    assert validate_corpus(corpus).ok


@pytest.mark.parametrize(
    ("digest", "line", "message"),
    [
        (DIGEST.replace("id: TWO-1", "id: DEMO-CABA"), 13, "already used"),
        (DIGEST.replace('source: "s1"\n', ""), 13, "lacks 'source'"),
        (DIGEST.replace("strength: Strong\n", ""), 13, "lacks 'strength'"),
        (DIGEST.replace("## Part", "## Second"), 11, "slug 'second' repeats"),
        (DIGEST.replace("last_reviewed: 2026-11-29", "last_reviewed: someday"), 6, "not an ISO date"),
        (DIGEST.replace("id: demo-two", "id: demo-guide"), 2, "already used by"),
        (DIGEST.replace("id: demo-two", "id: Demo_Two"), 2, "must match"),
        (DIGEST.replace("title: Second demo\n", ""), 1, "lacks required key 'title'"),
        (DIGEST.replace("Text one.\n:::\n", "Text one.\n"), 13, "never closed"),
        (DIGEST.replace("kind: guideline", "kind: label"), 1, "needs 'drug:'"),
    ],
)
def test_broken_digest_fails_with_file_and_line(corpus, digest, line, message):
    write_digest(corpus, digest)
    errors = validate_corpus(corpus).errors
    hit = [e for e in errors if message in e.reason]
    assert hit, [str(e) for e in errors]
    assert hit[0].path.endswith("guidelines/demo/two.md") and hit[0].line == line, str(hit[0])


def test_unknown_front_matter_key_is_a_warning_not_an_error(corpus):
    write_digest(corpus, DIGEST.replace("kind: guideline", "kind: guideline\nreviewer: Dr X"))
    report = validate_corpus(corpus)
    assert report.ok and any("reviewer" in w.reason for w in report.warnings)


def test_lexicon_duplicate_name(corpus):
    lex = corpus / "lexicon" / "therapies.yaml"
    lex.write_text(lex.read_text() + "  - {id: other, classes: [X], names: [Zytiga]}\n", encoding="utf-8")
    assert any("'Zytiga'" in e.reason and "already maps" in e.reason for e in validate_corpus(corpus).errors)


def test_cli_report_and_exit_codes(corpus, capsys):
    assert main([str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "recommendation blocks: 6" in out and "therapy 10, warning 2, question 2" in out
    write_rule(corpus, GOOD_RULE.replace("[DEMO-CABA]", "[NOPE]"))
    assert main([str(corpus)]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_module_runs_as_script(corpus):
    proc = subprocess.run(
        [sys.executable, "-m", "assistant.knowledge", str(corpus)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 error(s)" in proc.stdout


def test_nested_condition_typo_points_at_its_own_line(corpus):
    rule = GOOD_RULE.replace(
        "    finding: consider\n",
        "    eligible_when:\n      all:\n        - received: docetaxel\n        - progressed_on: abirateron\n"
        "    ineligible_reason: Needs both.\n    finding: consider\n",
    )
    write_rule(corpus, rule)
    hit = [e for e in validate_corpus(corpus).errors if "abirateron" in e.reason]
    assert hit and hit[0].line == 10, [str(e) for e in hit]
