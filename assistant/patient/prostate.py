"""Prostate cancer facts that decide treatment: metastatic volume (CHAARTED), de novo vs metachronous
presentation, earlier local treatment, and whether metastases were seen on PSMA PET only.

A safety reader, called by `extract.PatientExtractor.extract_turn`; `infer` completes volume and presentation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.patient.facts import (
    NUMW,
    ClauseLike,
    Polarity,
    SafetyFacts,
    add_note,
    count_of,
)

_VOLUME_HIGH = re.compile(
    r"\bhigh[- ](?:volume|burden)\b(?! (?:cent|hospital|surgeon|unit|practice))|\bHVD\b", re.I
)
_VOLUME_LOW = re.compile(
    r"\blow[- ](?:volume|burden)\b(?! (?:cent|hospital|surgeon|unit|practice))|\bLVD\b|\boligometasta\w*",
    re.I,
)
_BONE_COUNT = re.compile(
    r"\b"
    + NUMW
    + r"\s+(?:\w+\s+){0,2}?(?:bone|bony|osseous|skeletal|sclerotic|spinal|vertebral|rib|pelvic)\s*(?:mets|metastas[ie]s|lesions?|deposits?)\b",
    re.I,
)
_AXIAL = r"spine|spinal|vertebra\w*|lumbar|thoracic|cervical|sacr\w*|pelvi\w*|iliac|ilium|ischi\w*|pubi\w*|acetabul\w*|\bL\d|\bT\d{1,2}\b"
_BEYOND = re.compile(
    r"\b(?:ribs?|femur|femoral|humer\w*|skull|calvari\w*|scapula\w*|sternum|sternal|clavicle\w*|appendicular|long bones?|tibia\w*|radius|ulna)\b",
    re.I,
)
_DE_NOVO = re.compile(
    r"\bde[- ]novo\b|\bsynchronous\b|\bmetastatic at (?:diagnosis|presentation)\b|\b(?:newly diagnosed|new diagnosis of) metastatic\b|"
    r"\bpresented with metasta\w+|\bmetastases at (?:diagnosis|presentation)\b|\bM1 at diagnosis\b|"
    # "newly diagnosed prostate cancer with three bone metastases", "prostate never treated"
    r"\b(?:newly|just|recently) diagnosed\b[^.;]{0,60}\bmetasta\w*|\bnew diagnosis\b[^.;]{0,80}\bmetasta\w*|"
    r"\b(?:prostate|primary(?: tumou?r)?)\s+(?:has\s+)?(?:never been|not been|not yet been|never|not)\s+treated\b|"
    r"\b(?:untreated|treatment[- ]na[iï]ve|intact)\s+(?:prostate|primary)\b",
    re.I,
)
_METACHRONOUS = re.compile(
    r"\bmetachronous\b|\b(?:relapsed|recurred|recurrence|relapse|progressed)\b[^.;]{0,40}\bafter\b[^.;]{0,30}"
    r"(?:prostatectomy|radiotherapy|radiation|\bRP\b|\bEBRT\b|brachytherapy|local (?:treatment|therapy)|radical)|"
    r"\b(?:developed|new|now (?:has|with))\b[^.;]{0,25}\bmetasta\w*[^.;]{0,40}\b(?:after|following|years after|since)\b[^.;]{0,30}"
    r"(?:prostatectomy|radiotherapy|radiation|\bRP\b|\bEBRT\b|brachytherapy|local (?:treatment|therapy))",
    re.I,
)
_LOCAL = re.compile(
    r"\b(?:radical|curative|definitive|primary)\s+(?:radiotherapy|radiation(?: therapy)?|RT|EBRT|IMRT|VMAT|brachytherapy|SBRT)\b|"
    r"\b(?:radiotherapy|radiation(?: therapy)?|RT|EBRT|IMRT|brachytherapy)\s+(?:to|of)\s+the\s+prostate\b|\bprostate (?:radiotherapy|RT|EBRT)\b|"
    r"\b(?:radical )?prostatectomy\b|\bpost-?RP\b|\bRALP\b|\bbrachytherapy\b",
    re.I,
)
_PSMA_ONLY = re.compile(
    r"\bPSMA[- ]?(?:PET[- ]?)?only\b|\bonly (?:seen |visible |detected |evident )?on PSMA|"
    r"\bPSMA[- ]?PET\b[^.]{0,80}\b(?:CT|bone scan|conventional imaging|MRI)\b[^.;]{0,40}\b(?:negative|clear|unremarkable|normal|no (?:evidence|metasta\w*|lesions?))|"
    r"\b(?:CT|bone scan|conventional imaging|MRI)\b[^.;]{0,40}\b(?:negative|clear|unremarkable|normal|no (?:evidence|metasta\w*|lesions?))\b[^.]{0,80}\bPSMA\b|"
    # "PSMA PET shows two nodes with negative CT and bone scan"
    r"\bPSMA\b[^.]{0,80}\b(?:negative|clear|unremarkable|normal)\s+(?:CT|bone scan|conventional imaging|MRI|staging)\b|"
    r"\b(?:negative|clear|unremarkable|normal)\s+(?:CT|bone scan|conventional imaging|MRI)\b[^.]{0,80}\bPSMA\b|"
    r"\b(?:negative|no (?:metastases|disease) on) conventional imaging\b",
    re.I,
)
_CONVENTIONAL = re.compile(
    r"\b(?:CT|bone scan|MRI|conventional imaging|x-ray|scintigraphy)\b[^.;]{0,30}\b(?:shows?|showed|revealed?|confirm\w*|demonstrat\w+|with|positive)\b[^.;]{0,40}"
    r"(?:metasta|mets\b|lesions?|nodes?|deposits?)|(?:metasta\w+|mets|lesions?|deposits?) (?:on|seen on|visible on|confirmed (?:on|by)) (?:CT|bone scan|MRI|conventional)|"
    r"\bpositive bone scan\b|\bbone scan[- ]positive\b",
    re.I,
)


def read_prostate(text: str, clauses: Sequence[ClauseLike], polarity: Polarity, out: SafetyFacts) -> None:
    hi = _VOLUME_HIGH.search(text)
    lo = _VOLUME_LOW.search(text)
    if hi and polarity(text, hi.start(), hi.end()) == "present":
        out.disease_volume = "high"
    elif lo and polarity(text, lo.start(), lo.end()) == "present":
        out.disease_volume = "low"
        if "oligo" in lo.group(0).lower():
            add_note(
                out,
                "Oligometastatic disease read as low volume (CHAARTED: fewer than 4 bone lesions, no visceral spread).",
            )
    bc = _BONE_COUNT.search(text)
    if bc:
        out.bone_lesions = count_of(bc.group(1))
        around = text[bc.start() : min(len(text), bc.end() + 80)]
        if _BEYOND.search(around):
            out.bone_beyond_axial = True
        elif re.search(
            rf"\b(?:all|only|confined to|limited to)\b[^.;]{{0,30}}(?:{_AXIAL})|\b(?:{_AXIAL})[^.;]{{0,15}}\bonly\b",
            around,
            re.I,
        ):
            out.bone_beyond_axial = False
    elif _BEYOND.search(text) and re.search(
        r"\b(?:bone|bony|osseous|skeletal)\b[^.;]{0,30}(?:mets|metasta|lesion)", text, re.I
    ):
        out.bone_beyond_axial = True
    if _METACHRONOUS.search(text):
        out.presentation = "metachronous"
    elif _DE_NOVO.search(text):
        out.presentation = "de_novo"
    for cl in clauses:
        for m in _LOCAL.finditer(cl.text):
            if polarity(cl.text, m.start(), m.end()) != "present":
                continue
            before = cl.text[max(0, m.start() - 50) : m.start()]
            if cl.is_question or re.search(
                r"\b(?:consider\w*|plan\w*|offer\w*|candidate for|eligible for|add(?:ing)?|should|would|role of|for)\s*(?:\w+\s+){0,2}$",
                before,
                re.I,
            ):
                continue  # proposed, not received
            out.prior_local_therapy = True
    if (
        out.presentation == "de_novo"
        and out.prior_local_therapy
        and not re.search(r"\bde[- ]novo\b|\bsynchronous\b", text, re.I)
    ):
        out.presentation = (
            None  # "newly diagnosed bone metastases after prostatectomy" is metachronous (infer decides)
        )
    if _PSMA_ONLY.search(text):
        out.metastasis_imaging = "psma_pet_only"
    elif _CONVENTIONAL.search(text):
        out.metastasis_imaging = "conventional"
