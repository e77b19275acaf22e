"""The patient an FDA approval record was written for (tests of the oncology pack and of its drugs' label checks).

`record_patient` builds the tumour context from the record itself — its tumour (a tumour-agnostic record gets a
solid tumour it does not exclude), histology, setting, line, biomarkers (variant, kind, IHC category or a score
just past the threshold), the earlier therapy it requires and the age it allows — and adds the facts a short
patient text states (comorbidities, diabetes type, Child-Pugh class, labs, medicines, diagnoses)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.models import PatientContext, TherapyExposure, TumourContext, TumourMarker
from assistant.oncology.records import Approval, parse_threshold, token_kind

if TYPE_CHECKING:
    from assistant.knowledge import Knowledge


def record_marker(key: str, value: str, origin: str = "") -> TumourMarker:
    """A tumour marker result that satisfies one biomarker token of a record."""
    kind = token_kind(value)
    m = TumourMarker(marker=key, origin=origin if origin else "unknown")  # type: ignore[arg-type]
    if value in ("negative", "wild_type"):
        m.status = "negative"
    elif kind == "variant":
        m.alteration = {"V600": "V600E", "R132": "R132H"}.get(value, value)
    elif kind == "kind":
        m.alteration = {"uncommon": "G719X"}.get(value, value)
    elif kind == "status":
        m.level = value if value != "positive" or key == "HER2" else ""
        if value == "zero":
            m.status = "negative"
    elif kind == "threshold":
        what, op, bound = parse_threshold(value)  # type: ignore[misc]
        m.score[what] = bound + (1 if op == ">" else 0) - (1 if op in ("<", "<=") else 0)
    return m


def record_patient(knowledge: Knowledge, record: Approval | str, facts: str = "") -> PatientContext:
    """The record's own patient; ``facts`` (patient text) adds comorbidities, medicines, labs and Child-Pugh class."""
    rec = record if isinstance(record, Approval) else next(a for a in knowledge.approvals if a.id == record)
    vocab = knowledge.oncology
    tumour = rec.tumour
    if tumour == "solid_tumour" and vocab is not None:
        tumour = next(t for t, p in vocab.tumour_parent.items() if p == "solid_tumour" and t not in rec.not_tumours)
    markers = [record_marker(k, v[0], rec.origin.get(k, "")) for k, v in rec.biomarkers.items()]
    therapies: list[TherapyExposure] = []
    prior_classes: list[str] = []
    for tok in rec.after[:1]:
        if tok in knowledge.lexicon.entries:
            therapies.append(TherapyExposure(therapy=tok, classes=knowledge.lexicon.classes_of(tok), status="progressed"))
        else:
            prior_classes.append(tok)
    tctx = TumourContext(
        tumour=tumour,
        histology=rec.histology[:1],
        settings=rec.setting[:1],
        line=None if rec.line == "any" else rec.line,  # type: ignore[arg-type]
        markers=markers,
        prior_classes=prior_classes,
    )
    age = rec.age_min if rec.age_min is not None else (min(50.0, rec.age_max) if rec.age_max is not None else 50.0)
    base = PatientContext(tumour=tctx, therapies=therapies, age=int(age), focus=["oncology"])
    if not facts:
        return base
    from assistant.patient import extract_context

    read = extract_context(facts, lexicon=knowledge.lexicon)
    return base.model_copy(
        update={
            "comorbidities": read.comorbidities,
            "diabetes_type": read.diabetes_type,
            "child_pugh": read.child_pugh,
            "labs": read.labs,
            "therapies": therapies + list(read.therapies),
            "diagnoses": list(read.diagnoses),
        }
    )
