"""The knowledge stage: load and validate the shipped corpus — digests, labels, rule records, the therapy
lexicon, clinical vocabulary, drug safety profiles and oncology approvals.

`load_knowledge(corpus_dir)` returns a `Knowledge` (rules as typed records, the lexicon, every
recommendation block and section by reference) or raises `CorpusValidationError` naming the file
and line of the first problem (all problems are attached as `.errors`). `validate_corpus` returns
the full report without raising; `python -m assistant.knowledge [corpus_dir]` prints it and exits
non-zero on errors — the corpus writers run it after every edit.

Inside the package, in data-flow order: `schema` (record format and condition language), `yaml_lines`
(YAML with line numbers), `lexicon` (therapy names and classes), `loaders` (each corpus file kind),
`validate` (cross-reference checks, the printed report), `review` (the clinician review sheet).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import CorpusValidationError
from assistant.knowledge.lexicon import Lexicon, _load_lexicon, load_lexicon
from assistant.knowledge.loaders import (
    _load_approvals,
    _load_clinical,
    _load_digest,
    _load_rule_file,
    _load_safety,
    corpus_files,
    corpus_version,
)
from assistant.knowledge.records import CorpusRef, Digest, Problem, ValidationReport
from assistant.knowledge.schema import (
    ALLERGY_SEVERITIES,
    CALCULATORS,
    CHILD_PUGH,
    COMORBIDITIES,
    DIABETES_TYPES,
    DIAGNOSES,
    DISEASE_STATES,
    GENES,
    IMAGING,
    INFECTION_SITES,
    LAB_NAMES,
    ORIGINS,
    PHASES,
    PRESENTATIONS,
    RESULTS,
    SCALAR_FACTS,
    SITES,
    ULN_LABS,
    VISCERAL_SITES,
    VOLUMES,
    AllergyCond,
    AskItem,
    BiomarkerCond,
    CalcCond,
    Compare,
    Condition,
    Exclusion,
    LabCond,
    LexiconEntry,
    Op,
    QuestionRule,
    ResistanceCond,
    Rule,
    SafetyCheck,
    SafetyProfile,
    TherapyRule,
    UlnCond,
    WarningRule,
    offered_drugs,
)
from assistant.knowledge.validate import _check_rule_refs, _check_safety_coverage, format_report
from assistant.oncology.records import Approval
from assistant.oncology.vocab import OncologyVocab

__all__ = [
    "ALLERGY_SEVERITIES",
    "CALCULATORS",
    "CHILD_PUGH",
    "COMORBIDITIES",
    "DIABETES_TYPES",
    "DIAGNOSES",
    "DISEASE_STATES",
    "GENES",
    "IMAGING",
    "INFECTION_SITES",
    "LAB_NAMES",
    "ORIGINS",
    "PHASES",
    "PRESENTATIONS",
    "RESULTS",
    "SCALAR_FACTS",
    "SITES",
    "ULN_LABS",
    "VISCERAL_SITES",
    "VOLUMES",
    "AllergyCond",
    "AskItem",
    "BiomarkerCond",
    "CalcCond",
    "Compare",
    "Condition",
    "CorpusRef",
    "Digest",
    "Exclusion",
    "Knowledge",
    "LabCond",
    "Lexicon",
    "LexiconEntry",
    "Op",
    "Problem",
    "QuestionRule",
    "ResistanceCond",
    "Rule",
    "SafetyCheck",
    "SafetyProfile",
    "TherapyRule",
    "UlnCond",
    "ValidationReport",
    "WarningRule",
    "corpus_files",
    "corpus_version",
    "format_report",
    "load_knowledge",
    "load_lexicon",
    "main",
    "offered_drugs",
    "validate_corpus",
]

log = logging.getLogger(__name__)


@dataclass
class Knowledge:
    """Everything the rule engine and the citation renderer need from the corpus."""

    corpus_dir: Path
    rules: list[Rule]
    lexicon: Lexicon
    digests: dict[str, Digest]
    sections_by_ref: dict[str, CorpusRef]
    version: str
    report: ValidationReport
    safety_profiles: list[SafetyProfile] = field(default_factory=list)
    conditions: tuple[str, ...] = DIAGNOSES
    reference_uln: dict[str, float] = field(default_factory=dict)
    non_gene_markers: tuple[str, ...] = ()  # clinical.yaml biomarkers.non_gene: reported positive, not pathogenic
    approvals: list[Approval] = field(default_factory=list)
    oncology: OncologyVocab | None = None
    _profile_cache: dict[str, list[SafetyProfile]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def profiles_for(self, drug: str) -> list[SafetyProfile]:
        """Every safety profile covering a therapy id (by id or by one of its classes); [] when none."""
        hit = self._profile_cache.get(drug)
        if hit is None:
            hit = [
                p for p in self.safety_profiles if any(self.lexicon.matches(drug, tok) for tok in p.applies_to)
            ]
            self._profile_cache[drug] = hit
        return hit

    def text_for(self, ref: str) -> str:
        """The statement or section text a reference points to ('' when unknown)."""
        hit = self.sections_by_ref.get(ref)
        return hit.text if hit else ""

    def resolve(self, ref: str) -> CorpusRef | None:
        return self.sections_by_ref.get(ref)

    def is_unverified(self, refs: Iterable[str]) -> bool:
        return any(self.sections_by_ref[r].unverified for r in refs if r in self.sections_by_ref)


def _build(corpus_dir: Path) -> tuple[Knowledge, ValidationReport]:
    corpus_dir = Path(corpus_dir).resolve()
    report = ValidationReport()
    if not corpus_dir.is_dir():
        report.errors.append(Problem(str(corpus_dir), None, "corpus folder does not exist"))
        return Knowledge(corpus_dir, [], Lexicon(), {}, {}, "", report), report
    lexicon = _load_lexicon(corpus_dir, report)
    conditions, reference_uln, non_gene_markers = _load_clinical(corpus_dir, report)
    # the patient stage owns the cue reader (imported here, late: it imports this package)
    from assistant.patient.vocab import check_cues

    report.errors.extend(Problem("lexicon/cues.yaml", None, p) for p in check_cues(corpus_dir))
    context = {"conditions": conditions, "non_gene_markers": non_gene_markers}
    refs: dict[str, CorpusRef] = {}
    digests: dict[str, Digest] = {}
    md_files = sorted((corpus_dir / "guidelines").rglob("*.md")) + sorted(
        (corpus_dir / "labels").rglob("*.md")
    )
    for path in md_files:
        _load_digest(path, corpus_dir, report, refs, digests, lexicon)
    profiles = _load_safety(corpus_dir, report, lexicon, refs, digests, context)
    approvals, onc_vocab = _load_approvals(corpus_dir, report, lexicon, refs, digests)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    loaded = []
    for path in sorted((corpus_dir / "rules").rglob("*.y*ml")):
        loaded.extend(_load_rule_file(path, corpus_dir, report, context))
    for rule, raw, rel in loaded:
        line = getattr(raw, "line", 0) or None
        if rule.id in seen:
            report.errors.append(Problem(rel, line, f"rule id {rule.id!r} already used in {seen[rule.id]}"))
            continue
        seen[rule.id] = f"{rel}:{line}"
        _check_rule_refs(rule, raw, rel, refs, lexicon, report)
        if isinstance(rule, TherapyRule):
            ex_ids = [e.id for e in rule.exclusions]
            for dup in {e for e in ex_ids if ex_ids.count(e) > 1}:
                report.errors.append(Problem(rel, line, f"rule {rule.id}: exclusion id {dup!r} repeats"))
        rules.append(rule)
    for t in ("therapy", "warning", "question"):
        report.counts[f"rules_{t}"] = sum(1 for r in rules if r.type == t)
    report.counts["rules"] = len(rules)
    report.counts.setdefault("digests", 0)
    report.counts.setdefault("labels", 0)
    report.counts.setdefault("recommendations", 0)
    _check_safety_coverage(rules, profiles, lexicon, report, approvals)
    know = Knowledge(
        corpus_dir, rules, lexicon, digests, refs, corpus_version(corpus_dir), report,
        safety_profiles=profiles, conditions=conditions, reference_uln=reference_uln,
        non_gene_markers=non_gene_markers,
        approvals=approvals, oncology=onc_vocab,
    )
    return know, report


def validate_corpus(corpus_dir: Path | str) -> ValidationReport:
    """Validate everything and return the report (never raises for content problems)."""
    return _build(Path(corpus_dir))[1]


def load_knowledge(corpus_dir: Path | str) -> Knowledge:
    """Load and validate the corpus; raise `CorpusValidationError` (file:line of the first problem) if invalid."""
    know, report = _build(Path(corpus_dir))
    if report.errors:
        first = report.errors[0]
        more = (
            f" (and {len(report.errors) - 1} more problem(s); run `python -m assistant.knowledge`)"
            if len(report.errors) > 1
            else ""
        )
        exc = CorpusValidationError(first.path, first.line, first.reason + more)
        exc.errors = list(report.errors)  # type: ignore[attr-defined]
        raise exc
    for w in report.warnings:
        log.warning("corpus: %s", w)
    return know


def main(argv: list[str] | None = None) -> int:
    """The command line: validate (default) or write the review sheet; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m assistant.knowledge [CORPUS_DIR]   — validate the corpus and print a report\n"
            "       python -m assistant.knowledge review [--out review.md] [CORPUS_DIR]   — clinician review sheet"
        )
        return 0
    from assistant.settings import PROJECT_ROOT

    if args and args[0] == "review":
        from assistant.knowledge.review import review_sheet

        rest = args[1:]
        out: str | None = None
        if "--out" in rest:
            i = rest.index("--out")
            if i + 1 >= len(rest):
                print("review: --out needs a file name", file=sys.stderr)
                return 2
            out = rest[i + 1]
            rest = rest[:i] + rest[i + 2 :]
        corpus_dir = Path(rest[0]) if rest else PROJECT_ROOT / "corpus"
        try:
            know = load_knowledge(corpus_dir)
        except CorpusValidationError as exc:
            print(f"review: the corpus is invalid — {exc}", file=sys.stderr)
            return 1
        sheet = review_sheet(know)
        if out:
            Path(out).write_text(sheet, encoding="utf-8")
            print(f"wrote {out}: {len(know.rules)} rules, {len(know.safety_profiles)} safety profiles")
        else:
            print(sheet)
        return 0

    corpus_dir = Path(args[0]) if args else PROJECT_ROOT / "corpus"
    report = validate_corpus(corpus_dir)
    print(format_report(report, corpus_dir))
    return 0 if report.ok else 1

