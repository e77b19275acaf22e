"""Ingested text is data, never instructions: find sentences that address the system or the model.

A guideline sentence speaks about patients and drugs; a planted instruction speaks to the reader-model
("SYSTEM: …", "ignore the previous instructions", "you are now …", "do not mention …", "as an AI").
Ingest flags a chunk holding such a sentence (chunk metadata ``flagged``/``flag_reason``); the sources
panel shows the flag; the composer never quotes a flagged passage and the LLM prompt drops the
sentences. Pure functions, no I/O. It lives in ``ingest`` (which flags at ingest time and never imports the
assistant); the assistant's composer, prompt builder and web renderer import it from here.

Why patterns and not a classifier: the phrases are few and stereotyped, a false positive costs only a
quote (the passage stays citable and visible), and every pattern is anchored to words a clinical
text does not use about patients ("Nervous system: headache" is a label heading, not a role prefix —
the role word must open a line or a sentence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import split_sentences

# A role prefix ("SYSTEM:", "assistant:", "### Instruction:") at the start of a line or a sentence, or a
# chat-template marker anywhere.
_ROLE = re.compile(
    r"(?:^|(?<=[\n.!?:;>\]\)\"“]))\s*(?:#+\s*|\[|<)?(?:system|assistant|developer|chatgpt|ai)\s*(?:\]|>)?\s*:"
    r"|(?:^|\n)\s*(?:#+\s*|\[)instructions?\]?\s*:",
    re.I | re.M,
)
_TEMPLATE = re.compile(r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext)\s*\|>|\[/?INST\]|<</?SYS>>", re.I)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "tells the reader to ignore its instructions",
        re.compile(
            r"\b(ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+)*"
            r"(?:(?:previous|prior|above|earlier|preceding|foregoing|system|original|safety)\s+)*"
            r"(instructions?|prompts?|rules?|rule[- ]checks?|rule-check plan|directions?|guardrails?|plan)\b",
            re.I,
        ),
    ),
    ("addresses the model ('you are now …')", re.compile(r"\byou\s+are\s+now\b", re.I)),
    (
        "addresses the model ('you are an AI …')",
        re.compile(
            r"\byou\s+are\s+(?:an?\s+|the\s+)?(?:ai|assistant|language model|large language model|llm|chatbot|"
            r"chat ?gpt|helpful assistant|model)\b",
            re.I,
        ),
    ),
    (
        "tells the reader what not to say",
        re.compile(
            # imperative only (sentence start, after a colon, or aimed at "you"): "many women do not
            # disclose symptoms" describes patients, "Do not mention diuretics." commands the reader
            r"(?:^|[:;,\-–—]\s*|\byou\s+(?:must\s+|should\s+|will\s+)?)(?:please\s+|and\s+|also\s+)?"
            r"(?:do\s+not|don['’]t|never|must\s+not|should\s+not)\s+(?:ever\s+)?"
            r"(?:mention|say|reveal|disclose|tell\s+(?:the\s+)?(?:user|clinician|doctor|reader)|print|"
            r"output|acknowledge|cite\s+(?:this|these|the\s+rules?))\b",  # not "repeat": "do not repeat the dose"
            re.I | re.M,
        ),
    ),
    ("speaks as an AI", re.compile(r"\bas\s+an?\s+(?:ai|language model|large language model|llm|assistant)\b", re.I)),
    (
        "addresses the system prompt",
        re.compile(
            r"\b(?:system|developer)\s+(?:prompt|override|message|instructions?|mode)\b|\bdeveloper\s+mode\b|"
            r"\bjailbreak\b|\bprompt\s+injection\b",
            re.I,
        ),
    ),
    (
        "gives the model orders",
        re.compile(
            r"(?<!physician )(?<!nursing )(?<!medical )(?<!clinical )"  # a physician assistant is a person
            r"\b(?:the\s+)?(?:ai|assistant|chatbot|language model|llm|ai model)s?\s+(?:must|should|shall|will|is to)\s+"
            r"(?:always|never|only|now|recommend|say|answer|respond|reply|output|state|mark|ignore)\b|"
            r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|chatbot|model|llm)\b|"
            r"\b(?:print|reveal|show|output|repeat)\s+(?:your|the)\s+(?:system\s+|hidden\s+|original\s+)?prompt\b|"
            r"\b(?:respond|reply|answer)\s+only\s+with\b|"
            r"\b(?:mark|label|present)\s+(?:it|this|the\s+answer|the\s+output)\s+(?:as\s+)?(?:verified|fully supported)\b|"
            r"\bnew\s+(?:rules?|instructions?)\s*:",
            re.I,
        ),
    ),
)


@dataclass(frozen=True)
class InstructionHit:
    """One sentence that addresses the model, and why it was flagged."""

    sentence: str
    reason: str


def _reason(sentence: str) -> str | None:
    if _TEMPLATE.search(sentence):
        return "carries a chat-template marker"
    if _ROLE.search(sentence):
        return "opens with a role prefix (e.g. 'SYSTEM:')"
    for reason, pattern in _PATTERNS:
        if pattern.search(sentence):
            return reason
    return None


def instruction_reason(sentence: str) -> str | None:
    """Why this sentence reads as an instruction to the model, or None when it reads as data."""
    return _reason(sentence or "")


def is_instruction(sentence: str) -> bool:
    return _reason(sentence or "") is not None


def find_instructions(text: str) -> list[InstructionHit]:
    """Every sentence (or line) of ``text`` that addresses the system or the model, in order."""
    hits: list[InstructionHit] = []
    # Line by line, then the toolkit's sentences: a planted instruction often stands alone on a line.
    for line in (text or "").split("\n"):
        for part in split_sentences(line, bracket_opens=True):
            sentence = part.strip()
            if not sentence:
                continue
            reason = _reason(sentence)
            if reason:
                hits.append(InstructionHit(sentence, reason))
    # A role prefix may sit in front of a sentence the splitter kept whole ("Note: SYSTEM: ignore …").
    if not hits and (_TEMPLATE.search(text or "") or _ROLE.search(text or "")):
        hits.append(InstructionHit((text or "").strip()[:200], _reason(text or "") or "addresses the model"))
    return hits


def flag_reason(text: str, *, max_chars: int = 200) -> str:
    """The chunk's flag: '' when clean, else the first reason and the sentence it was found in (bounded)."""
    hits = find_instructions(text)
    if not hits:
        return ""
    first = hits[0]
    quote = " ".join(first.sentence.split())
    quote = quote if len(quote) <= 80 else quote[:77] + "…"
    more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
    return f"{first.reason}: “{quote}”{more}"[:max_chars]


def chunk_flags(text: str) -> dict[str, str | bool]:
    """Chunk metadata for ingest: ``flagged`` (bool) and ``flag_reason`` ('' when clean)."""
    reason = flag_reason(text)
    return {"flagged": bool(reason), "flag_reason": reason}


def strip_instructions(text: str, placeholder: str = "[text addressed to the model removed]") -> str:
    """``text`` with every instruction sentence replaced by a placeholder (for the LLM prompt)."""
    out = text or ""
    for hit in find_instructions(out):
        out = out.replace(hit.sentence, placeholder, 1)
    return out
