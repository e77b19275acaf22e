"""Approval records × the patient's tumour context → findings.

Three-valued, like the rule engine: a record is offered when every requirement holds, skipped when one is known
to fail, and turned into a question when a biomarker it needs was not reported. What the patient does not say
about setting and line does not block an offer; the finding then says which setting/line the label covers.
A positive driver with no approval for this tumour becomes a plain statement that nothing is approved for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from assistant.models import Finding, PatientContext, TumourContext, TumourMarker
from assistant.oncology.records import Approval, parse_threshold, token_kind
from assistant.oncology.vocab import OncologyVocab

Tri = bool | None
DOMAIN = "oncology"
# Settings a question usually means when it names none ("EGFR-mutant NSCLC — which TKI?"): the advanced
# disease most drug questions are about. Curative-intent settings are offered only when stated.
_DEFAULT_SETTINGS = frozenset(
    {"advanced", "metastatic", "locally_advanced", "unresectable", "recurrent", "relapsed_refractory", "newly_diagnosed",
     "chronic_phase"}
)
_LINE_WORDS = {"first": "as first-line treatment", "later": "after at least one earlier systemic therapy"}
_ASK_VALUES = {
    "EGFR": "exon 19 deletion, L858R, exon 20 insertion, T790M or another variant",
    "KRAS": "G12C or another variant",
    "BRAF": "V600E, V600K or a non-V600 alteration",
    "HER2": "IHC 0/1+/2+/3+ and ISH result, or a HER2 mutation",
    "PDL1": "TPS or CPS, as a percentage or score",
    "FLT3": "ITD or TKD",
    "IDH1": "mutated or wild-type",
    "BRCA": "germline or somatic, BRCA1 or BRCA2",
}


@dataclass
class OncologyMatch:
    findings: list[Finding] = field(default_factory=list)
    # positive driver results for which the pack holds no approval in this tumour (any setting)
    unapproved: list[TumourMarker] = field(default_factory=list)
    tumour_covered: bool = False


def _members(key: str, vocab: OncologyVocab) -> list[str]:
    return [key, *vocab.families.get(key, ())]


def _marker_results(key: str, tctx: TumourContext, vocab: OncologyVocab) -> list[TumourMarker]:
    wanted = set(_members(key, vocab))
    fam = vocab.family_of(key)
    out = [m for m in tctx.markers if m.marker in wanted]
    if fam:  # "RAS wild-type" answers a KRAS requirement
        out += [m for m in tctx.markers if m.marker == fam]
    return out


def _token_holds(value: str, m: TumourMarker) -> Tri:
    kind = token_kind(value)
    if value in ("negative", "wild_type"):
        if m.marker == "HER2" and m.status == "negative" and m.level in ("low", "ultralow"):
            return False
        return m.status == "negative"
    if m.status == "negative":
        if m.marker == "HER2" and value in ("low", "ultralow", "zero") and not m.level:
            return None  # 'HER2-negative' may be IHC 0, ultralow or low: the IHC score decides
        if value == "zero" and m.level == "zero":
            return True
        if value == "ultralow" and m.level == "zero":
            return None
        if kind == "threshold":
            return _threshold(value, m)
        return False
    if m.status == "unknown":
        return None
    alt = m.alteration
    if kind == "variant":
        if (
            alt == value
            or (len(value) <= 4 and alt.startswith(value))  # V600 covers V600E/K; R132 covers R132H
            or (value.endswith("X") and alt[:-1] == value[:-1])  # G719X covers G719A/S/C
        ):
            return True
        if alt in ("", "mutation"):
            return None  # 'EGFR-mutant' without the variant: ask which
        return False
    if kind == "kind":
        if value == "mutation":
            return alt not in ("fusion", "amplification", "loss") or None
        if value == "fusion":
            return True if alt == "fusion" else (None if alt == "" else False)
        if value == "uncommon":
            return alt in ("uncommon", "G719X", "G719A", "G719S", "G719C", "L861Q", "S768I") or (
                None if alt in ("", "mutation") else False
            )
        if alt == value:
            return True
        return None if alt in ("", "mutation") else False
    if kind == "status":
        if m.marker == "HER2":
            if value == "positive":
                return True if m.level == "positive" else (None if not m.level else False)
            if value in ("low", "ultralow", "zero"):
                if m.level == value:
                    return True
                return None if not m.level else False
        if value in ("positive", "high", "deficient"):
            return True
        if value in ("low", "ultralow", "zero"):
            return m.level == value or (None if not m.level else False)
        return False
    if kind == "threshold":
        return _threshold(value, m)
    return None


def _threshold(value: str, m: TumourMarker) -> Tri:
    parsed = parse_threshold(value)
    if parsed is None:
        return None
    what, op, bound = parsed
    value = m.score.get(what)
    if value is None:
        if m.status == "negative":
            return False
        if what == "tmb" and m.level == "high":
            return bound <= 10
        if what == "tps" and m.level == "high":
            return bound <= 50
        if what == "ps" and m.status == "positive":
            return True  # CLDN18.2 / FRα "positive" is defined by the companion test's cut-off
        return None
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


def _requirement(key: str, tokens: list[str], tctx: TumourContext, vocab: OncologyVocab) -> Tri:
    results = _marker_results(key, tctx, vocab)
    family = vocab.families.get(key)
    if family and set(tokens) <= {"negative", "wild_type"}:
        # "RAS wild-type" needs every member wild-type
        states = []
        for member in family:
            ms = [m for m in results if m.marker in (member, key)]
            states.append(True if any(m.status == "negative" for m in ms) else (False if any(m.status == "positive" for m in ms) else None))
        if any(s is False for s in states):
            return False
        return True if all(states) else None
    if not results:
        if tctx.no_other_drivers and key in _DRIVER_KEYS:
            return set(tokens) <= {"negative", "wild_type"} or False
        return None
    # a gene with two alterations (exon 19 deletion + T790M) satisfies a value either one satisfies
    results = [*results, *(m.model_copy(update={"alteration": a, "also": []}) for m in results for a in m.also)]
    verdicts = [_token_holds(t, m) for m in results for t in tokens]
    if any(v is True for v in verdicts):
        return True
    if any(v is None for v in verdicts):
        return None
    return False


_CONTEXT_MARKERS = frozenset({"HR", "PDL1"})
_DRIVER_KEYS = frozenset({"EGFR", "ALK", "ROS1", "RET", "MET", "KRAS", "NRAS", "BRAF", "HER2", "NTRK", "NRG1"})


def _origin_ok(rec: Approval, tctx: TumourContext) -> Tri:
    for key, want in rec.origin.items():
        ms = [m for m in tctx.markers if m.marker == key and m.status == "positive"]
        if not ms:
            return None
        if any(m.origin == want for m in ms):
            continue
        if all(m.origin not in ("unknown", want) for m in ms):
            return False
        return None
    return True


def _setting(rec: Approval, tctx: TumourContext, vocab: OncologyVocab) -> tuple[Tri, bool]:
    """(holds, assumed): assumed when the patient's setting is unstated and the record's is a default one."""
    if not rec.setting:
        return True, False
    if not tctx.settings:
        return (True, True) if set(rec.setting) & _DEFAULT_SETTINGS else (False, False)
    for s in tctx.settings:
        s_anc = vocab.setting_ancestors(s)
        for r in rec.setting:
            if r in s_anc or s in vocab.setting_ancestors(r):
                return True, False
    return False, False


def _treated_with(tokens: Iterable[str], ctx: PatientContext, tctx: TumourContext, lexicon) -> bool:
    tokens = list(tokens)
    for e in ctx.therapies:
        if e.status == "planned":
            continue
        if any(e.therapy == t or (lexicon is not None and lexicon.matches(e.therapy, t)) for t in tokens):
            return True
    return bool(set(tokens) & set(tctx.prior_classes))


def match_approvals(
    ctx: PatientContext,
    approvals: Iterable[Approval],
    vocab: OncologyVocab,
    lexicon=None,
    names: Mapping[str, str] | None = None,
    is_unverified=None,
) -> OncologyMatch:
    tctx = ctx.tumour
    out = OncologyMatch()
    if tctx is None or tctx.tumour is None:
        return out
    names = names or {}
    lineage = vocab.tumour_ancestors(tctx.tumour)
    # A tumour named only by its family ("acute leukemia") also meets its children's records; never for the
    # tumour-agnostic roots, which would match every record.
    children = (
        {t for t, p in vocab.tumour_parent.items() if p == tctx.tumour}
        if tctx.tumour not in ("solid_tumour", "other_solid")
        else set()
    )
    recs = [a for a in approvals if a.tumour in lineage or a.tumour in children]
    out.tumour_covered = any(a.tumour == tctx.tumour for a in recs)
    asks: dict[str, set[str]] = {}
    has_driver = any(m.status == "positive" and (m.alteration or m.level) for m in tctx.markers)
    near_miss: list[tuple[Approval, str]] = []
    for rec in recs:
        if rec.histology and tctx.histology and not set(rec.histology) & set(tctx.histology):
            continue
        if tctx.tumour in rec.not_tumours:
            continue
        if ctx.age is not None and (
            (rec.age_min is not None and ctx.age < rec.age_min) or (rec.age_max is not None and ctx.age > rec.age_max)
        ):
            continue
        if any(_requirement(k, v, tctx, vocab) is True for k, v in rec.biomarkers_not.items()):
            continue  # a result the label rules out (T315I for second-generation TKIs)
        verdicts = {k: _requirement(k, v, tctx, vocab) for k, v in rec.biomarkers.items()}
        if any(v is False for v in verdicts.values()):
            continue
        origin = _origin_ok(rec, tctx)
        if origin is False:
            continue
        if rec.not_after and _treated_with(rec.not_after, ctx, tctx, lexicon):
            if all(v is True for v in verdicts.values()) and verdicts:
                near_miss.append((rec, "already received " + ", ".join(t.replace("_", " ") for t in rec.not_after)))
            continue
        setting_ok, setting_assumed = _setting(rec, tctx, vocab)
        # Maintenance follows the induction line it completes: "first-line maintenance" after platinum is still first line.
        maintenance = "maintenance" in tctx.settings and "maintenance" in rec.setting
        line_ok = maintenance or not (
            (rec.line == "first" and tctx.line == "later") or (rec.line == "later" and tctx.line == "first")
        )
        after_ok: Tri = True
        if rec.after and maintenance and _treated_with(rec.after, ctx, tctx, lexicon):
            after_ok = True
        elif rec.after:
            if _treated_with(rec.after, ctx, tctx, lexicon):
                after_ok = True
            elif tctx.line == "first":
                after_ok = False
            else:
                after_ok = None  # earlier treatment not stated: the caveat names what the label requires
        unknown = [k for k, v in verdicts.items() if v is None]
        if origin is None:
            unknown += [f"{k}:origin" for k in rec.origin]
        if not setting_ok or not line_ok or after_ok is False:
            if not unknown and any(v is True for v in verdicts.values()):
                why = []
                if not setting_ok:
                    why.append("approved only " + ("/".join(s.replace("_", " ") for s in rec.setting)))
                if not line_ok or after_ok is False:
                    why.append("approved " + _LINE_WORDS.get(rec.line, "") + (
                        " (" + ", ".join(t.replace("_", " ") for t in rec.after) + ")" if rec.after else ""
                    ))
                near_miss.append((rec, "; ".join(w for w in why if w.strip())))
            continue
        if unknown:
            # Ask only where it could change the answer: the record already matches on another marker, or the
            # patient has no driver result at all yet.
            if any(v is True for v in verdicts.values()) or not has_driver:
                for k in unknown:
                    asks.setdefault(k, set()).update(rec.biomarkers.get(k.split(":")[0], []))
            continue
        caveats = []
        if setting_assumed:
            caveats.append("labelled for " + ", ".join(s.replace("_", " ") for s in rec.setting) + " disease")
        if tctx.line is None and rec.line in _LINE_WORDS:
            caveats.append(_LINE_WORDS[rec.line])
        if after_ok is None and rec.after:
            caveats.append("after " + " or ".join(t.replace("_", " ") for t in rec.after))
        reason = rec.summary
        if rec.partners_note:
            note = rec.partners_note.strip().rstrip(".")
            reason += " " + note[0].upper() + note[1:] + "."  # the partners note is a sentence of its own
        if caveats:
            reason += " Label: " + "; ".join(caveats) + "."
        out.findings.append(
            Finding(
                rule_id=rec.id,
                kind=rec.finding,
                therapy=rec.therapy,
                title=rec.heading(dict(names)),
                reason=reason,
                strength=rec.strength + (f" (FDA {rec.approved})" if rec.approved and rec.approved not in rec.strength else ""),
                preference=rec.preference,
                refs=[rec.id],
                unverified=bool(rec.unverified or (is_unverified and is_unverified([rec.id]))),
                domain=DOMAIN,
            )
        )
    # When the patient's own driver has a directed approval, records that rest only on receptor status or on no
    # biomarker at all are listed after it (still shown: they are approved, but they are not the answer asked for).
    def directed(a: Approval) -> bool:
        return targets_alteration(a, vocab)

    by_rec = {a.id: a for a in recs}
    if any(directed(by_rec[f.rule_id]) for f in out.findings):
        out.findings = [
            f if directed(by_rec[f.rule_id]) else f.model_copy(update={"kind": "consider", "preference": (f.preference or 2) + 4})
            for f in out.findings
        ]
    # One finding per regimen: the record written for this tumour beats a tumour-agnostic one.
    by_id = {a.id: a for a in recs}
    best: dict[str, Finding] = {}
    for f in out.findings:
        cur = best.get(f.therapy or "")
        if cur is None:
            best[f.therapy or ""] = f
            continue
        def rank(x: Finding) -> tuple[int, int, int]:
            a = by_id[x.rule_id]
            return (0 if a.tumour == tctx.tumour else 1, 0 if x.kind == "recommend" else 1, x.preference or 9)
        if rank(f) < rank(cur):
            best[f.therapy or ""] = f
    out.findings = [f for f in out.findings if best.get(f.therapy or "") is f]
    offered = {f.therapy for f in out.findings}
    offered_drugs = {d for t in offered if t for d in t.split("+")}
    # Why a matching biomarker's approval does not fit (first-line only, adjuvant only …) is said only when no
    # approval fits at all: beside real options it is noise, and naming a drug "excluded" next to a regimen
    # that contains it would contradict the answer.
    shown = 0
    for rec, why in near_miss:
        if out.findings and not why.startswith("already received"):
            continue
        if rec.therapy in offered or not why or set(rec.regimen) & offered_drugs or shown >= 4:
            continue
        shown += 1
        out.findings.append(
            Finding(
                rule_id=f"{rec.id}:not-this-setting",
                kind="exclude",
                therapy=rec.therapy,
                title=rec.heading(dict(names)),
                reason=f"Not for this patient as described: {why}.",
                strength=rec.strength,
                refs=[rec.id],
                unverified=rec.unverified,
                domain=DOMAIN,
            )
        )
        offered.add(rec.therapy)
    for key, values in sorted(asks.items()):
        marker = key.split(":")[0]
        if key.endswith(":origin"):
            q = f"Is the {marker} alteration germline or somatic (tumour-only testing cannot tell)?"
        else:
            hint = _ASK_VALUES.get(marker) or ", ".join(sorted(v.replace("_", " ") for v in values))
            q = f"What was the tumour's {marker.replace('PDL1', 'PD-L1')} result ({hint})?"
        out.findings.append(
            Finding(rule_id=f"ONC-ASK-{marker}", kind="ask", title=q, reason=q, refs=[], domain=DOMAIN)
        )
    # positive drivers the pack has no approval for in this tumour (in any setting or line)
    approved_markers = {k for a in recs for k in a.biomarkers}
    approved_markers |= {m for k in list(approved_markers) for m in vocab.families.get(k, ())}
    for m in tctx.markers:
        if m.status != "positive" or m.marker in ("HR", "PDL1", "TMB", "MSI", "MMR"):
            continue
        specific_ok = [
            a for a in recs if m.marker in _members_any(a, vocab) and _requirement_for_marker(a, m, vocab) is not False
        ]
        if m.marker not in approved_markers or not specific_ok:
            out.unapproved.append(m)
    return out


def targets_alteration(
    a: Approval, vocab: OncologyVocab | None, positive: Iterable[str] | None = None, classes: Iterable[str] = ()
) -> bool:
    """Whether an approval is directed at a tumour alteration: it requires a positive result of a marker that is not
    context (hormone receptors, PD-L1 decide eligibility, they are not the target; a requirement that includes
    "negative" — HER2-negative, RAS wild-type — is context too). With ``positive`` (the patient's positive markers)
    the target must be one of them, counting a family (RAS) by its members, or the drug's own class must be named
    after one ("KIT_inhibitor" for KIT D816V mastocytosis, whose label needs no test). The one notion of "directed"
    the matcher (ranking) and the abstention judge (does an offer answer the alteration asked about?) share."""
    if positive is not None:
        pos = set(positive)
        if any(c.lower().startswith((m.lower().replace("_", "") + "_", m.lower() + "_")) for m in pos for c in classes):
            return True
    for key, values in a.biomarkers.items():
        if key in _CONTEXT_MARKERS or set(values) & {"negative", "wild_type", "zero"}:
            continue
        if positive is None:
            return True
        members = {key, *(vocab.families.get(key, ()) if vocab is not None else ())}
        if members & set(positive):
            return True
    return False


def _members_any(a: Approval, vocab: OncologyVocab) -> set[str]:
    keys = set(a.biomarkers)
    return keys | {m for k in keys for m in vocab.families.get(k, ())}


def _requirement_for_marker(a: Approval, m: TumourMarker, vocab: OncologyVocab) -> Tri:
    for key, tokens in a.biomarkers.items():
        if m.marker in _members(key, vocab):
            if set(tokens) <= {"negative", "wild_type"}:
                return False
            return any(_token_holds(t, m) is not False for t in tokens) or False
    return None


def describe_marker(m: TumourMarker) -> str:
    alt = m.alteration.replace("_", " ") if m.alteration and m.alteration != "mutation" else ""
    return f"{m.marker.replace('_', '::')}{' ' + alt if alt else ''}{'' if alt else (' ' + m.level if m.level else ' alteration')}"
