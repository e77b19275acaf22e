"""How well passages support a sentence: lexical recall of its content words (abbreviations expanded), MiniLM
cosine against the passage's sentences, penalties for polarity words and salient tokens the passage lacks, and a
hard cap for numbers no passage contains. The threshold is calibrated on tests/generation/data/support_pairs.jsonl
(see test_support_calibration).

Used by the verifier (`verify.inspect_answer`), by repair (`repair.attach_citations`) and by the composer (which
quote best matches the question). Pure apart from the embedding cache of a `SupportScorer`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence

from assistant.answer.protocols import EmbedderLike
from ingest.text import content_words, split_sentences

# ---------------------------------------------------------------- calibrated constants
LEXICAL_WEIGHT = 0.5
"""Weight of lexical recall in the support score; the rest is MiniLM cosine."""
SUPPORT_THRESHOLD = 0.62
"""Support below this flags a sentence. Calibrated on tests/generation/data/support_pairs.jsonl (52 pairs):
P=0.93 R=0.93 for flagging unsupported sentences, 2-fold CV P=0.93 R=0.93 (tests/generation/gen_calibration.py)."""
LEXICAL_ONLY_THRESHOLD = 0.6
"""Threshold when no embedder is available (lexical recall alone)."""
# Lexical recall this high means the sentence restates the passage; skip the embedding (speed).
_LEXICAL_SURE = 0.85

_CITE = re.compile(r"\[(\d{1,3})\]")
_NUMBER = re.compile(r"(?<![A-Za-z\-])\d+(?:\.\d+)?")


@functools.lru_cache(maxsize=4096)
def _passage_vocab(passage: str) -> tuple[frozenset[str], frozenset[str]]:
    words = frozenset(content_words(expand_abbreviations(passage)))
    return words, frozenset(w[:6] for w in words if len(w) >= 6)


def numbers_in(text: str) -> set[str]:
    return {n.rstrip("0").rstrip(".") if "." in n else n for n in _NUMBER.findall(_CITE.sub(" ", text))}


def strip_citations(text: str) -> str:
    return re.sub(r"\s+", " ", _CITE.sub("", text)).strip()


# ---------------------------------------------------------------- support scoring
def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


# Abbreviations clinicians (and our digests) use; expanded on both sides so "mCRPC" matches the spelled-out form.
ABBREVIATIONS = {
    "mcrpc": "metastatic castration-resistant prostate cancer",
    "nmcrpc": "non-metastatic castration-resistant prostate cancer",
    "crpc": "castration-resistant prostate cancer",
    "mhspc": "metastatic hormone-sensitive prostate cancer",
    "mcspc": "metastatic castration-sensitive prostate cancer",
    "hspc": "hormone-sensitive prostate cancer",
    "arpi": "androgen-receptor pathway inhibitor",
    "arpis": "androgen-receptor pathway inhibitors",
    "adt": "androgen deprivation therapy",
    "hrr": "homologous recombination repair",
    "msi-h": "microsatellite-instability-high",
    "msi-high": "microsatellite-instability-high",
    "dmmr": "mismatch-repair deficient",
    "tmb": "tumour mutational burden",
    "psa": "prostate-specific antigen",
    "rpfs": "radiographic progression-free survival",
    "os": "overall survival",
    "sre": "skeletal-related event",
    "parpi": "PARP inhibitor",
    "bcr": "biochemical recurrence",
    "ecog": "performance status",
    "onj": "osteonecrosis of the jaw",
}
_ABBR = re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True)) + r")(?![\w-])", re.I)


def expand_abbreviations(text: str) -> str:
    return _ABBR.sub(lambda m: f"{m.group(0)} ({ABBREVIATIONS[m.group(0).lower()]})", text)


# Quantifiers and negations flip or widen a claim; one the passage does not use is a classic
# hallucination ("for all patients", "never", "regardless of").
_POLARITY = frozenset(["not", "no", "never", "none", "without", "all", "every", "always", "only", "alone", "regardless", "must", "negative"])
_SALIENT = re.compile(r"\b(?=[A-Za-z0-9-]*[A-Z0-9])[A-Z][A-Za-z0-9-]*[A-Z0-9][A-Za-z0-9-]*\b")
POLARITY_PENALTY = 0.12
SALIENT_PENALTY = 0.12


def mismatch_penalty(sentence: str, passage: str) -> float:
    """Penalty for polarity/quantifier words and salient tokens (genes, trials, codes) the passage lacks."""
    # The answer's own framing ("not recommended", "not suitable") is not a claim about the passage.
    sentence = re.sub(r"\bnot (?:recommended|suitable|an option)\b", " ", sentence, flags=re.I)
    sent_words = {w.lower() for w in re.findall(r"[A-Za-z]+", sentence)}
    pass_words = {w.lower() for w in re.findall(r"[A-Za-z]+", passage)}
    pol = len((sent_words & _POLARITY) - pass_words)
    pass_tokens = {t.lower() for t in re.findall(r"[A-Za-z0-9-]+", passage)}
    sal = [t for t in _SALIENT.findall(sentence) if t.lower() not in pass_tokens and t.lower() not in ABBREVIATIONS]
    return POLARITY_PENALTY * pol + SALIENT_PENALTY * len(set(sal))


def lexical_support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words found in the passage (prefix match tolerates inflection)."""
    words = content_words(_ABBR.sub(lambda m: ABBREVIATIONS[m.group(0).lower()], sentence))
    if not words:
        return 1.0
    pw, prefixes = _passage_vocab(passage)

    def hit(w: str) -> bool:
        return w in pw or (len(w) >= 6 and w[:6] in prefixes)

    return sum(1 for w in words if hit(w)) / len(words)


def _passage_units(passage: str) -> list[str]:
    sents = [s.strip() for s in split_sentences(re.sub(r"\s+", " ", passage)) if len(s.strip()) > 15]
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(sents)]
    # Bounded (why: each unit is one MiniLM embedding; verification must stay a few % of the answer time).
    return (sents[:8] + pairs[:4]) or [passage]


class SupportScorer:
    """Support of a sentence by passages: LEXICAL_WEIGHT·lexical + (1−LEXICAL_WEIGHT)·cosine, numbers enforced."""

    def __init__(self, embedder: EmbedderLike | None = None, *, threshold: float | None = None, lexical_weight: float = LEXICAL_WEIGHT):
        self.embedder = embedder
        self.lexical_weight = lexical_weight if embedder is not None else 1.0
        self.threshold = threshold if threshold is not None else (SUPPORT_THRESHOLD if embedder else LEXICAL_ONLY_THRESHOLD)
        self._cache: dict[str, list[float]] = {}

    def _vectors(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing and self.embedder is not None:
            for t, v in zip(missing, self.embedder.embed(missing), strict=True):
                self._cache[t] = v
        return [self._cache[t] for t in texts]

    def components(self, sentence: str, passages: Sequence[str]) -> tuple[float, float | None, bool]:
        """(best lexical recall, best cosine or None, numbers-ok)."""
        bare = strip_citations(sentence)
        lex = max((lexical_support(bare, p) for p in passages), default=0.0)
        nums = numbers_in(bare)
        all_nums: set[str] = set().union(*(numbers_in(p) for p in passages)) if passages else set()
        nums_ok = nums <= all_nums
        if self.embedder is None or not passages or lex >= _LEXICAL_SURE:
            return lex, None, nums_ok
        units = [u for p in passages for u in _passage_units(p)]
        vecs = self._vectors([bare, *units])
        cos = max(_cos(vecs[0], v) for v in vecs[1:])
        return lex, cos, nums_ok

    def score(self, sentence: str, passages: Sequence[str]) -> float:
        lex, cos, nums_ok = self.components(sentence, passages)
        # cos is None: no embedder, or lexical recall alone already decides
        s = lex if cos is None else self.lexical_weight * lex + (1 - self.lexical_weight) * max(cos, 0.0)
        bare = strip_citations(sentence)
        s -= min((mismatch_penalty(bare, p) for p in passages), default=0.0)
        # An invented number (dose, percentage, duration) is the most dangerous hallucination: cap it below threshold.
        return s if nums_ok else min(s, self.threshold - 0.01)

    def supported(self, sentence: str, passages: Sequence[str]) -> bool:
        return self.score(sentence, passages) >= self.threshold

