"""Tumour biomarker results as clinicians write them: exact variants ("EGFR exon 19 deletion", "KRAS G12C-mutant"),
kinds (fusion, amplification, ITD), HER2 IHC/ISH categories, PD-L1 TPS/CPS, TMB, MSI/MMR, percentages of positive
cells, germline vs somatic, lists sharing one result ("negative for EGFR, ALK and ROS1"), bare variants that name
their gene, and genes the vocabulary does not know (kept so that "nothing approved" can be said).
Vocabulary from corpus/lexicon/oncology.yaml; the patterns here are the grammar of results."""

from __future__ import annotations

import re

from assistant.models import TumourMarker
from assistant.oncology.vocab import OncologyVocab

_VARIANT = re.compile(r"(?<![A-Za-z0-9])(?:p\.)?([A-Z])(\d{2,4})([A-Z]|X|\*)?(?![A-Za-z0-9])")
_EXON19 = re.compile(r"exon\s*19[\s-]*(?:deletion|del\b|deleted)|\bex19\s*del|\bdel\s*19\b|\bE746_A750del", re.I)
_EXON20 = re.compile(r"exon\s*20[\s-]*(?:insertion|ins\b|inserted)|\bex20\s*ins", re.I)
_EXON14 = re.compile(r"exon\s*14(?:\s*(?:skipping|skip|alteration|mutation|deletion))?|\bMETex14|\bex14\b", re.I)
_FUSION = re.compile(r"fusion|rearrange|translocat|\bfused\b|-positive\s+(?:by\s+)?(?:FISH|NGS)", re.I)
_AMP = re.compile(r"(?<!not )(?<!non-)(?<!non)amplif", re.I)
_ITD = re.compile(r"\bITD\b")
_TKD = re.compile(r"\bTKD\b")
_MUT = re.compile(r"mutat|mutant|variant|(?<!un)altered|alteration|pathogenic|activating|driver|\bmut\b|\+", re.I)
_NEG = re.compile(
    r"wild[- ]?type|\bwt\b|negative|\bneg\b|not\s+detected|no\s+(?:mutation|alteration|fusion|rearrangement)|unaltered|"
    r"undetected|absent|\bnormal\b|not\s+(?:mutated|detected|amplified|altered|expressed|rearranged|present)|[-−–]\s*(?=[/\s,;.)]|$)",
    re.I,
)
_POS = re.compile(r"positive|\bpos\b|\+(?!\d)|detected|present|overexpress|high\b|mutated|mutant|mutation|(?<!un)altered|"
                  r"deficient|amplified|rearranged|fusion", re.I)
_GERMLINE = re.compile(r"germline|inherited|hereditary|\bg(?=BRCA)", re.I)
_SOMATIC = re.compile(r"somatic|tumou?r[- ]only|\bt(?=BRCA)|tumou?r\s+(?:testing|NGS)", re.I)
_NEXT_MARKER = re.compile(r"negative for|positive for|\b(?:EGFR|ALK|ROS1|KRAS|BRAF|HER2|MSI|TMB)\b")
# "Which RET inhibitors", "KRAS-directed drugs", "EGFR testing": the marker is named, no result is stated.
_NO_RESULT = re.compile(
    r"[\s-]*(?:directed|targeted|targeting|inhibitors?|TKIs?|blockers?|blockade|therapy|therapies|testing|tests?|"
    r"status|results?|agents?|drugs?|antibod(?:y|ies)|ADCs?)\b(?!\s*(?:positive|negative|[+]))",
    re.I,
)
# A result window ends where the next gene's result begins ("KRAS G12C, STK11 wild-type").
_NEXT_GENE = re.compile(r"(?:[,;]|\band\b|\bwith\b|\bbut\b|\bplus\b)\s+(?![A-Z]\d{1,4}[A-Z]?\b)(?!(?:FISH|ISH|SISH|CISH|IHC|NGS|PCR|RNA|DNA|CDx)\b)(?=[A-Z][A-Z0-9]{2,}[\s-])")
# Further genes of the same list followed by their shared negative result: "… and SF3B1 wild type".
_SHARED_NEGATIVE = re.compile(
    r"(?:\s*(?:,|\band\b|\bor\b)\s*[A-Z][A-Z0-9]{2,}){1,3}\s+(?:(?:are|is|were|was)\s+)?"
    r"(?=wild[- ]?type|negative|not\s+(?:detected|mutated|altered)|unaltered)",
)
# What may sit between two markers of one list: separators, a variant, a kind word ("KRAS G12C, MET, RET").
_LIST_GAP = re.compile(
    r"(?:[\s,/]|\band\b|\bor\b|\bnor\b|[A-Z]\d{1,4}[A-Z]?\b|exon\s*\d+(?:\s*\w+)?|mutations?|alterations?|"
    r"fusions?|rearrangements?|amplifications?|skipping)*",
    re.I,
)

_EXPRESSION = frozenset({"HER2", "PDL1", "HR", "CLDN18", "FOLR1", "CMET_PROTEIN", "DLL3"})
_DRIVERS = frozenset(
    {"EGFR", "ALK", "ROS1", "RET", "MET", "KRAS", "NRAS", "BRAF", "HER2", "NTRK", "NRG1", "FGFR2", "FGFR3", "IDH1",
     "IDH2", "PIK3CA", "AKT1", "ESR1", "BRCA", "KIT", "PDGFRA", "FLT3", "NPM1", "KMT2A", "BCR_ABL1"}
)
_COMMON_CAPS = frozenset(
    {"ECOG", "PSA", "CT", "MRI", "PET", "NGS", "IHC", "FISH", "ISH", "DNA", "RNA", "FDA", "NCCN", "ASCO", "ESMO",
     "HIV", "BMI", "CKD", "AST", "ALT", "ULN", "ANC", "LVEF", "QTC", "ADT", "ICU", "ER", "PR", "TPS", "CPS", "OS",
     "PFS", "ORR", "AML", "CLL", "CML", "ALL", "MDS", "GIST", "NSCLC", "SCLC", "CRC", "HCC", "RCC", "TNBC", "MSI",
     "TMB", "HRD", "PD", "ABL", "BCR", "EGFR", "COVID", "WHO", "USA", "US", "UK", "EU", "ISUP", "TNM", "AJCC"}
)
_UNKNOWN_GENE = re.compile(
    r"(?<![\w-])([A-Z][A-Z0-9]{1,6})(?:[- ]?\(?(?:[A-Z]\d{2,4}[A-Z]?)\)?)?[- ](mutations?|mutant|mutated|fusions?|"
    r"rearrangements?|rearranged|amplifications?|amplified|alterations?|altered|deletions?|loss)\b"
)


def _clauses(text: str) -> list[tuple[int, str]]:
    """Sentence-level pieces with their offsets (a marker's result stays within its sentence). A period between
    digits ("claudin 18.2", "TMB 10.5") does not end a sentence."""
    out = []
    for m in re.finditer(r"(?:[^.;!?\n]|(?<=\d)\.(?=\d))+(?:[.;!?\n]|$)", text):
        piece = m.group(0)
        if piece.strip():
            out.append((m.start(), piece))
    return out


_NEGATED_ALT = re.compile(
    r"\b(?:no|not|without|negative for|absence of)\s+(?:an?\s+)?(?:exon\s*\d+[\s-]*\w+|[A-Z]\d{1,4}[A-Z]?\b|\w+\s+\w+)",
    re.I,
)


def _variant_kind(marker: str, window: str) -> str:
    """The alteration a result window names: an exact variant, a structural kind, or '' (just 'positive')."""
    window = _NEGATED_ALT.sub(" ", window)  # "(no exon 19 del, no L858R)" names what the tumour does not have
    if marker == "EGFR" and _EXON19.search(window):
        return "exon19_del"
    if _EXON20.search(window):
        return "exon20_ins"
    if marker == "MET" and _EXON14.search(window):
        return "exon14_skipping"
    if _ITD.search(window):
        return "ITD"
    if _TKD.search(window):
        return "TKD"
    v = _VARIANT.search(window)
    if v and marker not in _EXPRESSION:
        letter, pos, alt = v.group(1), v.group(2), v.group(3) or ""
        return f"{letter}{pos}{'X' if alt == '*' else alt}"
    if _FUSION.search(window):
        return "fusion"
    if _AMP.search(window):
        return "amplification"
    if marker == "EGFR" and re.search(r"uncommon|atypical|G719|L861Q|S768I", window):
        return "uncommon"
    if _MUT.search(window) and marker not in _EXPRESSION:
        return "mutation"
    return ""


def _her2(window: str, m: TumourMarker) -> None:
    """HER2 expression category from IHC/ISH words (ASCO/CAP categories)."""
    w = window.lower()
    after = re.sub(r"^\s*(?:her2|erbb2|her-2|her2/neu)", "", w)
    if re.match(r"\s*(?:[-−–]\s*(?=[,;/.)]|\s|$)|[-−–:]?\s*(?:negative|neg\b|non-?amplified|not amplified))", after) and not re.search(
        r"ihc|\b[0-3]\s*\+|low|ultra", after[:40]
    ):
        m.level, m.status = "", "negative"
        return
    w = w[:80]
    ihc = re.search(r"(?:ihc\s*)?([0-3])\s*\+|ihc\s*(?:score\s*)?(?:of\s*)?([0-3])\b|\b(?:her2|erbb2)[-:\s]*(?:ihc\s*)?0\b", w)
    ish_pos = re.search(r"(?:fish|ish|sish|cish)[- ]?(?:positive|\+|amplified)|(?<!not )(?<!non-)(?<!non)\bamplified\b", w)
    ish_neg = re.search(r"(?:fish|ish|sish|cish)[- ]?(?:negative|-|−|non-?amplified|not amplified)|not amplified", w)
    if "ultralow" in w or "ultra-low" in w:
        m.level = "ultralow"
    elif re.search(r"her2[- ]?low|\blow\b", w):
        m.level = "low"
    if ihc:
        score = float(next(g for g in ihc.groups() if g is not None) or 0) if any(ihc.groups()) else 0.0
        m.score["ihc"] = score
        if score >= 3:
            m.level = "positive"
        elif score == 2:
            m.level = "positive" if ish_pos else ("low" if ish_neg else m.level)
        elif score == 1:
            m.level = "low"
        elif not m.level:
            m.level = "zero"
    if not m.level and (
        ish_pos
        or (re.match(r"\s*(?:[-:]\s*)?(?:positive|\+|overexpress|amplif)", after) and not m.alteration.startswith(("exon", "mutation")))
    ):
        m.level = "positive"
    if m.level in ("low", "ultralow", "zero"):
        m.status = "negative" if m.level == "zero" else "positive"
    if m.level == "positive":
        m.status = "positive"


def _scores(marker: str, window: str, m: TumourMarker) -> None:
    w = window
    if marker == "PDL1":
        w = w[: _NEXT_MARKER.search(w).start()] if _NEXT_MARKER.search(w) else w
        for kind, rx in (
            ("tps", r"(?:TPS|tumou?r proportion score)\s*(?:of\s*)?(?:[:=]\s*)?(≥|>=|>|<|≤)?\s*(\d+(?:\.\d+)?)\s*%?"),
            ("cps", r"(?:CPS|combined positive score)\s*(?:of\s*)?(?:[:=]\s*)?(≥|>=|>|<|≤)?\s*(\d+(?:\.\d+)?)"),
        ):
            hit = re.search(rx, w, re.I)
            if hit:
                m.score[kind] = _bound(hit.group(1), float(hit.group(2)))
        if "tps" not in m.score and "cps" not in m.score:
            hit = re.search(r"(≥|>=|>|<|≤)?\s*(\d+(?:\.\d+)?)\s*(?:[-–]\s*(\d+)\s*)?%", w)
            if hit:
                m.score["tps"] = _bound(hit.group(1), float(hit.group(2)))
        if re.search(r"\bhigh\b", w, re.I) and "tps" not in m.score:
            m.level = "high"
        if re.search(r"negative|<\s*1\s*%|\b0\s*%", w, re.I) and not m.score:
            m.status = "negative"
            m.score["tps"] = 0.0
    elif marker == "TMB":
        hit = re.search(r"(\d+(?:\.\d+)?)\s*(?:mut(?:ations)?\s*/\s*Mb|muts?/Mb|mutations per megabase)", w, re.I)
        if hit:
            m.score["tmb"] = float(hit.group(1))
        if re.search(r"TMB[- ]?(?:H\b|high)|high\s+tumou?r mutational burden|tumou?r mutational burden[- ]high", w, re.I):
            m.level = "high"
        elif re.search(r"TMB[- ]?low|low\s+TMB", w, re.I):
            m.status = "negative"
    elif marker in ("CLDN18", "FOLR1"):
        hit = re.search(r"(≥|>=|>)?\s*(\d+(?:\.\d+)?)\s*%", w)
        if hit:
            m.score["ps"] = _bound(hit.group(1), float(hit.group(2)))


def _bound(op: str | None, value: float) -> float:
    """'>50%' is read as just above the number; '<1%' as below it."""
    if op in ("<",):
        return max(0.0, value - 0.5)
    if op in (">",):
        return value + 0.5
    return value


def _status(window: str, marker: str) -> str:
    head = window[:60]
    # "fusion-negative", "mutation negative", "rearrangement not detected": the kind word carries the result
    if re.match(r"[\s:-]*(?:\w+[\s-]){0,2}?(?:negative|neg\b|wild[- ]?type|not detected|absent|undetected)", head, re.I):
        return "negative"
    neg, pos = _NEG.search(head), _POS.search(head)
    if neg and (not pos or neg.start() <= pos.start()):
        return "negative"
    if marker == "MSI" and re.search(r"\bMSS\b|stable", window):
        return "negative"
    return "positive"


def _marker_hits(vocab: OncologyVocab, clause: str) -> list[tuple[int, int, str, str]]:
    hits = vocab.find("markers", clause)
    # "HER2-low breast cancer": the tumour name does not end the marker; "MSS" names MSI status negatively.
    for m in re.finditer(r"\bMSS\b|microsatellite[- ]stable", clause, re.I):
        hits.append((m.start(), m.end(), "MSI", m.group(0)))
    for m in re.finditer(r"\bg(BRCA[12]?m?)\b|\bt(BRCA[12]?m?)\b", clause):
        hits.append((m.start(), m.end(), "BRCA", m.group(0)))
    for m in re.finditer(r"triple[- ]negative|\bTNBC\b", clause, re.I):
        hits.append((m.start(), m.end(), "TRIPLE_NEG", m.group(0)))
    hits.sort()
    # drop hits inside an earlier, longer hit
    out: list[tuple[int, int, str, str]] = []
    for h in hits:
        if out and h[0] < out[-1][1]:
            continue
        out.append(h)
    return out


def extract_markers(text: str, vocab: OncologyVocab) -> tuple[list[TumourMarker], bool]:
    """Every biomarker result stated in text, and whether a broad panel was called otherwise negative."""
    found: dict[str, TumourMarker] = {}
    no_other = bool(
        re.search(r"no other (?:actionable|targetable|driver)|otherwise (?:negative|unremarkable)|no (?:actionable|"
                  r"targetable|driver) (?:mutations?|alterations?)|(?:NGS|panel) (?:was )?negative|pan-negative", text, re.I)
    )
    for off, clause in _clauses(text):
        hits = _marker_hits(vocab, clause)
        # A list of markers sharing one result: "negative for EGFR, ALK and ROS1", "EGFR/ALK wild-type",
        # "no EGFR, ALK, ROS1 or BRAF alterations".
        groups: list[list[tuple[int, int, str, str]]] = []
        for h in hits:
            if groups and _LIST_GAP.fullmatch(clause[groups[-1][-1][1] : h[0]]):
                groups[-1].append(h)
            else:
                groups.append([h])
        groups = [
            [h for h in g if not _NO_RESULT.match(clause[h[1] :])] for g in groups
        ]
        groups = [g for g in groups if g]
        for gi, group in enumerate(groups):
            before = clause[max(0, group[0][0] - 40) : group[0][0]]
            nxt = groups[gi + 1][0][0] if gi + 1 < len(groups) else len(clause)
            shared_neg_before = bool(re.search(r"(?:\bno\b|\bnot\b|negative for|wild[- ]type for|without)\s*(?:\w+\s+){0,2}$", before, re.I))
            for hi, (_start, end, mid, words) in enumerate(group):
                stop = group[hi + 1][0] if hi + 1 < len(group) else nxt
                own = clause[end:stop]
                tail = own if hi + 1 < len(group) else clause[end : min(len(clause), end + 90, nxt if nxt > end else len(clause))]
                if hi + 1 < len(group) and _VARIANT.search(own) and not _NEG.search(own):
                    # "PIK3CA H1047R, AKT1 and PTEN wild type": a member with its own variant has its own result
                    window = own
                elif hi + 1 < len(group):
                    # members of a list share the result written after the last one
                    shared_tail = clause[group[-1][1] : min(len(clause), group[-1][1] + 60)]
                    window = own + " " + shared_tail
                else:
                    window = tail
                cut = _NEXT_GENE.search(window, 1)
                shares = (
                    cut is not None
                    and not _VARIANT.search(window[: cut.start()])
                    and _SHARED_NEGATIVE.match(window[cut.start() :]) is not None
                )
                if cut and hi + 1 == len(group) and not shares:
                    # ("IDH1 and SF3B1 wild type": a gene the vocabulary does not know may share the result)
                    window = window[: cut.start()]
                if shared_neg_before:
                    window = own if hi + 1 < len(group) else window  # "negative for X, Y G12C, Z": each is negative
                window = words + " " + window
                _add_marker(found, mid, words, window, before, shared_neg_before, clause)
        for um in _UNKNOWN_GENE.finditer(_expand_gene_lists(clause)):
            gene = um.group(1)
            if re.fullmatch(r"[A-Z]\d+[A-Z]", gene):
                continue  # a bare variant (T315I), attached to its gene below
            if gene in vocab.markers or gene in _COMMON_CAPS or any(gene in n for n in vocab.markers.values()):
                continue
            if gene.lower() in {n.lower() for names in vocab.tumours.values() for n in names}:
                continue
            kind = um.group(2).lower()
            alt = "fusion" if kind.startswith(("fusion", "rearrang")) else (
                "amplification" if kind.startswith("amplif") else ("loss" if kind in ("deletion", "loss") else "mutation")
            )
            v = _VARIANT.search(um.group(0)[len(gene):])
            if v:
                alt = f"{v.group(1)}{v.group(2)}{v.group(3) or ''}"
            neg_before = re.search(r"\bno\b\s*(?:\w+\s+){0,2}$", clause[max(0, um.start() - 20) : um.start()], re.I)
            found.setdefault(
                gene,
                TumourMarker(marker=gene, alteration=alt, status="negative" if neg_before else "positive", mention=um.group(0)),
            )
        del off
    return list(found.values()), no_other


def _expand_gene_lists(clause: str) -> str:
    """'STK11 and KEAP1 mutations' → 'STK11 mutations and KEAP1 mutations' (the kind word applies to each)."""
    rx = re.compile(r"((?:[A-Z][A-Z0-9]{1,6}(?:\s*,\s*|\s+(?:and|or)\s+|\s*/\s*))+)([A-Z][A-Z0-9]{1,6})[- ]"
                    r"(mutations?|mutant|mutated|fusions?|alterations?|amplifications?)\b")

    def repl(m: re.Match[str]) -> str:
        genes = [*re.findall(r"[A-Z][A-Z0-9]{1,6}", m.group(1)), m.group(2)]
        return " and ".join(f"{g} {m.group(3)}" for g in genes)

    return rx.sub(repl, clause)


def _bare_variants(markers: list[TumourMarker], vocab: OncologyVocab, text: str) -> list[TumourMarker]:
    """Variants that name their gene ("ctDNA shows T790M") join that gene's result, or make one."""
    cleaned = _NEGATED_ALT.sub(" ", text)
    by_marker = {m.marker: m for m in markers}
    for v in _VARIANT.finditer(cleaned):
        token = f"{v.group(1)}{v.group(2)}{v.group(3) or ''}"
        gene = vocab.variant_genes.get(token)
        if gene is None:
            continue
        m = by_marker.get(gene)
        if m is None:
            m = TumourMarker(marker=gene, alteration=token, mention=token)
            markers.append(m)
            by_marker[gene] = m
        elif m.status == "positive" and token != m.alteration and token not in m.also:
            if m.alteration in ("", "mutation"):
                m.alteration = token
            else:
                m.also.append(token)
    return markers


def _implied(markers: list[TumourMarker], tumour: str | None, vocab: OncologyVocab, text: str) -> list[TumourMarker]:
    """Markers a tumour type is defined by (CML → BCR::ABL1), with a bare variant in the text attached to it."""
    have = {m.marker for m in markers}
    for marker, status in (vocab.implies.get(tumour or "") or {}).items():
        if marker in have:
            continue
        v = _VARIANT.search(text)
        alt = f"{v.group(1)}{v.group(2)}{v.group(3) or ''}" if v else ""
        markers.append(TumourMarker(marker=marker, status=status, alteration=alt, mention=f"({tumour} by definition)"))
    return markers


_RECEPTOR_NEG = re.compile(
    r"\s*(?:/\s*PR\s*)?(?:[-−–]\s*(?=[,;/.)]|\s|$)|[-−–:]?\s*(?:negative|neg\b))", re.I
)


def _names_other_receptor(prev: TumourMarker, words: str) -> bool:
    """A hormone-receptor result read from ER and then PR (or the reverse): two receptors, not a correction."""
    said = prev.mention.split()[0].lower() if prev.mention else ""
    now = words.split()[0].lower()

    def receptor(w: str) -> str:
        return "er" if w.startswith(("er", "estrogen", "oestrogen")) else ("pr" if w.startswith(("pr", "progesterone")) else w)

    return receptor(said) != receptor(now)


def _add_marker(
    found: dict[str, TumourMarker], mid: str, words: str, window: str, before: str, neg_before: bool, clause: str
) -> None:
    if mid == "TRIPLE_NEG":
        found["HR"] = TumourMarker(marker="HR", status="negative", mention=words)
        if "HER2" not in found:
            found["HER2"] = TumourMarker(marker="HER2", status="negative", mention=words)
        return
    origin = "unknown"
    ctx = before[-14:] + " " + window[len(words) : len(words) + 30]
    if _GERMLINE.search(ctx) or words.startswith("g"):
        origin = "germline"
    elif _SOMATIC.search(ctx) or words.startswith("t"):
        origin = "somatic"
    m = TumourMarker(marker=mid, mention=" ".join(window.split())[:80], origin=origin)
    low = words.lower()
    if mid == "MMR":
        m.level = "proficient" if (low.startswith("pmmr") or "proficient" in low) else "deficient"
        m.status = "negative" if m.level == "proficient" else "positive"
    elif mid == "MSI":
        if re.search(r"\bMSS\b|stable", words, re.I) or re.search(r"^\W*(?:stable|MSS|low)\b", window[len(words):], re.I):
            m.status = "negative"
        else:
            m.level = "high" if re.search(r"high|-H\b|unstable", words + window[len(words): len(words) + 12], re.I) else ""
            m.status = "positive" if m.level or _status(window[len(words):], mid) == "positive" else "negative"
            if m.status == "positive":
                m.level = "high"
    elif mid == "HR":
        w = window[len(words):]
        # "ER-" / "ER negative" / "ER: neg" is negative; the hyphen of "ER-positive" joins, it is not a minus sign
        m.status = "negative" if _RECEPTOR_NEG.match(w) else "positive"
        pct = re.match(r"\s*(?:[:=]\s*|\(\s*)?(<\s*)?(\d{1,3})\s*%", w)
        if pct:  # ASCO/CAP: 1 % or more stained nuclei is receptor positive (1-10 % "low positive")
            m.status = "negative" if pct.group(1) or int(pct.group(2)) < 1 else "positive"
        elif not re.match(r"\s*(?:/\s*PR\s*)?(?:\+|-|−|:|positive|negative|pos\b|neg\b|\s*status)", w, re.I) and words in ("ER", "PR", "HR"):
            return  # a bare 'ER' (emergency room) without a result is not a receptor status
        prev = found.get(mid)
        if prev is not None and prev.status == "positive" and m.status == "negative" and _names_other_receptor(prev, words):
            return  # ER-positive, PR-negative is hormone-receptor positive: either receptor positive makes it so
    else:
        named_kind = _variant_kind(mid, window[len(words):]) if mid not in ("PDL1", "TMB", "CLDN18", "FOLR1") else ""
        m.alteration = named_kind
        if m.alteration in ("", "mutation") and re.search(r"\b[A-Z][A-Z0-9]{1,7}(?:::|-|/)$", before) and mid not in _EXPRESSION:
            m.alteration = "fusion"  # "ETV6::NTRK3", "CD74-ROS1": a partner gene written before it
        m.status = "negative" if neg_before else _status(window[len(words):], mid)
        # "EGFR L858R negative" is rare; a named variant with 'negative' far after it stays positive
        if (
            not neg_before
            and m.status == "negative"
            and m.alteration not in ("", "mutation")
            and _NEG.search(window[len(words) : len(words) + 25]) is None
        ):
            m.status = "positive"
        held = found.get(mid)
        if (
            m.status == "negative"
            and held is not None
            and held.status == "positive"
            and held.alteration not in ("", "mutation")
            and named_kind not in ("", "mutation", held.alteration)
        ):
            return  # "FLT3-TKD D835Y, FLT3-ITD negative": the negative result is for the other alteration
        if m.status == "negative":
            m.alteration = ""
        if mid == "HER2":
            _her2(window, m)
            if neg_before:
                m.status, m.level = "negative", ""
        if mid == "BCR_ABL1":
            m.status = "negative" if re.search(r"(?:Ph|Philadelphia)[^.]{0,12}negative|Ph-\s|Ph−", words + window) else m.status
            t315 = re.search(r"T315I", clause)
            if t315 and m.status == "positive":
                m.alteration = "T315I"
        _scores(mid, window, m)
        if mid == "PDL1" and m.score:
            # TPS/CPS below 1 is PD-L1 negative (the labels' lowest cut-off is 1); any score from 1 up is expressed
            m.status = "positive" if any(v >= 1 for v in m.score.values()) else "negative"
    prev = found.get(mid)
    if prev is None or _more_specific(m, prev):
        if prev is not None and m.origin == "unknown":
            m.origin = prev.origin
        found[mid] = m


def _more_specific(new: TumourMarker, old: TumourMarker) -> bool:
    """A later mention wins when it says more (a variant, a score) or changes the result."""
    if new.status != old.status:
        return True
    return (bool(new.alteration) and new.alteration not in ("mutation",) and new.alteration != old.alteration) or (
        len(new.score) > len(old.score)
    ) or (bool(new.level) and not old.level)
