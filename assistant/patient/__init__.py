"""The patient stage: a clinician's question and earlier user turns → a `PatientContext` (no model needed).

Read the modules in data-flow order:

1. `vocab`     — corpus/lexicon/clinical.yaml compiled into the clinical vocabulary (conditions, sites,
                 biomarkers, anticancer and line classes, the lab table with units and conversion factors)
2. `extract`   — one user turn → `facts.TurnFacts`, using the shared grammar in `clauses` (clauses, negation
                 scope) and the readers `therapies`, `markers`, `labs`, and the safety readers `pregnancy`,
                 `allergies`, `conditions`, `prostate`, `care`
3. `merge`     — turns folded in order; a later statement replaces an earlier one and is listed in `changes`
4. `infer`     — cross-fact inference (disease state, castration, CKD, safety-fact consequences), each with a note
5. `focus`     — what the question is about
6. `context`   — `extract_context`, the one call the pipeline makes (it also adds the oncology context)
"""

from assistant.patient.context import LLMExtractor, describe, extract_context
from assistant.patient.extract import PatientExtractor
from assistant.patient.facts import SafetyFacts, TurnFacts, trimester_of
from assistant.patient.infer import castration_of
from assistant.patient.vocab import ClinicalVocab, load_clinical_vocab

__all__ = [
    "ClinicalVocab",
    "LLMExtractor",
    "PatientExtractor",
    "SafetyFacts",
    "TurnFacts",
    "castration_of",
    "describe",
    "extract_context",
    "load_clinical_vocab",
    "trimester_of",
]
