"""Question text → `TumourContext`: tumour type (full names, organ words, or "another solid cancer"), histology,
setting, line and earlier treatment classes; the biomarker results come from `assistant.oncology.markers`.

Vocabulary comes from corpus/lexicon/oncology.yaml (`OncologyVocab`); the patterns here are the grammar of how
settings and lines are written ("stage IVA", "after concurrent chemoradiation", "not previously treated",
"relapsed 8 months into adjuvant letrozole"), not a list of cases. Rule-based and deterministic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from assistant.models import TherapyExposure, TumourContext
from assistant.oncology.markers import (
    _DRIVERS,
    _EXPRESSION,
    _bare_variants,
    _clauses,
    _implied,
    extract_markers,
)
from assistant.oncology.vocab import OncologyVocab

__all__ = ["extract_markers", "extract_tumour"]

# ------------------------------------------------------------------ line of therapy and setting
_FIRST_LINE = re.compile(
    r"first[- ]line|\b1L\b|frontline|front-line|treatment[- ]na[iï]ve|previously untreated|not previously treated|untreated|"
    r"no prior (?:systemic |anticancer )?(?:therapy|treatment)|not (?:yet )?(?:been )?treated|newly diagnosed|"
    r"initial (?:systemic )?(?:therapy|treatment)",
    re.I,
)
_LATER_LINE = re.compile(
    r"second[- ]line|third[- ]line|later[- ]line|\b[2-4]L\b|previously treated|pre-?treated|after progression|"
    r"progress(?:ed|ion|ing)\s+(?:on|after|following|during|despite)|refractory|relapsed|after (?:at least )?(?:one|1|two|2)\s+"
    r"(?:prior )?(?:lines?|regimens?)|prior (?:lines?|regimens?|systemic)|failed|resistan(?:t|ce) to|"
    r"intoleran(?:t|ce) (?:of|to)|(?:after|following|post)[- ](?:\w+[- ]){0,3}(?:chemo|therapy|treatment|inhibitor|TKI|FOLFOX|"
    r"FOLFIRI|CAPOX|platinum|immunotherapy)",
    re.I,
)
# "not previously treated with systemic therapy", "no prior lines": these name the first line, not a later one
_NEGATED_LINE = re.compile(
    r"\b(?:not|no|never|without)\s+(?:\w+\s+){0,2}?(?:previously treated|pretreated|prior (?:lines?|regimens?|systemic"
    r"|therapy|treatment)|progress\w*|received|failed)",
    re.I,
)
@functools.cache
def _history() -> re.Pattern[str]:
    """Words before a therapy class that say it was given (corpus/lexicon/cues.yaml, ``oncology_prior_therapy``).
    Compiled on first use: the patient package, which owns the cue reader, imports this module."""
    from assistant.patient.vocab import load_cues

    return load_cues().compile(r"\b{w}\b", w="oncology_prior_therapy")
_CURRENT_ADVANCED = ("metastatic", "recurrent", "advanced", "locally_advanced", "unresectable", "relapsed_refractory")
_EARLY = ("adjuvant", "neoadjuvant", "perioperative", "early")
_HAEM = frozenset({"aml", "acute_leukemia", "mds", "cml", "all", "cll", "myelofibrosis", "polycythemia_vera", "systemic_mastocytosis",
                   "follicular_lymphoma", "histiocytosis", "hairy_cell_leukemia"})


_CANCER_WORD = re.compile(
    r"\b(?:cancer|carcinoma|adenocarcinoma|tumou?r|malignancy|neoplasm|\w*sarcoma|\w*blastoma|mesothelioma)s?\b", re.I
)


def _organ_tumour(text: str, vocab: OncologyVocab) -> str | None:
    """'<organ word> … carcinoma' when no full tumour name matched."""
    for tumour, words in vocab.organs.items():
        for w in words:
            if re.search(rf"\b{re.escape(w)}\b(?:[\s-]+\w+){{0,3}}?[\s-]+(?:cancer|carcinoma|adenocarcinoma|tumou?r|malignancy)", text, re.I):
                return tumour
    # an organ's own operation ("after a right lower lobectomy … adenocarcinoma") names the organ wherever it stands
    if _CANCER_WORD.search(text):
        for tumour, words in vocab.organs.items():
            if any(w.endswith("ectomy") and re.search(rf"\b{re.escape(w)}\b", text, re.I) for w in words):
                return tumour
    return None


def _tumour(text: str, vocab: OncologyVocab) -> str | None:
    hits = vocab.find("tumours", text)
    if not hits:
        organ = _organ_tumour(text, vocab)
        if organ:
            return organ
        if _CANCER_WORD.search(text) and "other_solid" in vocab.tumours and not re.search(
            r"leuk|lymphom|myelom|myelo|mastocyt", text, re.I
        ):
            return "other_solid"  # a cancer the vocabulary does not name: tumour-agnostic approvals still apply
        return None
    # the tumour the question is about: the last sentence naming one, else the first named
    last_q = [h for h in hits if "?" in text[h[1] :][:300]]
    specific = [h for h in hits if h[2] != "solid_tumour"]
    pool = specific or hits
    for h in pool:
        if h in last_q:
            return h[2]
    return pool[0][2]


def _settings(text: str, vocab: OncologyVocab, tumour: str | None) -> list[str]:
    found = [h[2] for h in vocab.find("settings", text)]
    low = text.lower()
    # "after chemoradiation" without stage III in a metastatic patient is history, not the current setting
    if (
        not re.search(r"stage\s*(?:iii|3)[abc]?\b", low)
        and "stage3_unresectable_post_crt" in found
        and any(s in found for s in ("metastatic", "recurrent"))
    ):
        found = [s for s in found if s != "stage3_unresectable_post_crt"]
    if re.search(r"\bstage\s*(?:iv|4)[abc]?\b", low):
        found.append("metastatic")
    if (
        re.search(r"\bstage\s*(?:iii|3)[abc]?\b", low)
        and re.search(r"\b\d{2}\s*gy\b|radiation|radiotherapy|chemoradi", low)
        and re.search(r"concurrent|sequential|chemoradi|platinum|carboplatin|cisplatin", low)
        and not re.search(r"\bmetasta", low)
    ):
        found.append("stage3_unresectable_post_crt")
    if re.search(r"\blocally advanced\b", low):
        found = [s for s in found if s != "advanced" or "locally_advanced" not in found]
    out = list(dict.fromkeys(found))
    advanced_now = [s for s in out if s in _CURRENT_ADVANCED and s != "locally_advanced"] or (
        ["locally_advanced"] if "locally_advanced" in out else []
    )
    if "stage3_unresectable_post_crt" in out and not [s for s in out if s in ("metastatic", "recurrent")]:
        return ["stage3_unresectable_post_crt"]
    if advanced_now:
        # earlier curative-intent treatment ("adjuvant FOLFOX three years ago") is history once disease is advanced
        out = [s for s in out if s not in _EARLY]
    if tumour in _HAEM and "relapsed_refractory" in out:
        out = [s for s in out if s != "newly_diagnosed"]
    if tumour not in _HAEM:
        # 'newly diagnosed' says the line (first), not the stage, for a solid tumour
        out = [s for s in out if s != "newly_diagnosed"]
    if "maintenance" in out and "advanced" not in out and not advanced_now:
        out.append("advanced")
    return out


def _histology(text: str, vocab: OncologyVocab, tumour: str | None) -> list[str]:
    hist = [h[2] for h in vocab.find("histologies", text)]
    if tumour == "nsclc" and "squamous" in hist and re.search(r"non-?squamous", text, re.I):
        hist = [h for h in hist if h != "squamous"]
    return list(dict.fromkeys(hist))


def _prior_classes(text: str, vocab: OncologyVocab) -> list[str]:
    out: list[str] = []
    for _off, clause in _clauses(text):
        words = vocab.find("therapy_words", clause)
        if not words:
            continue
        for start, _end, phrase, _w in words:
            lead = clause[max(0, start - 80) : start]
            if re.search(r"\b(?:no|not|never|without|nor|naive to|na[iï]ve)\b(?:\s+\w+){0,3}\s*$", lead, re.I):
                continue  # "has had no systemic therapy"
            if _history().search(lead) or re.search(r"\b(?:progress|refractory|failed|relapsed)", clause[start:], re.I):
                out.extend(vocab.therapy_words.get(phrase, ()))
    return list(dict.fromkeys(out))


def extract_tumour(
    text: str, vocab: OncologyVocab, exposures: Iterable[TherapyExposure] = (), antineoplastic: Iterable[str] = ()
) -> TumourContext | None:
    """The oncology facts of a question (None when it names no tumour type and no tumour marker)."""
    tumour = _tumour(text, vocab)
    markers, no_other = extract_markers(text, vocab)
    if tumour is None and not markers:
        return None
    if tumour is None and not any(m.marker in _DRIVERS | _EXPRESSION | {"MSI", "MMR", "TMB"} for m in markers):
        return None
    markers = _implied(markers, tumour, vocab, text)
    markers = _bare_variants(markers, vocab, text)
    for fam, members in vocab.families.items():
        # "RAS (KRAS/NRAS exons 2-4) wild-type": every member negative makes the family negative
        got = {m.marker: m for m in markers}
        if fam in got and all(got.get(x) is not None and got[x].status == "negative" for x in members):
            got[fam].status, got[fam].alteration = "negative", ""
    settings = _settings(text, vocab, tumour)
    solid = tumour not in _HAEM
    if solid and "relapsed_refractory" in settings:
        # a solid tumour that "relapsed" has recurred; R/R is haematology's setting word
        settings = [s for s in settings if s != "relapsed_refractory"] + (["recurrent"] if "recurrent" not in settings else [])
    advanced = any(s in _CURRENT_ADVANCED for s in settings)
    # Treatment given with curative intent (adjuvant letrozole, neoadjuvant chemotherapy) is not a line for
    # advanced disease: "relapsed 8 months into adjuvant letrozole" is still first line for metastatic disease.
    curative = [cl for _o, cl in _clauses(text) if re.search(r"adjuvant|perioperative|after surgery|curative", cl, re.I)]
    clause_text = [cl for _o, cl in _clauses(text) if cl not in curative] if advanced else [text]
    priors = _prior_classes(" ".join(clause_text) if advanced else text, vocab)
    onc = set(antineoplastic)

    def in_curative_clause(e: TherapyExposure) -> bool:
        words = (e.mention or e.therapy.replace("_", " ")).lower()
        return advanced and any(words and words in cl.lower() for cl in curative)

    def only_considered(e: TherapyExposure) -> bool:
        """'fit for bevacizumab', 'is osimertinib an option?': named, not given."""
        words = (e.mention or e.therapy.replace("_", " ")).lower()
        low = text.lower()
        at = low.find(words) if words else -1
        if at < 0:
            return False
        lead = low[max(0, at - 40) : at]
        clause_end = re.search(r"[.;\n]", low[at:])
        tail = low[at : at + (clause_end.start() if clause_end else len(low))]
        return bool(
            re.search(r"fit for|candidate for|eligible for|suitable for|consider|plan(?:ned)? |would|could|should|"
                      r"whether|which|what|option|approved|or\s*$", lead)
            or "?" in tail
        )

    treated = [
        e
        for e in exposures
        if e.status != "planned"
        and (e.therapy in onc or set(e.classes) & {"antineoplastic"})
        and not in_curative_clause(e)
        and not only_considered(e)
    ]
    line_text = _NEGATED_LINE.sub(" ", " ".join(clause_text))
    later_words = _LATER_LINE.search(line_text)
    if later_words and solid and re.fullmatch(r"relapsed|refractory", later_words.group(0), re.I) and not treated and not priors:
        later_words = None
    line: str | None = None
    if later_words or treated or priors:
        line = "later"
    elif _FIRST_LINE.search(text):
        line = "first"
    if line == "later" and _FIRST_LINE.search(text) and not treated and not priors and not re.search(
        r"progress|refractory|relapsed|second|third|previously treated|pretreated", text, re.I
    ):
        line = "first"
    if "relapsed_refractory" in settings and not solid:
        line = "later"
    ctx = TumourContext(
        tumour=tumour,
        histology=_histology(text, vocab, tumour),
        settings=settings,
        line=line,  # type: ignore[arg-type]
        markers=markers,
        no_other_drivers=no_other,
    )
    if priors:
        ctx = ctx.model_copy(update={"prior_classes": priors})
    return ctx
