"""The oncology part of the patient context: tumour facts read from the turns, merged over what earlier turns said,
and the question's focus. Called by the patient-context extractor after the general facts are read."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assistant.models import PatientContext, TumourContext
from assistant.oncology.extract import extract_tumour
from assistant.oncology.vocab import OncologyVocab

if TYPE_CHECKING:
    from assistant.knowledge import Lexicon


def with_tumour(ctx: PatientContext, turns: list[str], vocab: OncologyVocab | None, lexicon: Lexicon) -> PatientContext:
    """Oncology facts (tumour, setting, line, biomarkers) on top of what the earlier turns established."""
    if vocab is None or not turns:
        return ctx
    joined = "\n".join(turns)
    if "prostate_cancer" in ctx.diagnoses:
        named = [h for h in vocab.find("tumours", joined) if h[2] != "solid_tumour"]
        if not named or re.search(r"prostat", joined, re.IGNORECASE):
            return ctx  # prostate cancer has its own rules (corpus/rules/prostate_*.yaml)
        # Generic words ("newly diagnosed metastatic", "castration") made the prostate inference, but the text
        # names another cancer and never the prostate: the inference does not hold.
        comorb = {k: v for k, v in ctx.comorbidities.items() if k != "prostate_cancer"}
        ctx = ctx.model_copy(
            update={
                "diagnoses": [d for d in ctx.diagnoses if d != "prostate_cancer"],
                "comorbidities": comorb,
                "disease_state": None,
                "castration": None,
                "focus": [f for f in ctx.focus if f != "prostate_cancer"],
                "sex": None if ctx.sex == "male" and not re.search(r"\b(?:man|male|gentleman|he|his)\b", joined, re.I) else ctx.sex,
            }
        )
    onc_ids = lexicon.class_members.get("antineoplastic", set())
    new = extract_tumour(joined, vocab, ctx.therapies, onc_ids)
    old = ctx.tumour
    if new is None and old is None:
        return ctx
    if old is not None and new is not None:
        markers = {m.marker: m for m in old.markers}
        markers.update({m.marker: m for m in new.markers})  # a newer result for the same marker replaces it
        new = new.model_copy(
            update={
                "tumour": new.tumour or old.tumour,
                "histology": new.histology or old.histology,
                "settings": new.settings or old.settings,
                "line": new.line or old.line,
                "markers": list(markers.values()),
                "prior_classes": list(dict.fromkeys([*old.prior_classes, *new.prior_classes])),
                "no_other_drivers": new.no_other_drivers or old.no_other_drivers,
            }
        )
    tumour = new or old
    focus = list(ctx.focus)
    asked = turns[-1]
    if tumour is not None and tumour.tumour and (
        not focus or vocab.find("tumours", asked) or vocab.find("markers", asked)
    ):
        focus.append("oncology")
    return ctx.model_copy(update={"tumour": tumour, "focus": list(dict.fromkeys(focus))})


def describe_tumour(t: TumourContext | None) -> str:
    """The tumour facts in one phrase ("nsclc (nonsquamous), metastatic, later line; EGFR exon19_del+T790M, PD-L1
    TPS 80") for prompts, logs and the patient panel."""
    if t is None:
        return ""
    head = (t.tumour or "tumour unspecified").replace("_", " ")
    if t.histology:
        head += f" ({', '.join(t.histology)})"
    bits = [head, *(s.replace("_", " ") for s in t.settings)]
    if t.line:
        bits.append(f"{t.line} line")
    markers = []
    for m in t.markers:
        if m.status == "negative":
            markers.append(f"{m.marker} negative")
            continue
        alt = "+".join(a for a in [m.alteration, *m.also] if a) or m.level or "positive"
        score = ", ".join(f"{k.upper()} {v:g}" for k, v in m.score.items())
        origin = f" {m.origin}" if m.origin != "unknown" else ""
        markers.append(f"{m.marker.replace('PDL1', 'PD-L1')} {alt}{origin}{' ' + score if score else ''}")
    text = ", ".join(bits)
    if markers:
        text += "; " + ", ".join(markers)
    if t.prior_classes:
        text += "; earlier: " + ", ".join(c.replace("_", " ") for c in t.prior_classes)
    return text
