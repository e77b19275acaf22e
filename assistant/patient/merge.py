"""Turn merging: each turn's `TurnFacts` folded into the `PatientContext`, in order — a later statement replaces
an earlier one and the replacement is recorded in `changes` ("liver metastases: absent → present, turn 2").

Third step of the patient stage (after `extract` reads each turn; before `infer`). `add_llm_facts` folds in what
an optional language-model reader found, filling only what the patterns left empty.
"""

from __future__ import annotations

import logging
from typing import Any

from assistant.knowledge import Lexicon
from assistant.models import FactChange, PatientContext
from assistant.patient.facts import SCALARS, Change, SafetyFacts, TurnFacts, trimester_of

log = logging.getLogger(__name__)


def merge_turn(
    ctx: PatientContext, facts: TurnFacts, turn: int, lexicon: Lexicon, primary: frozenset[str] = frozenset()
) -> PatientContext:
    """The context with one turn's facts folded in; every replaced value is listed in `changes`."""
    data = ctx.model_copy(deep=True)
    changes = list(data.changes)

    def change(field_name: str, old: Any, new: Any) -> None:
        if old not in (None, "", "unknown") and old != new:
            changes.append(FactChange(field=field_name, old=str(old), new=str(new), turn=turn))

    for name in SCALARS:
        new = getattr(facts, name)
        if new is None:
            continue
        old = getattr(data, name)
        change(name, old, new)
        setattr(data, name, new)
    # Conditions.
    for cid, pol in facts.diagnoses.items():
        old = data.comorbidities.get(cid)
        if old is not None and old != pol:
            change(f"condition:{cid}", old, pol)
        data.comorbidities[cid] = pol
    data.diagnoses = [c for c in data.diagnoses if data.comorbidities.get(c, "present") == "present"]
    for cid, pol in data.comorbidities.items():
        if pol == "present" and cid in primary and cid not in data.diagnoses:
            data.diagnoses.append(cid)
    # Sites.
    for site, pol in facts.sites.items():
        old = data.sites.get(site)
        change(f"site:{site}", old, pol)
        data.sites[site] = pol
    if facts.sites.get("visceral") == "absent":
        for s in ("liver", "lung", "brain", "adrenal"):
            if data.sites.get(s) == "present" and s not in facts.sites:
                change(f"site:{s}", "present", "absent")
                data.sites[s] = "absent"
    if (
        any(data.sites.get(s) == "present" for s in ("liver", "lung", "brain", "adrenal"))
        and data.sites.get("visceral") != "present"
    ):
        change("site:visceral", data.sites.get("visceral"), "present")
        data.sites["visceral"] = "present"
    # Biomarkers (keyed by marker name).
    current = {b.name: b for b in data.biomarkers}
    for name, bm in facts.biomarkers.items():
        old = current.get(name)
        if old is not None:
            if old.result != bm.result:
                change(f"biomarker:{name}", old.result, bm.result)
            origin = bm.origin if bm.origin != "unknown" else old.origin
            if old.origin != "unknown" and bm.origin != "unknown" and old.origin != bm.origin:
                change(f"biomarker:{name}:origin", old.origin, bm.origin)
            # "It's germline" refines the origin without restating the result.
            result = (
                bm.result
                if not (bm.result == "pathogenic" and old.result in ("likely_pathogenic",))
                else old.result
            )
            bm = bm.model_copy(update={"origin": origin, "result": result})
        current[name] = bm
    data.biomarkers = list(current.values())
    # Labs: a new value of the same lab extends its series.
    for name, lab in facts.labs.items():
        old = data.labs.get(name)
        if old is not None and old.value is not None and lab.value is not None and old.value != lab.value:
            change(f"lab:{name}", old.value, lab.value)
            series = (old.series or [old.value]) + (
                lab.series[1:] if lab.series and lab.series[0] == old.value else lab.series or [lab.value]
            )
            trend = (
                lab.trend if lab.trend != "unknown" else ("rising" if lab.value > old.value else "falling")
            )
            lab = lab.model_copy(update={"series": series, "trend": trend})
        elif old is not None and lab.uln_multiple is not None and lab.uln_multiple != old.uln_multiple:
            change(
                f"lab:{name}:xULN",
                old.uln_multiple if old.uln_multiple is not None else old.value,
                lab.uln_multiple,
            )
        elif old is not None and lab.value is None:
            lab = old.model_copy(update={"trend": lab.trend if lab.trend != "unknown" else old.trend})
        data.labs[name] = lab
    # Therapies: one history entry and at most one planned entry per therapy id.
    history = {t.therapy: t for t in data.therapies if t.status != "planned"}
    planned = {t.therapy: t for t in data.therapies if t.status == "planned"}
    for (tid, is_planned), exp in facts.therapies.items():
        if is_planned:
            if tid not in history or history[tid].status == "ongoing":
                planned[tid] = exp
            else:
                # Asking about something already given (re-challenge) keeps both facts.
                planned[tid] = exp
            continue
        old = history.get(tid)
        if old is not None and old.status != exp.status:
            if exp.status == "received":
                continue  # a bare later mention does not erase how it ended
            change(f"therapy:{tid}", old.status, exp.status)
        history[tid] = exp
        planned.pop(tid, None) if exp.status == "ongoing" else None
    data.therapies = list(history.values()) + list(planned.values())
    _merge_safety(data, facts, change, other_infection=facts.diagnoses.get("pneumonia") == "present")
    data.symptoms = list(dict.fromkeys(data.symptoms + facts.symptoms))
    data.notes = list(dict.fromkeys(data.notes + facts.notes))
    data.changes = changes
    return data


def _merge_safety(data: PatientContext, facts: SafetyFacts, change: Change, *, other_infection: bool) -> None:
    """Fold one turn's safety facts into the context (scalars are merged by the caller's generic loop)."""
    # A turn that says she is no longer pregnant (delivered, test negative) clears the pregnancy details.
    if facts.pregnant is False:
        for name in ("gestational_weeks", "trimester"):
            if getattr(data, name) is not None:
                change(name, getattr(data, name), None)
                setattr(data, name, None)
    if facts.pregnant is True and facts.postpartum is None and data.postpartum:
        change("postpartum", True, False)
        data.postpartum = False
    # A new trimester stated without weeks makes older weeks stale.
    if (
        facts.trimester is not None
        and facts.gestational_weeks is None
        and data.gestational_weeks is not None
        and trimester_of(data.gestational_weeks) != facts.trimester
    ):
        change("gestational_weeks", data.gestational_weeks, None)
        data.gestational_weeks = None
    # Allergies: a denial or 'no known drug allergies' removes earlier ones (shown as a change).
    allergies = list(data.allergies)
    details = {d.substance: d for d in data.allergy_details}
    removed = list(facts.allergies_denied)
    if facts.no_known_allergies and not facts.allergies:
        removed.extend(allergies)
    for sub in removed:
        if sub in allergies:
            change(f"allergy:{sub}", "present", "absent")
            allergies.remove(sub)
            details.pop(sub, None)
    for sub in facts.allergies:
        new = facts.allergy_details.get(sub)
        old = details.get(sub)
        if new is not None:
            if old is not None and old.severity != new.severity:
                if new.severity == "unknown" or (not new.reaction and old.reaction):
                    new = old  # "penicillin allergy" again does not erase the reaction given before
                else:
                    change(f"allergy:{sub}", old.severity, new.severity)
            details[sub] = new
        if sub not in allergies:
            allergies.append(sub)
    data.allergies = allergies
    data.allergy_details = [details[a] for a in allergies if a in details]
    # Declined options: a later acceptance lifts a refusal.
    declined = list(data.declined)
    for d in facts.accepted:
        if d in declined:
            change(f"declined:{d}", "declined", "accepted")
            declined.remove(d)
    for d in facts.declined:
        if d not in declined:
            declined.append(d)
    data.declined = declined
    if facts.resistance:
        data.local_resistance = {**data.local_resistance, **facts.resistance}
    # A follow-up turn with flank pain / CVA tenderness upgrades an earlier cystitis.
    if (
        facts.infection_site is None
        and facts.upper_tract_signs
        and not other_infection
        and data.comorbidities.get("uti") == "present"
        and data.infection_site in (None, "cystitis")
    ):
        change("infection_site", data.infection_site, "pyelonephritis")
        data.infection_site = "pyelonephritis"
        data.notes.append(
            "Upper urinary tract infection (pyelonephritis) read from: "
            + ", ".join(dict.fromkeys(facts.upper_tract_signs))
            + "."
        )


def add_llm_facts(ctx: PatientContext, extra: PatientContext | dict[str, Any] | None) -> PatientContext:
    """Fill only what the patterns left empty; a disagreement becomes a note, never an override."""
    if extra is None:
        return ctx
    try:
        other = extra if isinstance(extra, PatientContext) else PatientContext.model_validate(extra)
    except Exception as exc:  # the model's output is untrusted; a bad one is logged and ignored
        log.warning("LLM patient extraction ignored: %s", exc)
        return ctx
    data = ctx.model_copy(deep=True)
    notes = list(data.notes)
    for name in SCALARS:
        mine, theirs = getattr(data, name), getattr(other, name)
        if theirs is None:
            continue
        if mine is None:
            setattr(data, name, theirs)
            notes.append(f"{name} = {theirs} (added by the language-model reader)")
        elif mine != theirs:
            notes.append(
                f"Language-model reader suggested {name} = {theirs}; kept {mine} from the text patterns."
            )
    for d in other.diagnoses:
        if d not in data.diagnoses and d not in data.comorbidities:
            data.diagnoses.append(d)
    for k, v in other.comorbidities.items():
        data.comorbidities.setdefault(k, v)
    for k, v in other.sites.items():
        if k not in data.sites:
            data.sites[k] = v
        elif data.sites[k] != v:
            notes.append(f"Language-model reader suggested site {k} = {v}; kept {data.sites[k]}.")
    for k, v in other.labs.items():
        data.labs.setdefault(k, v)
    have_t = {(t.therapy, t.status == "planned") for t in data.therapies}
    for t in other.therapies:
        if (t.therapy, t.status == "planned") not in have_t and not any(
            x.therapy == t.therapy for x in data.therapies
        ):
            data.therapies.append(t)
    have_b = {b.name for b in data.biomarkers}
    data.biomarkers.extend(b for b in other.biomarkers if b.name not in have_b)
    data.allergies = list(dict.fromkeys(data.allergies + other.allergies))
    have_a = {d.substance for d in data.allergy_details}
    data.allergy_details.extend(d for d in other.allergy_details if d.substance not in have_a)
    data.declined = list(dict.fromkeys(data.declined + other.declined))
    data.medications = list(dict.fromkeys(data.medications + other.medications))
    data.notes = list(dict.fromkeys(notes))
    return data
