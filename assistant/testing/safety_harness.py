"""The safety invariant as code: "a drug the patient's own facts contraindicate is never offered".

Building blocks for tests/safety (and for scripts that want the same counts):

* `rule_goals(rule)` — the goals that make a therapy rule fire (scope and prerequisites TRUE, every
  exclusion FALSE, not already progressed on the same therapy);
* `contra_facts(knowledge, drug)` — every fact that contraindicates a drug: each `contraindicated`
  check of each safety profile covering it, plus the implicit allergy to the drug and to each of its
  profiles' allergen classes;
* `CorpusRetriever` — a retriever over the shipped corpus text (no index): the passages behind any
  reference, and, as "search hits", the rule's own passages and the drug's label sections — passages
  that name the drug, so an answer that lists retrieved passages as options is caught;
* `offer_violations(...)` — every place an answer still offers a drug: a recommend/consider finding,
  the plan's must-mention list, the Bottom line's lead or the Options section's option names and quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.knowledge import Condition, CorpusRef, Knowledge, Lexicon, TherapyRule
from assistant.models import Citation, Finding, PatientContext, RetrievedPassage
from assistant.testing.patients import Goal, PatientSolver

OFFER_KINDS = ("recommend", "consider")
ALLERGY_SEVERITIES = ("severe", "non-severe", "unknown")  # every severity but "intolerance" contraindicates


# ------------------------------------------------------------------ rules → goals
def components(therapy: str) -> list[str]:
    """The drugs of a therapy id: itself, or each part of a `+` regimen."""
    return [p for p in therapy.split("+") if p]


def offered_drugs(rule: TherapyRule) -> list[str]:
    """The drugs a rule's finding offers by name: the components of its therapy."""
    return components(rule.therapy)


def partner_drugs(rule: TherapyRule, lexicon: Lexicon) -> list[str]:
    """Other drugs the rule lists in `drugs` (given with it, or alternatives its reason names)."""
    own = set(offered_drugs(rule))
    out: list[str] = []
    for d in rule.drugs:
        for part in components(d):
            if part not in own and part not in out and part in lexicon.entries:
                out.append(part)
    return out


def rule_goals(rule: TherapyRule, *, scope_only: bool = False) -> list[Goal]:
    """Goals under which `rule` fires: applies_when and eligible_when TRUE, each exclusion FALSE.

    `scope_only` keeps just applies_when (the rule speaks about this patient, whatever it says)."""
    goals: list[Goal] = []
    if rule.applies_when is not None:
        goals.append(Goal(rule.applies_when, True))
    if scope_only:
        return goals
    if rule.eligible_when is not None:
        goals.append(Goal(rule.eligible_when, True))
    goals.extend(Goal(ex.when, False) for ex in rule.exclusions)
    if not rule.repeat_after_progression:
        # The engine never repeats a therapy the disease progressed on.
        goals.append(Goal(Condition.model_validate({"progressed_on": rule.therapy}), False))
    return goals


def fires(findings: Iterable[Finding], rule: TherapyRule) -> bool:
    return any(f.rule_id == rule.id and f.kind in OFFER_KINDS for f in findings)


# ------------------------------------------------------------------ contraindicating facts
@dataclass(frozen=True)
class ContraFact:
    """One fact that contraindicates `drug`: a profile's contraindication check, or an allergy."""

    drug: str
    profile_id: str
    check_id: str
    when: Condition | None = None  # the check's condition (None: the allergy below)
    allergen: str | None = None  # what the patient is allergic to (the drug or an allergen class)

    @property
    def label(self) -> str:
        return f"{self.profile_id}.{self.check_id}"

    def goals(self) -> list[Goal]:
        return [] if self.when is None else [Goal(self.when, True)]

    def apply(self, solver: PatientSolver, ctx: PatientContext, severity: str = "severe") -> list[PatientContext]:
        """Patients = `ctx` plus this fact (several ways when the solver finds several), [] if impossible."""
        if self.allergen is not None:
            return [solver.allergic(ctx, self.allergen, severity)]
        return list(_take(solver.solutions(self.goals(), base=ctx), 4))


def _take(it: Iterable[Any], n: int) -> Iterable[Any]:
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


def contra_facts(knowledge: Knowledge, drug: str) -> list[ContraFact]:
    """Every contraindicating fact for `drug` from its safety profiles (none for a drug without a profile)."""
    profiles = knowledge.profiles_for(drug) if hasattr(knowledge, "profiles_for") else []
    out: list[ContraFact] = []
    if not profiles:
        return out
    # The implicit check every profile carries: hypersensitivity to the drug or an allergen class.
    allergens = [drug, *dict.fromkeys(c for p in profiles for c in p.allergen_classes)]
    for a in allergens:
        out.append(ContraFact(drug, profiles[0].id, f"allergy-to-{a}", allergen=a))
    for p in profiles:
        for chk in p.contraindicated:
            out.append(ContraFact(drug, p.id, chk.id, when=chk.when))
    return out


# ------------------------------------------------------------------ a retriever over the corpus text
def passage_of(ref: CorpusRef, score: float = 1.0) -> RetrievedPassage:
    return RetrievedPassage(
        chunk_id=f"ref:{ref.ref}",
        doc_id=ref.doc_id,
        text=ref.text,
        title=ref.doc_title,
        section_path=" › ".join(ref.heading_path),
        rec_id=ref.rec_id,
        strength=ref.strength,
        evidence=ref.evidence,
        population=ref.population,
        kind=ref.kind,
        url=ref.url,
        unverified=ref.unverified,
        last_reviewed=ref.last_reviewed,
        score=score,
        relevance=score,
    )


class CorpusRetriever:
    """Passages straight from `Knowledge.sections_by_ref`; `hits` are what `retrieve` returns (set per question)."""

    def __init__(self, knowledge: Knowledge, hits: Sequence[str] = ()) -> None:
        self.knowledge = knowledge
        self.hits = list(hits)

    def retrieve(self, query: str, k: int | None = None, filters: Mapping[str, Any] | None = None) -> list[RetrievedPassage]:
        refs = self.knowledge.sections_by_ref
        found = [passage_of(refs[r], 1.0 - i * 0.01) for i, r in enumerate(self.hits) if r in refs and refs[r].text]
        return found[: k or 6]

    def passages_for_refs(self, refs: Sequence[str]) -> dict[str, list[RetrievedPassage]]:
        known = self.knowledge.sections_by_ref
        return {r: [passage_of(known[r])] for r in refs if r in known and known[r].text}


def hits_naming(knowledge: Knowledge, rule: TherapyRule, drug: str, limit: int = 6) -> list[str]:
    """Search hits that name the drug: the rule's own citations, then the drug's label blocks."""
    out = [r for r in rule.cite if knowledge.text_for(r)]
    for ref, cref in knowledge.sections_by_ref.items():
        digest = knowledge.digests.get(cref.doc_id)
        if digest is not None and digest.kind == "label" and str(digest.meta.get("drug", "")) == drug and cref.rec_id:
            out.append(ref)
        if len(out) >= limit:
            break
    return list(dict.fromkeys(out))[:limit]


# ------------------------------------------------------------------ where an answer offers a drug
def drug_names(lexicon: Lexicon, drug: str) -> list[str]:
    """Every name of `drug`, plus the names of lexicon regimens that contain it (≥ 3 characters)."""
    names = list(lexicon.names_of(drug))
    for tid in lexicon.entries:
        if "+" in tid and drug in tid.split("+"):
            names.extend(lexicon.names_of(tid))
    names.append(drug.replace("_", " "))
    return [n for n in dict.fromkeys(names) if len(n) >= 3]


def _pattern(names: Iterable[str]) -> re.Pattern[str]:
    alts = sorted({n.lower() for n in names}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(a) for a in alts) + r")(?![\w-])", re.IGNORECASE)


def sections(markdown: str) -> dict[str, str]:
    """The answer's `## ` sections by heading (text up to the next heading)."""
    out: dict[str, str] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        elif title:
            out[title] += line + "\n"
    return out


_NOTE = re.compile(r"^\s*_.*_\s*$")  # an italic line is a note about the answer ("Excluded by the rule checks: …")
_QUOTE = re.compile(r"“([^”]*)”")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def offer_segments(markdown: str, titles: Sequence[str] = ("Bottom line", "Options that fit this patient")) -> list[str]:
    """The parts of an answer that put a drug forward as an option.

    Bottom line: its lead clause (up to the first ':') and any quoted passage; Options: each option's
    bold name and any quoted passage. A reason that mentions another drug ("after docetaxel") is not an
    offer of it; a quoted passage listed as an option is."""
    secs = sections(markdown)
    out: list[str] = []
    bottom = secs.get(titles[0], "")
    for line in bottom.splitlines():
        if not line.strip() or _NOTE.match(line):
            continue
        out.extend(_QUOTE.findall(line))
        out.append(_QUOTE.sub("", line).split(":", 1)[0])
    for line in secs.get(titles[1], "").splitlines():
        if not line.strip() or _NOTE.match(line):
            continue
        out.extend(_BOLD.findall(line))
        out.extend(_QUOTE.findall(line))
    return [s for s in out if s.strip()]


_QUOTE_CITED = re.compile(r"“([^”]*)”\s*((?:\[\d+\]\s*)+)")


def quoted_options(markdown: str, titles: Sequence[str] = ("Bottom line", "Options that fit this patient")) -> list[tuple[str, list[int]]]:
    """Passages quoted as options (Bottom line lead, Options bullets) with the citation numbers after them."""
    secs = sections(markdown)
    out: list[tuple[str, list[int]]] = []
    for title in titles:
        for line in secs.get(title, "").splitlines():
            if _NOTE.match(line):
                continue
            for quote, marks in _QUOTE_CITED.findall(line):
                out.append((quote, [int(n) for n in re.findall(r"\d+", marks)]))
    return out


def label_drug(knowledge: Knowledge, doc_id: str) -> list[str]:
    """The drugs a label digest is about ([] for any other document).

    The label-safety documents rendered from the profiles are left out: their passages state why a drug
    is contraindicated, which is evidence against it, not an offer of it."""
    digest = knowledge.digests.get(doc_id)
    if digest is None or digest.kind != "label" or doc_id in _safety_doc_ids(knowledge):
        return []
    return components(str(digest.meta.get("drug", "")))


def _safety_doc_ids(knowledge: Knowledge) -> set[str]:
    try:
        from ingest.safety_docs import doc_id_for
    except ImportError:  # no rendered label-safety documents in this version
        return set()
    return {doc_id_for(p.id) for p in getattr(knowledge, "safety_profiles", [])}


def option_items(markdown: str, title: str = "Options that fit this patient") -> list[str]:
    """Each line of the Options section (one option per numbered line)."""
    return [ln for ln in sections(markdown).get(title, "").splitlines() if ln.strip() and not _NOTE.match(ln)]


def offered_in_findings(findings: Iterable[Finding], drug: str) -> list[str]:
    return [f.rule_id for f in findings if f.kind in OFFER_KINDS and f.therapy and drug in components(f.therapy)]


def offer_violations(
    drug: str,
    knowledge: Knowledge,
    findings: Sequence[Finding],
    *,
    must_mention: Sequence[str] = (),
    markdown: str = "",
    citations: Sequence[Citation] = (),
) -> list[str]:
    """Every place the drug is still offered (empty = the invariant holds)."""
    out: list[str] = []
    rules = offered_in_findings(findings, drug)
    if rules:
        out.append(f"offered by finding(s) {', '.join(rules)}")
    mm = [t for t in must_mention if drug in components(t)]
    if mm:
        out.append(f"in the plan's must_mention: {', '.join(mm)}")
    if markdown and citations:
        # A passage from the drug's own label listed as an option offers the drug even without naming it
        # ("Immediate release: start 500 mg twice daily …" from the metformin label).
        by_number = {c.number: c for c in citations}
        for quote, numbers in quoted_options(markdown):
            for n in numbers:
                cit = by_number.get(n)
                if cit is not None and drug in label_drug(knowledge, cit.doc_id):
                    out.append(f"a passage of its label ({cit.doc_id}) quoted as an option: {quote[:120]!r}")
    if markdown:
        pat = _pattern(drug_names(knowledge.lexicon, drug))
        for seg in offer_segments(markdown):
            m = pat.search(seg)
            if m:
                out.append(f"named as an option in the answer text: {seg.strip()[:140]!r}")
    return out


def partner_violations(
    drug: str, knowledge: Knowledge, findings: Sequence[Finding], markdown: str
) -> list[str]:
    """A partner drug (named in a rule's `drugs`) still put forward inside an offered option's text."""
    rules = knowledge.rules_by_id
    pat = _pattern(drug_names(knowledge.lexicon, drug))
    out: list[str] = []
    for f in findings:
        rule = rules.get(f.rule_id)
        if f.kind not in OFFER_KINDS or not isinstance(rule, TherapyRule):
            continue
        if drug not in partner_drugs(rule, knowledge.lexicon):
            continue
        for item in option_items(markdown):
            if f.reason.strip()[:40] in item and pat.search(item):
                out.append(f"{f.rule_id} still lists {drug} in its option: {item.strip()[:160]!r}")
    return out


# ------------------------------------------------------------------ loading
ALLOW_INVALID_ENV = "GUIDERAIL_SAFETY_ALLOW_INVALID"


def load_for_safety(corpus_dir: Any) -> Knowledge:
    """The corpus for the generator: validated (CI), or — with GUIDERAIL_SAFETY_ALLOW_INVALID=1, for corpus
    writers mid-edit — whatever loads, so the invariant can be checked before the last profile is written."""
    import os

    from assistant.knowledge import _build, load_knowledge

    if os.environ.get(ALLOW_INVALID_ENV) == "1":
        return _build(corpus_dir)[0]
    return load_knowledge(corpus_dir)
