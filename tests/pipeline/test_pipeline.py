"""The answer pipeline on the real knowledge and rule engine over the fixture corpus (tests/fixtures/corpus):
composer answers, streaming order, abstention, validation, and a scripted LLM whose bad answers (wrong citations,
excluded therapy, invented facts, missing warnings, garbage, errors, hangs) must each be caught. Retrieval is a
fake over the corpus's own passages; a fake engine only where a test needs findings the rules do not give."""

from __future__ import annotations

import re

import pytest

from assistant.answer.format import SECTIONS, section_titles
from assistant.answer.prompts import REFUSAL
from assistant.answer.support import strip_citations
from assistant.answer.verify import parse_answer
from assistant.errors import QuestionError
from assistant.models import Finding
from assistant.retrieval import best_reading
from assistant.testing.fakes import FakeEngine, FakeRetriever, ScriptedChatModel

# A good structured answer to Q; citation numbers follow the plan: [1] REC-CABA, [2] REC-OLA, [3] REC-LU,
# [4] REC-RA, [5] REC-GEN.
GOOD_ANSWER = """## Bottom line
Cabazitaxel is the preferred next option because the disease progressed after docetaxel and cabazitaxel prolonged overall survival [1].

## Options that fit this patient
1. Cabazitaxel with prednisone after docetaxel progression prolonged overall survival compared with mitoxantrone [1].
2. Olaparib is an option after progression on abiraterone when a deleterious homologous recombination repair alteration is found [2].

## Not recommended for this patient
- Lu-177-PSMA is not recommended: there is no evidence supporting re-treatment after progression during therapy [3].

## Pitfalls
- Radium-223 must not be combined with abiraterone and prednisone because fractures and deaths increased [4].

## Monitoring
- Blood counts are checked monthly on olaparib because anaemia is common [2].

## Next steps / trials
- Germline and tumour homologous recombination repair testing is recommended to guide PARP inhibitor use [5].
"""

Q = "What are the options for mCRPC after docetaxel, abiraterone and Pluvicto with a rising PSA?"


def body_of(md: str) -> str:
    """The answer without the Sources list and mode notes."""
    return md.split("## Sources")[0]


def claim_sentences(md: str):
    _, _, sents = parse_answer(body_of(md).split("## Suggested follow-up questions")[0])
    return [s for s in sents if s.kind == "claim"]


# ---------------------------------------------------------------- composer (none backend)
def test_composer_answer_is_structured_cited_and_verified(make_assistant, knowledge):
    a = make_assistant().ask(Q)
    assert a.backend == "none" and a.verification.mode == "composer"
    assert a.verification.verified, a.verification.failed
    for title in SECTIONS:
        assert f"## {title}" in a.answer_markdown
    valid = {c.number for c in a.citations}
    claims = claim_sentences(a.answer_markdown)
    assert claims
    for s in claims:
        assert s.citations, f"uncited composer sentence: {s.text}"
        assert set(s.citations) <= valid, s.text
    # the excluded therapy appears only in the "Not recommended" section or in the bottom-line exclusion list
    for s in claims:
        if "lu177" in s.text.lower() or "lu-177" in s.text.lower():
            assert s.section in (SECTIONS[0], SECTIONS[2]), s.text
    assert "Radium-223 must not be combined" in a.answer_markdown
    assert "homologous recombination repair testing" in a.answer_markdown
    assert len(a.follow_ups) == 3 and all(q.endswith("?") for q in a.follow_ups)
    assert "## Sources" in a.answer_markdown and "(unverified)" in a.answer_markdown
    for key in ("validate", "context", "rules", "retrieval", "plan", "verify", "render", "total", "plan_ready"):
        assert key in a.timings_ms, key
    assert a.corpus_version == knowledge.version and a.corpus_version


def test_findings_carry_the_numbers_of_their_passages(make_assistant, passages):
    a = make_assistant().ask(Q)
    by_chunk = {c.chunk_id: c.number for c in a.citations}
    for f in a.findings:
        expected = [by_chunk[passages[r].chunk_id] for r in f.refs]
        assert f.citations == expected, f.rule_id
    assert [c.number for c in a.citations] == list(range(1, len(a.citations) + 1))
    assert len({c.chunk_id for c in a.citations}) == len(a.citations), "passages must be deduplicated"


def test_patient_audience_changes_wording_not_facts(make_assistant):
    asst = make_assistant()
    clin, pat = asst.ask(Q), asst.ask(Q, audience="patient")
    assert [c.chunk_id for c in clin.citations] == [c.chunk_id for c in pat.citations]
    assert f"## {section_titles('patient')[1]}" in pat.answer_markdown
    assert f"## {SECTIONS[1]}" not in pat.answer_markdown
    assert pat.verification.verified, pat.verification.failed


def test_follow_ups_follow_the_plan_not_a_script(make_assistant):
    only_ask = [Finding(rule_id="A", kind="ask", reason="Is there visceral disease?", refs=["REC-GEN"]),
                Finding(rule_id="B", kind="recommend", therapy="cabazitaxel", reason="After docetaxel.", refs=["REC-CABA"])]
    a1 = make_assistant().ask(Q)
    a2 = make_assistant(engine=FakeEngine(only_ask)).ask(Q)
    assert a1.follow_ups != a2.follow_ups
    assert any("visceral" in q for q in a2.follow_ups)
    assert any("cabazitaxel" in q for q in a2.follow_ups)


def test_retrieval_query_adds_salient_context(make_assistant, make_retriever):
    r = make_retriever()
    make_assistant(retriever=r).ask("What next?")
    assert "mCRPC" in r.queries[0] and "CHEK2" in r.queries[0] and "docetaxel" in r.queries[0]


def test_a_long_vignette_is_also_searched_whole_and_each_passage_keeps_its_best_relevance(
    make_assistant, passages
):
    """The opening + asking sentences lead retrieval; the whole vignette (which may name the condition the opening
    only describes) is searched too, and a passage found by both keeps the higher relevance."""
    weak, strong = passages["REC-GEN"].model_copy(update={"relevance": 0.2}), passages["REC-GEN"].model_copy(update={"relevance": 0.8})
    other = passages["REC-MON"].model_copy(update={"relevance": 0.5})

    class TwoReadings(FakeRetriever):
        def retrieve(self, query, k=None, filters=None):
            self.queries.append(query)
            return [weak] if len(self.queries) == 1 else [strong, other]

    r = TwoReadings(passages)
    vignette = ("A 70-year-old man has metastatic prostate cancer. He had docetaxel. He then had abiraterone. "
                "His PSA is rising on scans every three months. What should he switch to?")
    a = make_assistant(retriever=r).ask(vignette)
    assert len(r.queries) == 2 and r.queries[1] == vignette and r.queries[0] != vignette
    assert not a.abstained
    best = best_reading([weak], [strong, other], k=6)
    assert [p.relevance for p in best] == [0.8, 0.5]
    assert best_reading([weak], [strong, other], k=1) == [strong]
    r2 = TwoReadings(passages)
    make_assistant(retriever=r2).ask("What next?")
    assert len(r2.queries) == 1  # a short question is searched once


# ---------------------------------------------------------------- streaming
def test_stream_order_plan_then_deltas_then_final(make_assistant):
    events = list(make_assistant().ask_stream(Q))
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "final" and kinds.count("final") == 1
    assert "delta" in kinds and all(k == "delta" for k in kinds[1:-1])
    plan = events[0]
    assert plan.citations and plan.findings and plan.patient_context is not None
    assert plan.findings[0].citations, "plan findings must already carry citation numbers"
    assert events[-1].answer is not None


def test_llm_stream_deltas_concatenate_to_the_draft(make_assistant):
    model = ScriptedChatModel(responses=[GOOD_ANSWER])
    events = list(make_assistant(model).ask_stream(Q))
    draft = "".join(e.text for e in events if e.kind == "delta")
    assert draft.split() == GOOD_ANSWER.split()
    assert events[0].kind == "plan" and events[-1].kind == "final"


# ---------------------------------------------------------------- abstention and validation
def test_abstains_when_nothing_relevant(make_assistant, make_retriever, passages):
    weak = [passages["REC-GEN"].model_copy(update={"score": 0.01})]
    a = make_assistant(retriever=make_retriever(hits=weak), engine=FakeEngine([])).ask("How do I treat a sprained ankle?")
    assert a.abstained and REFUSAL in a.answer_markdown
    assert a.citations == [] and a.verification.mode == "abstain" and not a.verification.verified
    assert "guiderail ingest" in a.answer_markdown


def test_abstention_uses_calibrated_relevance_not_the_fused_rank_score(make_assistant, make_retriever, passages):
    weak = [passages["REC-GEN"].model_copy(update={"score": 0.9, "relevance": 0.05})]
    a = make_assistant(retriever=make_retriever(hits=weak), engine=FakeEngine([])).ask("Anything about knees?")
    assert a.abstained


def test_ask_only_findings_without_relevant_passages_abstain(make_assistant, make_retriever):
    ask = [Finding(rule_id="A", kind="ask", reason="Which disease state?", refs=["REC-GEN"])]
    a = make_assistant(retriever=make_retriever(hits=[]), engine=FakeEngine(ask)).ask("Something unrelated?")
    assert a.abstained


def test_does_not_abstain_when_rules_are_backed_even_if_retrieval_is_weak(make_assistant, make_retriever):
    a = make_assistant(retriever=make_retriever(hits=[])).ask(Q)
    assert not a.abstained and a.citations


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x01", "x" * 20_001])
def test_bad_questions_raise_question_error(make_assistant, bad):
    with pytest.raises(QuestionError):
        make_assistant().ask(bad)


def test_control_characters_are_stripped(make_assistant):
    a = make_assistant().ask("What next\x00 for\x07 mCRPC?")
    assert a.question == "What next for mCRPC?"


def test_bad_audience_is_rejected(make_assistant):
    with pytest.raises(QuestionError, match="audience"):
        make_assistant().ask(Q, audience="robot")


# ---------------------------------------------------------------- scripted LLM: good and bad answers
def test_good_llm_answer_passes_unchanged(make_assistant):
    a = make_assistant(ScriptedChatModel(responses=[GOOD_ANSWER])).ask(Q)
    assert a.verification.mode == "llm", a.verification.failed
    assert a.verification.verified and not a.verification.failed
    assert "Cabazitaxel is the preferred next option" in a.answer_markdown
    assert a.banner is None


def test_unknown_citation_numbers_are_removed(make_assistant):
    bad = GOOD_ANSWER.replace("anaemia is common [2]", "anaemia is common [2][17]")
    a = make_assistant(ScriptedChatModel(responses=[bad])).ask(Q)
    assert "[17]" not in a.answer_markdown
    assert any("17" in r for r in a.verification.repaired)
    assert any("unknown" in f for f in a.verification.failed)


def test_recommending_an_excluded_therapy_by_brand_name_is_caught(make_assistant):
    bad = GOOD_ANSWER.replace(
        "2. Olaparib is an option",
        "2. Pluvicto re-treatment is a good option after progression during therapy [3].\n3. Olaparib is an option",
    )
    model = ScriptedChatModel(responses=[bad, GOOD_ANSWER])
    a = make_assistant(model).ask(Q)
    assert any(f.startswith("excluded-therapy") for f in a.verification.failed), a.verification.failed
    assert "Pluvicto re-treatment is a good option" not in a.answer_markdown
    assert len(model.prompts) == 2, "an excluded-therapy violation triggers one regeneration"
    assert "recommends" in model.prompts[1][-1].content, "the repair prompt lists the violations"
    assert a.verification.mode == "llm-repaired" and a.verification.verified


def test_excluded_therapy_is_struck_when_regeneration_repeats_it(make_assistant):
    bad = GOOD_ANSWER.replace("## Pitfalls", "## Pitfalls\n- Consider Pluvicto again for bone pain [3].")
    a = make_assistant(ScriptedChatModel(responses=[bad, bad])).ask(Q)
    assert "Consider Pluvicto again" not in a.answer_markdown
    assert any(r.startswith("struck (") and "excluded-therapy" in r for r in a.verification.repaired), a.verification.repaired
    assert a.verification.verified, "what remains after striking passed every check"


def test_negated_and_historical_mentions_are_allowed(make_assistant):
    ok = GOOD_ANSWER.replace(
        "## Pitfalls\n",
        "## Pitfalls\n- Do not restart Pluvicto after progression during therapy, as there is no evidence supporting re-treatment [3].\n",
    ).replace("Cabazitaxel with prednisone after docetaxel", "After Lu-177-PSMA, cabazitaxel with prednisone after docetaxel")
    a = make_assistant(ScriptedChatModel(responses=[ok])).ask(Q)
    assert not any(f.startswith("excluded-therapy") for f in a.verification.failed), a.verification.failed


def test_invented_fact_is_flagged_and_struck(make_assistant):
    bad = GOOD_ANSWER.replace(
        "## Monitoring\n",
        "## Monitoring\n- Cabazitaxel doubles survival to 48 months in every patient with liver metastases [1].\n",
    )
    a = make_assistant(ScriptedChatModel(responses=[bad]), repair_policy="strike").ask(Q)
    assert any(f.startswith("support") for f in a.verification.failed), a.verification.failed
    assert "48 months" not in a.answer_markdown
    assert a.verification.mode == "llm-repaired"


def test_uncited_claim_is_caught(make_assistant):
    bad = GOOD_ANSWER.replace("## Monitoring\n", "## Monitoring\nEnzalutamide should be started immediately in all patients with rising PSA.\n")
    a = make_assistant(ScriptedChatModel(responses=[bad]), repair_policy="strike").ask(Q)
    assert any(f.startswith("uncited") for f in a.verification.failed)
    assert "Enzalutamide should be started" not in a.answer_markdown


def test_missing_warning_and_question_are_appended_by_code(make_assistant):
    bad = re.sub(r"## Pitfalls\n.*?\n\n", "## Pitfalls\n- Watch for fatigue on cabazitaxel after docetaxel [1].\n\n", GOOD_ANSWER, flags=re.S)
    bad = bad.replace("- Germline and tumour homologous recombination repair testing is recommended to guide PARP inhibitor use [5].", "")
    a = make_assistant(ScriptedChatModel(responses=[bad])).ask(Q)
    md = a.answer_markdown
    assert "## Warnings and open questions" in md
    assert "Radium-223 must not be combined with abiraterone" in md
    assert "Has germline and tumour homologous recombination repair testing been done [5]?" in md
    assert any("R-RA" in r for r in a.verification.repaired) and any("R-ASK" in r for r in a.verification.repaired)


# ---------------------------------------------------------------- LLM failures → composer fallback
def _is_fallback(a) -> None:
    assert a.verification.mode == "composer-fallback"
    assert a.banner and "deterministically" in a.banner
    assert f"## {SECTIONS[0]}" in a.answer_markdown and a.citations
    assert a.answer_markdown.lstrip().startswith("> **Note:**")


def test_llm_exception_falls_back_to_composer(make_assistant):
    a = make_assistant(ScriptedChatModel(error="connection refused")).ask(Q)
    _is_fallback(a)
    assert any("connection refused" in f for f in a.verification.failed)


def test_llm_timeout_falls_back_to_composer(make_assistant):
    slow = ScriptedChatModel(responses=[GOOD_ANSWER], delay_s=0.3)
    a = make_assistant(slow, settings={"llm_timeout_s": 0.5}).ask(Q)
    _is_fallback(a)
    assert "timed out" in a.banner


@pytest.mark.parametrize("garbage", ["", "def f():\n    return 42", "I think the patient should do well overall and see a doctor."])
def test_garbage_llm_output_falls_back(make_assistant, garbage):
    _is_fallback(make_assistant(ScriptedChatModel(responses=[garbage])).ask(Q))


def test_unrepairable_answer_falls_back(make_assistant):
    bad = "## Bottom line\nPluvicto should be restarted now [3]. Enzalutamide doubles survival to 99 months [1]."
    a = make_assistant(ScriptedChatModel(responses=[bad, bad])).ask(Q)
    _is_fallback(a)


def test_composer_answer_with_an_unbacked_finding_is_never_marked_verified(make_assistant, engine, scenario_context):
    # A finding whose refs resolve to no passage: the composer still shows it, flagged, and unverified.
    odd = [*engine.evaluate(scenario_context()), Finding(rule_id="X", kind="consider", therapy="olaparib", reason="Olaparib may be considered when a BRCA2 alteration is found later on.", refs=["NO-SUCH-REF"])]
    a = make_assistant(engine=FakeEngine(odd)).ask(Q)
    assert not a.verification.verified
    assert any(f.startswith("uncited") for f in a.verification.failed)
    assert "⚠ unverified" in a.answer_markdown


def test_answer_text_is_plain_of_template_markers(make_assistant):
    a = make_assistant(ScriptedChatModel(responses=["```markdown\n" + GOOD_ANSWER + "\n## Sources\n1. made up\n```<|im_end|>"])).ask(Q)
    assert "```" not in a.answer_markdown and "<|im_end|>" not in a.answer_markdown
    assert "made up" not in a.answer_markdown
    assert strip_citations("a [1] b") == "a b"


def test_missing_bottom_line_is_added_from_the_plan(make_assistant):
    no_bottom = GOOD_ANSWER.split("\n\n", 1)[1]
    a = make_assistant(ScriptedChatModel(responses=[no_bottom])).ask(Q)
    assert a.answer_markdown.lstrip().startswith("## Bottom line")
    assert any(r.startswith("structure:") for r in a.verification.repaired)


def test_appended_rule_items_without_passages_are_marked_not_cited(make_assistant, engine, scenario_context):
    findings = [*engine.evaluate(scenario_context()), Finding(rule_id="R-ECOG", kind="ask", reason="What is the ECOG status? It decides chemotherapy.", refs=[])]
    a = make_assistant(ScriptedChatModel(responses=[GOOD_ANSWER]), engine=FakeEngine(findings)).ask(Q)
    assert "What is the ECOG status? It decides chemotherapy (rule check; no passage retrieved)" in a.answer_markdown
    assert not any(f.startswith("uncited") for f in a.verification.failed), a.verification.failed


def test_citation_spelling_variants_are_normalised():
    from assistant.answer.generate import clean_llm_text

    assert clean_llm_text("A [Passage 2]. B [1, 3]. C 【4】.") == "A [2]. B [1][3]. C [4]."
    assert clean_llm_text("## Bottom line: X is preferred [1].") == "## Bottom line\nX is preferred [1]."


SUMMARY = (
    "Cabazitaxel is the preferred option because the disease progressed after docetaxel and cabazitaxel prolonged overall survival [1]. "
    "Lu-177-PSMA is not recommended because there is no evidence supporting re-treatment after progression during therapy [3]."
)


def test_summary_style_puts_the_verified_summary_over_rule_sections(make_assistant):
    model = ScriptedChatModel(responses=[SUMMARY])
    a = make_assistant(model, answer_style="summary").ask(Q)
    md = a.answer_markdown
    assert md.startswith("## Bottom line\nCabazitaxel is the preferred option")
    for title in SECTIONS[1:]:
        assert f"## {title}" in md
    assert "Radium-223 must not be combined" in md, "warnings come from the plan"
    assert a.verification.mode == "llm" and a.verification.verified, a.verification.failed
    assert model.call_kwargs[0].get("max_tokens"), "the summary is length-capped"
    assert "summary" not in model.prompts[0][0].content or "2 to 4 sentences" in model.prompts[0][0].content
    assert "bottom line written by the language model" in md


def test_summary_style_catches_an_excluded_recommendation(make_assistant):
    bad = "Pluvicto re-treatment is the preferred option now [3]. " + SUMMARY
    a = make_assistant(ScriptedChatModel(responses=[bad, bad]), answer_style="summary").ask(Q)
    assert "Pluvicto re-treatment is the preferred option" not in a.answer_markdown
    assert any("excluded-therapy" in f for f in a.verification.failed)


def test_local_backend_defaults_to_summary_style(make_assistant):
    a = make_assistant(ScriptedChatModel(responses=[SUMMARY]), settings={"llm": "local"})
    assert a.answer_style == "summary"
    assert make_assistant(ScriptedChatModel(responses=[SUMMARY])).answer_style == "sections"


def test_history_prior_context_and_patient_text_reach_context_extraction(settings, fake_embedder, knowledge, engine, make_retriever, scenario_context):
    from assistant.pipeline import Assistant

    seen = {}

    def recording(text, history=None, prior=None, lexicon=None):
        seen.update(text=text, history=history, prior=prior, lexicon=lexicon)
        return scenario_context()

    asst = Assistant(settings, retriever=make_retriever(), engine=engine, knowledge=knowledge,
                     embedder=fake_embedder, extract_context=recording)
    prior = scenario_context()
    history = [{"role": "user", "content": "He has mCRPC."}, {"role": "assistant", "content": "Noted."}]
    asst.ask("And what next?", patient="Prior docetaxel.", history=history, context=prior)
    assert seen["text"].startswith("Prior docetaxel.") and seen["text"].endswith("And what next?")
    assert seen["history"] == history and seen["prior"] is prior and seen["lexicon"] is not None


def test_a_final_context_is_not_re_read_from_the_question(settings, fake_embedder, knowledge, engine, make_retriever, scenario_context):
    """A clinician's correction (e.g. CHEK2 pathogenic → VUS) must survive re-answering the same question."""
    from assistant.pipeline import Assistant

    calls = []

    def recording(text, history=None, prior=None, lexicon=None):
        calls.append(text)
        return prior if prior is not None else scenario_context()

    asst = Assistant(settings, retriever=make_retriever(), engine=engine, knowledge=knowledge,
                     embedder=fake_embedder, extract_context=recording)
    corrected = scenario_context()
    answer = asst.ask("mCRPC with a CHEK2 mutation — what now?", context=corrected, context_is_final=True)
    assert calls == [], "the question must not be re-extracted over a final context"
    assert answer.patient_context == corrected
    asst.ask("same question", patient="ECOG 1.", context=corrected, context_is_final=True)
    assert calls == ["ECOG 1."], "only the added patient text is read on top of a final context"


def test_warm_up_prepares_once_and_never_raises(make_assistant, make_retriever, passages):
    r = make_retriever()
    make_assistant(retriever=r).warm_up()
    assert r.queries, "warm-up exercises retrieval"

    class Broken(FakeRetriever):
        def retrieve(self, *a, **k):
            raise RuntimeError("index missing")

    make_assistant(retriever=Broken(passages)).warm_up()  # best effort: the real question reports the error


def test_concurrent_questions_get_plans_at_once_but_decode_one_at_a_time(make_assistant):
    """The UI lets several sessions in flight on the local model; the pipeline itself must serialise decoding."""
    import threading

    active, peak, lock = [0], [0], threading.Lock()

    class Counting(ScriptedChatModel):
        def _stream(self, messages, stop=None, run_manager=None, **kw):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                yield from super()._stream(messages, stop, run_manager, **kw)
            finally:
                with lock:
                    active[0] -= 1

    a = make_assistant(Counting(responses=[SUMMARY], delay_s=0.005))
    plans: list[bool] = []

    def one() -> None:
        events = a.ask_stream(Q)
        plans.append(next(events).kind == "plan")
        for _ in events:
            pass

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert plans == [True, True, True]
    assert peak[0] == 1, f"{peak[0]} answers decoded at once on one model"
