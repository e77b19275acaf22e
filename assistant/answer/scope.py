"""Does the corpus speak to this question? The abstention judgement, run once per answer after the sources are
numbered and before anything is written: the asking sentence of a long vignette, the question's topical words
found (together) in the passages the answer would quote, technical words the index has never seen, rule findings
that back an answer, the guideline population, and oncology alterations no approval targets.

Pure apart from the document-frequency look-up of the retriever and the patient extractor used to read the asking
sentence (both injected).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from assistant.answer import prompts
from assistant.answer.protocols import (
    Engine,
    KnowledgeBase,
    LexiconLike,
    OncologyMatcher,
    Retriever,
    TermStats,
    TopicStats,
)
from assistant.models import AnswerPlan, Citation, Finding, PatientContext, RetrievedPassage
from assistant.oncology.match import describe_marker, targets_alteration


def coverage_topics(knowledge: KnowledgeBase | None) -> list[str]:
    """Topics the corpus covers, from the digests' front matter (titles when no topics are given)."""
    digests = knowledge.digests if knowledge is not None else {}
    topics: list[str] = []
    for d in digests.values():
        meta = d.meta or {}
        for t in meta.get("topics") or []:
            if str(t) not in topics:
                topics.append(str(t))
    if not topics:
        titles = [d.title for d in digests.values() if d.kind == "guideline"]
        topics = [t for t in titles if t]
    return topics


def coverage_summary(knowledge: KnowledgeBase | None) -> str:
    """What the corpus covers, in one line (for the abstention text)."""
    topics = coverage_topics(knowledge)
    if not topics:
        return "the guidelines that have been ingested into this index"
    return ", ".join(topics[:14]) + (" and related drug labels" if len(topics) <= 14 else ", …")



def _asking_words() -> frozenset[str]:
    """Words that say nothing about a question's topic (corpus/lexicon/cues.yaml, ``question_asking_words``)."""
    from assistant.patient.vocab import load_cues

    return frozenset(w.replace("\\", "") for w in load_cues().groups["question_asking_words"])


_GENERIC = _asking_words()


def topical_words(text: str) -> list[str]:
    """The words of a question that name its topic (stemmed; generic asking words removed; a hyphenated compound
    counts by its parts: "NRG1-directed" → nrg1)."""
    from ingest.text import content_words
    from ingest.text import stem as _stem

    generic = {_stem(w) for w in _GENERIC}
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    return [w for w in dict.fromkeys(content_words(text)) if w not in generic and len(w) > 2]


def specific_terms(text: str) -> list[str]:
    """Candidate topic names in an asking sentence: BM25 tokens of 5+ letters that are not generic asking words
    (the corpus decides how specific each is, by document frequency)."""
    from ingest.text import bm25_tokens

    generic = set(_GENERIC)
    return [
        t for t in dict.fromkeys(bm25_tokens(re.sub(r"(?<=\w)[-/](?=\w)", " ", text)))
        if len(t) >= 5 and t.isalpha() and t not in generic
    ]


def spelling_variants(word: str) -> list[str]:
    """British and American spellings of a word ("tumour"/"tumor", "oesophageal"/"esophageal", "leukaemia") and its
    verb/noun forms ("irradiate"/"irradiation", "titrated"/"titrate"): the index may hold the word in another form."""
    out = [word]
    for a, b in (("our", "or"), ("oe", "e"), ("ae", "e"), ("isation", "ization"), ("ise", "ize")):
        if a in word:
            out.append(word.replace(a, b))
    if word.endswith("e"):
        out += [word[:-1] + "ion", word + "d", word[:-1] + "ing"]
    if word.endswith(("ed", "es")):
        out += [word[:-1], word[:-2], word[:-2] + "ion", word[:-1] + "ion"]
    if word.endswith("ing"):
        out += [word[:-3], word[:-3] + "e", word[:-3] + "ion"]
    if word.endswith("ion"):
        out += [word[:-3], word[:-3] + "e"]
    return list(dict.fromkeys(out))


def _is_common(word: str, common: frozenset[str]) -> bool:
    """An everyday English word, also when inflected ("dosed", "monitored", "applies", "stepped")."""
    if word in common:
        return True
    # strip inflections only, never arbitrary letters ("shingle" is not "shin")
    stems: set[str] = set()
    for suffix, repl in (("s", ""), ("es", ""), ("ies", "y"), ("ie", "y"), ("ed", ""), ("ed", "e"), ("d", ""),
                         ("ing", ""), ("ing", "e"), ("ly", ""), ("er", ""), ("e", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stems.add(word[: len(word) - len(suffix)] + repl)
    if word.endswith(("ed", "ing")) and len(word) > 5:
        base = word[:-2] if word.endswith("ed") else word[:-3]
        if len(base) > 2 and base[-1] == base[-2]:
            stems.add(base[:-1])  # stepped → step, titrating → titrat(e)
    return any(s in common for s in stems)


# Where a question names what it is about. The end of the asking sentence ("… for his benign prostatic
# hyperplasia?", "vaccinated against shingles?"), a modifier of what is asked for ("Which shingles vaccine",
# "Which ADHD medication"), what the asking sentence treats ("How should this urinary infection be treated?"),
# else the condition the vignette opens with ("26-year-old man with ulcerative colitis
# has …", "woman has atopic dermatitis affecting …"). English grammar, not clinical vocabulary.
_DETERMINER = r"(?:(?:his|her|their|this|the|a|an|its|my|our|these|that|such)\s+)?"
_SUBJECT_END = re.compile(
    rf"\b(?:for|against|of|about|with)\s+{_DETERMINER}((?:[\w-]+\s+){{0,4}}[\w-]+)\s*[?.]?$", re.I
)
_SUBJECT_MODIFIER = re.compile(
    r"\b(?:which|what|a|an|the|any)\s+((?:[\w-]+\s+){0,3}?[\w-]+)\s+(?:medications?|medicines?|vaccines?|drugs?|"
    r"regimens?|therap(?:y|ies)|treatments?|prophylaxis|options?|eye drops?|agents?)\b",
    re.I,
)
_SUBJECT_NOUN = re.compile(
    r"\b(?:this|his|her|their|the|its)\s+((?:[\w-]+\s+){0,3}?[\w-]+)\s+(?:be|is|was|are|were)\b", re.I
)
# The condition a patient is introduced with: "A 26-year-old man with ulcerative colitis …", "19-year-old woman
# has atopic dermatitis affecting …" — right after the age and the person, not a symptom later in the sentence.
_SUBJECT_OPENING = re.compile(
    r"^(?:an?\s+)?\d{1,3}[- ](?:year|yr)s?[- ]old\s+(?:[a-z-]+\s+)?(?:with|has|who has|diagnosed with)\s+"
    r"(?!\d|had\b|been\b|an?\s+\d|a (?:week|month|year|day)|(?:two|three|four|five|six|several) )"
    r"((?:[\w-]+[\s,]+){0,5}?[\w-]+)(?=\s+(?:has|have|had|is|was|who|and|on|that|which|presents|affecting|since|"
    r"after|for|in|at|despite|but)\b|[,;.]|$)",
    re.I,
)


# A sentence that puts the request ("The team asks how to …", "She wants to know whether …").
_REQUEST = re.compile(r"\b(?:asks?|asking|asked|wants? to know|would like to know|wonders?|question is|advice (?:on|about))\b",
                      re.I)
# An asking sentence that points back at the one before it ("Which of these should she start?").
_POINTS_BACK = re.compile(r"\b(?:these|those|them|either|which of|this option|the options?)\b", re.I)


def vignette_sentences(q: str) -> list[str]:
    """A question's sentences, split after ". ? !" (no abbreviation handling: a vignette's own punctuation decides)."""
    return [p.strip() for p in re.split(r"(?<=[.?!])\s+", q.strip()) if p.strip()]


def question_subject(q: str) -> tuple[str, str]:
    """(where, phrase): what the question says it is about — ``("asked", "benign prostatic hyperplasia")`` from
    the asking sentence, ``("opening", "ulcerative colitis")`` from a long vignette's first sentence when the
    asking sentence names nothing ("a biologic or a JAK inhibitor?"), ``("", "")`` when neither does."""
    asked = asking_sentence(q)
    for rx in (_SUBJECT_END, _SUBJECT_MODIFIER, _SUBJECT_NOUN):
        m = rx.search(asked)
        if m and topical_words(m.group(1)):
            return "asked", m.group(1)
    parts = vignette_sentences(q)
    at = parts.index(asked) if asked in parts else -1
    if at >= 2 and _REQUEST.search(parts[at - 1]):
        # the request is often put just before the question: "The team asks how to manage fluids for her
        # pancreatitis. Which fluid, at what rate?"
        m = _SUBJECT_END.search(parts[at - 1])
        if m and topical_words(m.group(1)):
            return "asked", m.group(1)
    if len(parts) > 1 and parts[0] != asked:
        m = _SUBJECT_OPENING.search(parts[0])
        if m and topical_words(m.group(1)):
            return "opening", m.group(1)
    return "", ""


def focused_question(q: str) -> str:
    """What retrieval should look for in a long vignette: its opening sentence (who, with what) and the sentence
    that asks — not the whole history, whose incidental facts (a statin, AF on apixaban) pull in unrelated
    guidelines and dilute the question. Short questions are used whole."""
    parts = vignette_sentences(q)
    if len(parts) < 4:
        return q
    asked = asking_sentence(q)
    if parts[0] == asked:
        return parts[0]
    at = parts.index(asked) if asked in parts else -1
    if at >= 2 and (_POINTS_BACK.search(asked) or _REQUEST.search(parts[at - 1])):
        # "She is weighing A, B or C. Which of these should she start?": the options are the sentence before
        return f"{parts[0]} {parts[at - 1]} {asked}"
    return f"{parts[0]} {asked}"


def best_passage_coverage(question: str, passages: Sequence[RetrievedPassage]) -> float:
    """Share of the question's topical words found together in one passage (the best one): words scattered over
    many passages ('dose' here, 'antibiotic' there) do not make a topic covered."""
    from ingest.text import content_words

    words = topical_words(question)
    if not words:
        return 1.0
    best = 0.0
    for p in passages:
        found = set(content_words(p.text))
        prefixes = {w[:5] for w in found if len(w) >= 5}
        hit = sum(1 for w in words if w in found or (len(w) >= 5 and w[:5] in prefixes))
        best = max(best, hit / len(words))
    return best


def question_coverage(question: str, passages: Sequence[RetrievedPassage]) -> float:
    """Share of the question's topical words (stemmed) found in the retrieved passages (1.0 if none)."""
    from ingest.text import content_words

    words = topical_words(question)
    if not words:
        return 1.0
    found = set(content_words(" ".join(p.text for p in passages)))
    prefixes = {w[:5] for w in found if len(w) >= 5}
    hit = sum(1 for w in words if w in found or (len(w) >= 5 and w[:5] in prefixes))
    return hit / len(words)



MIN_QUESTION_COVERAGE = 0.5
"""Below this share of topical words found in the passages (and with no rule finding) the assistant abstains."""
MIN_ASKED_COVERAGE = 0.25
"""A long vignette whose asking sentence names no known condition still counts as answered by rule findings only
when at least this share of the asking sentence's topical words is found in the passages."""
MIN_ASKED_TOGETHER = 0.4
"""A long vignette's asking sentence must find at least this share of its topical words in one passage."""
RARE_TERM_MAX_DF = 40
"""A word in at most this many indexed chunks is specific enough that the passages quoted must contain it."""


def _actionable(findings: Sequence[Finding]) -> bool:
    # "Outside this guideline's population" (a child under an adult guideline) is not an answer for the patient.
    return any(f.kind in ("recommend", "consider", "exclude", "warn") and f.severity != "scope" for f in findings)



def asking_sentence(q: str) -> str:
    """The sentence(s) that ask: the last one with a question mark, else the last sentence."""
    parts = vignette_sentences(q)
    asks = [p for p in parts if p.endswith("?")]
    return asks[-1] if asks else (parts[-1] if parts else q)


def near_topics(hits: Sequence[RetrievedPassage], limit: int = 3) -> list[str]:
    """Titles of the documents nearest to the question (what the corpus has that comes closest)."""
    out: list[str] = []
    for p in hits:
        title = (p.title or "").strip()
        if title and title not in out:
            out.append(title)
        if len(out) >= limit:
            break
    return out





@dataclass(frozen=True)
class ScopeVerdict:
    abstain: bool
    unapproved: list[str]
    """Tumour alterations asked about that no approval in the pack targets (described for the reader)."""


class ScopeJudge:
    """The abstention judgement for one assistant (the knowledge words are computed once and cached)."""

    def __init__(
        self,
        knowledge: KnowledgeBase | None,
        retriever: Retriever,
        engine: Engine,
        extract: Callable[..., PatientContext],
    ) -> None:
        self.knowledge = knowledge
        self.retriever = retriever
        self.engine = engine
        self.extract = extract
        self._kw_cache: frozenset[str] | None = None

    @property
    def lexicon(self) -> LexiconLike | None:
        return self.knowledge.lexicon if self.knowledge is not None else None

    def decide(
        self,
        q: str,
        ctx: PatientContext,
        numbered: Sequence[Finding],
        citations: Sequence[Citation],
        by_ref: Mapping[str, Sequence[RetrievedPassage]],
        relevant: Sequence[RetrievedPassage],
        timings: dict[str, float],
    ) -> ScopeVerdict:
        """Abstain when nothing in the corpus speaks to the question: no relevant passage and no rule finding that the
        corpus backs (ask-only findings are not an answer). Judgement notes go into ``timings``.

        Only findings about what the question asks count: a safety screen of a drug a passage happened to name, or an
        offer for a condition from the history, does not make an unrelated question answerable."""
        in_focus = [
            f
            for f in numbered
            # a label check on a drug the rules offered counts (all DOACs withdrawn with rifampin is an answer); a
            # screen of a drug a passage happened to name does not
            if not f.rule_id.startswith("DECLINED:")
            and f.severity != "screen"
            and (not ctx.focus or f.domain in (*ctx.focus, None, "general"))
        ]
        backed = _actionable(in_focus) and any(f.citations for f in in_focus)
        # What the answer would quote: the retrieved passages and the passages the rule findings cite.
        cited = [p for f in numbered for r in f.refs for p in by_ref.get(r, [])[:1]]
        quoted = [*relevant, *cited, *self.finding_texts(in_focus)]
        # a question about a recognised tumour is judged by the oncology records (approved or not), not by topic words
        tumour_known = ctx.tumour is not None and ctx.tumour.tumour is not None
        off_topic, backed = self.judge_scope(q, quoted, in_focus, backed, timings, subject_check=not tumour_known)
        # The rules for the question's own condition say the patient is outside their guideline's population
        # (a child, an immunocompromised patient under a guideline that excludes them) and nothing else applies:
        # quoting that guideline's passages would be advice it does not give.
        out_of_scope = [f for f in numbered if f.severity == "scope" and (not ctx.focus or f.domain in ctx.focus)]
        # Safety-screen exclusions of drugs a passage happened to name are not an answer either.
        scope_abstain = bool(out_of_scope) and not _actionable(
            [
                f
                for f in numbered
                if (not ctx.focus or f.domain in (*ctx.focus, None, "general"))
                and not f.rule_id.startswith(("SAFETY:", "DECLINED:"))
            ]
        )
        # Oncology: the question asks about a tumour alteration that no FDA approval in the pack targets (in this
        # tumour, any setting) and no approval fits the patient: say so plainly rather than quote passages.
        unapproved = self.unapproved_asked(q, ctx, numbered)
        if unapproved:
            timings["oncology_unapproved"] = 1.0
        # A recognised domain whose rules answered (offers, exclusions, warnings backed by citations) is covered
        # whatever the cosine of a long vignette; the topical-word check reads the asking sentence, not the history.
        abstain = not citations or (off_topic and not backed) or scope_abstain or bool(unapproved)
        if scope_abstain:
            timings["scope_abstain"] = 1.0
        return ScopeVerdict(abstain=abstain, unapproved=unapproved)

    def other_tumour_records(self, ctx: PatientContext) -> frozenset[str]:
        """Approval records written for another tumour than the patient's: never quoted as if they applied."""
        vocab = self.knowledge.oncology if self.knowledge is not None else None
        approvals = (self.knowledge.approvals if self.knowledge is not None else None) or []
        if vocab is None or ctx.tumour is None or not ctx.tumour.tumour:
            return frozenset()
        lineage = set(vocab.tumour_ancestors(ctx.tumour.tumour))
        return frozenset(a.id for a in approvals if a.tumour not in lineage)

    def judge_scope(
        self,
        q: str,
        quoted: Sequence[RetrievedPassage],
        in_focus: Sequence[Finding],
        backed: bool,
        timings: dict[str, float],
        *,
        subject_check: bool = True,
    ) -> tuple[bool, bool]:
        """(off_topic, backed) for a question. A long vignette is judged by the sentence that asks: its history
        (kidney function, AF on apixaban) may be covered while the question (a glaucoma drop) is not, and the
        reverse; an asking sentence that leans on the vignette ("What should he switch to?") is judged with it.
        Anywhere, a technical word the index has never seen (levothyroxine, eclampsia) means the corpus does not
        cover the question, whatever rules the history set off."""
        asked = asking_sentence(q)
        long_q = asked != q.strip()
        # the rarest-word check only for a substantive asking sentence: in "What should we prescribe?" or "Should we
        # irradiate …?" an uncommon verb is not the topic
        unknown = self.unknown_topic(asked if long_q else q, quoted, rarest_check=False)
        focus_backed = False
        if unknown:
            timings["asked_unknown_term"] = 1.0
        if long_q and len(topical_words(asked)) >= 2:
            coverage = question_coverage(asked, quoted)
            together = best_passage_coverage(asked, quoted)
            timings["asked_best_passage_coverage"] = round(together, 3)
            off_topic = not quoted or coverage < MIN_QUESTION_COVERAGE or together < MIN_ASKED_TOGETHER
            asked_focus = self.asked_focus(asked)
            if asked_focus:
                # only findings about what the asking sentence names back the answer
                backed = focus_backed = any(
                    f.kind in ("recommend", "consider", "exclude", "warn") and f.citations and f.domain in asked_focus
                    for f in in_focus
                )
            elif coverage < MIN_ASKED_COVERAGE:
                backed = False  # the asking sentence names nothing the rules know and few of its words are found
        else:
            # short question: all of it; a leaning asking sentence: the vignette's opening (its subject) with it
            coverage = question_coverage(focused_question(q) if long_q else q, quoted)
            off_topic = not quoted or coverage < MIN_QUESTION_COVERAGE
        timings["question_coverage"] = round(coverage, 3)
        subject = self.uncovered_subject(q) if subject_check else ""
        if subject and not focus_backed:
            # the question is about a condition no document is about (a vignette on ulcerative colitis whose
            # history — diabetes, AF — the rules can speak to): history findings do not answer it
            timings["subject_uncovered"] = 1.0
            return True, False
        if unknown and not focus_backed:
            # an unseen word outweighs history findings, not findings about what the asking sentence itself names
            # ("Should we irradiate the prostate …?" with prostate-cancer rules that answer it)
            return True, False
        return off_topic, backed

    def unknown_topic(self, asked: str, quoted: Sequence[RetrievedPassage], *, rarest_check: bool = True) -> str:
        """The asking sentence's most specific word when the corpus cannot speak to it: absent from the whole index,
        or (its rarest indexed word) absent from every passage the answer would quote. '' when covered."""
        from ingest.embedder import common_words

        dfs = self.retriever.term_doc_freq if isinstance(self.retriever, TermStats) else None
        common = common_words()
        # only technical words (outside everyday English) that the knowledge does not itself name can mark a
        # topic the corpus lacks
        known = self.knowledge_words()
        terms = [t for t in specific_terms(asked) if not _is_common(t, common) and t not in known]
        if dfs is None or not terms or not common:
            return ""
        try:
            variants = {t: spelling_variants(t) for t in terms}
            raw = dfs([v for vs in variants.values() for v in vs])
        except (OSError, ValueError, KeyError, AttributeError):
            return ""
        freq = {t: max(raw.get(v, 0) for v in vs) for t, vs in variants.items()}
        missing = [t for t in terms if freq.get(t, 0) == 0]
        if missing:
            return missing[0]
        if not rarest_check:
            return ""
        rare = terms
        rarest = min(rare, key=lambda t: freq.get(t, 0))
        if freq.get(rarest, 0) > RARE_TERM_MAX_DF:
            return ""  # only common words: nothing specific to look for
        from ingest.text import bm25_tokens

        if any(rarest in set(bm25_tokens(p.text)) for p in quoted):
            return ""
        return rarest

    def uncovered_subject(self, q: str) -> str:
        """The question's subject (`question_subject`) when the corpus has no document about it: the rules read no
        condition, tumour or topic from it, and none of its technical words (outside everyday English and the
        knowledge's own vocabulary) is named by any indexed document's title, topics or headings. '' otherwise —
        also when the retriever cannot list topic words."""
        if not isinstance(self.retriever, TopicStats):
            return ""
        where, phrase = question_subject(q)
        if not phrase:
            return ""
        from ingest.embedder import common_words
        from ingest.text import bm25_tokens

        common = common_words()
        known = self.knowledge_words()
        terms = [
            t
            for t in bm25_tokens(re.sub(r"(?<=\w)[-/](?=\w)", " ", phrase))
            if len(t) >= 4 and t.isalpha() and t not in _GENERIC and not _is_common(t, common) and t not in known
        ]
        if not terms or not common:
            return ""
        try:
            topics = self.retriever.topic_terms()
        except (OSError, ValueError, KeyError, AttributeError):
            return ""
        if not topics:
            return ""
        for t in terms:
            variants = spelling_variants(t)
            if any(v in topics for v in variants) or any(v in topics for v in bm25_tokens(" ".join(variants))):
                return ""
        # the rules may know the condition under a name the documents do not use ("epilepsy" → seizure disorder)
        scope_text = phrase
        if where == "opening":
            scope_text = vignette_sentences(q)[0]
        if self.asked_focus(scope_text):
            return ""
        return phrase

    def finding_texts(self, findings: Sequence[Finding]) -> list[RetrievedPassage]:
        """What the answer states for each offer besides its passage: title, reason, the therapy's names and classes
        ("revumenib" is a menin inhibitor even where its label block does not say so)."""
        lex = self.lexicon
        out = []
        for f in findings:
            if f.kind not in ("recommend", "consider") or not f.citations:
                continue
            words = [f.title, f.reason]
            if lex is not None and f.therapy:
                for part in f.therapy.split("+"):
                    words += [*lex.names_of(part), *(c.replace("_", " ") for c in lex.classes_of(part))]
            out.append(RetrievedPassage(chunk_id=f"finding:{f.rule_id}", doc_id="", text=" ".join(words), score=0.0))
        return out

    def knowledge_words(self) -> frozenset[str]:
        """Every word of the lexicon's therapy names and classes and of the oncology vocabulary (cached)."""
        if self._kw_cache is not None:
            return self._kw_cache
        words: set[str] = set()
        lex = self.lexicon
        if lex is not None:
            for tid, entry in lex.entries.items():
                for n in [tid, *entry.names, *entry.classes]:
                    words.update(re.split(r"[\W_]+", str(n).lower()))
        knowledge = self.knowledge
        for cid in (knowledge.conditions if knowledge is not None else ()) or ():
            words.update(re.split(r"[\W_]+", str(cid).lower()))
        vocab = knowledge.oncology if knowledge is not None else None
        if vocab is not None:
            for table in (vocab.therapy_words, vocab.markers, vocab.tumours, vocab.settings, vocab.histologies, vocab.organs):
                for key, names in table.items():
                    for n in [key, *names]:
                        words.update(re.split(r"[\W_]+", str(n).lower()))
        self._kw_cache = frozenset(w for w in words if len(w) >= 4)
        return self._kw_cache

    def asked_focus(self, asked: str) -> set[str]:
        """Domains the asking sentence itself names (conditions, topic words, a tumour or tumour marker)."""
        try:
            actx = self.extract(asked, lexicon=self.lexicon)
        except (ValueError, TypeError):
            return set()
        out = set(actx.focus) | set(actx.diagnoses)
        if actx.tumour is not None:
            out.add("oncology")
        return out

    def unapproved_asked(self, q: str, ctx: PatientContext, findings: Sequence[Finding]) -> list[str]:
        """Tumour alterations the question asks about that no approval in the pack targets for this tumour, when no
        approval offer fits the patient either (then the honest answer is: nothing approved — trials)."""
        if not isinstance(self.engine, OncologyMatcher) or ctx.tumour is None or ctx.tumour.tumour is None:
            return []
        result = self.engine.oncology_match(ctx)
        if not result.unapproved:
            return []
        offers = [f for f in findings if f.domain == "oncology" and f.kind in ("recommend", "consider")]
        if any(self.targets_patient_marker(f, ctx) for f in offers):
            return []  # an approval directed at one of this tumour's alterations answers the question
        asked = asking_sentence(q)
        named = [m for m in result.unapproved if re.search(rf"(?<![\w]){re.escape(m.marker.split('_')[0])}", asked, re.I)]
        if not named and (not offers or re.search(
            r"alteration|mutation|fusion|variant|target|directed|specific|these|\bthis\b|\bit\b", asked, re.I
        )):
            named = list(result.unapproved)  # "Is anything approved for these alterations?"
        return [describe_marker(m) for m in named]

    def targets_patient_marker(self, f: Finding, ctx: PatientContext) -> bool:
        """The offer's approval record is directed at one of this tumour's positive markers
        (`assistant.oncology.match.targets_alteration`)."""
        approvals = self.knowledge.approvals if self.knowledge is not None else None
        rec = next((a for a in approvals or [] if a.id == f.rule_id), None)
        if rec is None or ctx.tumour is None:
            return False
        positive = {m.marker for m in ctx.tumour.markers if m.status == "positive"}
        lex = self.lexicon
        classes = [c for part in (f.therapy or "").split("+") if part for c in lex.classes_of(part)] if lex is not None else []
        vocab = self.knowledge.oncology if self.knowledge is not None else None
        return targets_alteration(rec, vocab, positive, classes)


def abstention_text(
    ctx: PatientContext,
    plan: AnswerPlan,
    *,
    near_topics: Sequence[str],
    unapproved: Sequence[str],
    knowledge: KnowledgeBase | None,
) -> str:
    """What an abstaining answer says: the refusal, then why and what the corpus has nearest to the question."""
    topic_hint = ""
    if ctx.diagnoses:
        topic_hint = f" (for {', '.join(d.replace('_', ' ') for d in ctx.diagnoses)})"
    # Name what the corpus has nearest to the question, not an alphabetical list of everything.
    near = ", ".join(near_topics) if near_topics else coverage_summary(knowledge)
    detail = prompts.ABSTAIN_DETAIL.format(coverage=near, topic_hint=topic_hint)
    if unapproved and ctx.tumour is not None:
        tumour = (ctx.tumour.tumour or "this tumour").replace("_", " ")
        detail = (
            f"No FDA-approved therapy directed at {', '.join(unapproved)} in {tumour} is in my approval records "
            "(FDA labels and approval notices, reviewed 2026-12); a clinical trial is the route to a drug targeting it, "
            "and the standard, non-biomarker-directed treatment for the tumour type applies.\n\n" + detail
        )
    scope = list(dict.fromkeys(f.reason for f in plan.findings if f.severity == "scope"))
    if scope:
        detail = "The guideline in my corpus for this does not cover this patient: " + " ".join(scope[:2]) + "\n\n" + detail
    return f"{prompts.REFUSAL}\n\n{detail}"
