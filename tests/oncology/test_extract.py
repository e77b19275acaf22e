"""How oncologists write tumour facts, and what the extractor must read from them (tumour, setting, line,
biomarkers with exact variants, IHC categories and scores). Each case is a phrasing pattern, not a patient."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.models import TherapyExposure
from assistant.oncology.extract import extract_markers, extract_tumour
from assistant.oncology.vocab import load_vocab

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


@pytest.fixture(scope="module")
def vocab():
    v = load_vocab(CORPUS)
    assert v is not None
    return v


def _markers(text, vocab):
    found, _ = extract_markers(text, vocab)
    return {m.marker: m for m in found}


@pytest.mark.parametrize(
    ("text", "marker", "alteration", "status"),
    [
        ("EGFR exon 19 deletion", "EGFR", "exon19_del", "positive"),
        ("EGFR exon 19-deleted adenocarcinoma", "EGFR", "exon19_del", "positive"),
        ("EGFR L858R", "EGFR", "L858R", "positive"),
        ("EGFR exon 20 insertion (A767_V769dup)", "EGFR", "exon20_ins", "positive"),
        ("KRAS G12C-mutant", "KRAS", "G12C", "positive"),
        ("BRAF V600E mutated", "BRAF", "V600E", "positive"),
        ("KIF5B-RET fusion", "RET", "fusion", "positive"),
        ("EML4-ALK rearranged", "ALK", "fusion", "positive"),
        ("MET exon 14 skipping", "MET", "exon14_skipping", "positive"),
        ("FLT3-ITD", "FLT3", "ITD", "positive"),
        ("FGFR2 fusion-negative", "FGFR2", "", "negative"),
        ("ESR1 not mutated", "ESR1", "", "negative"),
        ("IDH1 wild-type", "IDH1", "", "negative"),
    ],
)
def test_variant_and_result(text, marker, alteration, status, vocab):
    m = _markers(text, vocab)[marker]
    assert (m.alteration, m.status) == (alteration, status)


def test_a_list_shares_a_negative_result_across_variants(vocab):
    ms = _markers("Broad NGS negative for EGFR, ALK, ROS1, BRAF, KRAS G12C, MET, RET, HER2, NTRK.", vocab)
    assert {k for k, m in ms.items() if m.status == "negative"} >= {"EGFR", "ALK", "ROS1", "KRAS", "MET", "RET", "NTRK"}
    assert all(m.status == "negative" for m in ms.values())


def test_the_next_gene_ends_a_result(vocab):
    ms = _markers("metastatic lung adenocarcinoma, KRAS G12C, STK11 wild-type.", vocab)
    assert (ms["KRAS"].alteration, ms["KRAS"].status) == ("G12C", "positive")


def test_negated_variants_are_not_read_as_present(vocab):
    ms = _markers("uncommon EGFR mutation, G719A plus S768I (no exon 19 del, no L858R, no exon 20 insertion)", vocab)
    assert ms["EGFR"].alteration == "G719A"


@pytest.mark.parametrize(
    ("text", "level", "status"),
    [
        ("HER2 IHC 3+", "positive", "positive"),
        ("HER2 IHC 2+, FISH amplified", "positive", "positive"),
        ("HER2 IHC 2+ and ISH-negative", "low", "positive"),
        ("HER2 IHC 1+", "low", "positive"),
        ("HER2-low", "low", "positive"),
        ("HER2-ultralow", "ultralow", "positive"),
        ("ER+/HER2- MBC after letrozole + abemaciclib", "", "negative"),
        ("HER2 not amplified", "", "negative"),
    ],
)
def test_her2_categories(text, level, status, vocab):
    m = _markers(text, vocab)["HER2"]
    assert (m.level, m.status) == (level, status)


def test_scores_and_statuses(vocab):
    ms = _markers("PD-L1 TPS 80%. Tumour CPS 12. TMB 15 mut/Mb. MSI-high. pMMR.", vocab)
    assert ms["PDL1"].score.get("tps") == 80.0
    assert ms["TMB"].score.get("tmb") == 15.0
    assert ms["MSI"].level == "high"
    assert ms["MMR"].status == "negative"
    assert _markers("claudin 18.2 positive (85% of cells)", vocab)["CLDN18"].score.get("ps") == 85.0


def test_germline_origin(vocab):
    assert _markers("germline BRCA2 mutation", vocab)["BRCA"].origin == "germline"
    assert _markers("gBRCA1-mutated", vocab)["BRCA"].origin == "germline"


def test_a_bare_variant_joins_its_gene(vocab):
    t = extract_tumour("EGFR exon 19-deleted NSCLC on erlotinib; plasma ctDNA shows T790M.", vocab)
    assert t is not None
    egfr = next(m for m in t.markers if m.marker == "EGFR")
    assert "T790M" in [egfr.alteration, *egfr.also]


def test_unknown_genes_are_kept_as_unapproved_candidates(vocab):
    ms = _markers("NSCLC with STK11 and KEAP1 mutations", vocab)
    assert {"STK11", "KEAP1"} <= set(ms)


@pytest.mark.parametrize(
    ("text", "tumour", "settings", "line"),
    [
        ("Newly diagnosed stage IVA nonsquamous NSCLC, no prior therapy.", "nsclc", ["metastatic"], "first"),
        ("Unresectable stage IIIB lung adenocarcinoma after concurrent carboplatin-paclitaxel with 60 Gy.", "nsclc",
         ["stage3_unresectable_post_crt"], None),
        ("Metastatic cervical squamous carcinoma, not previously treated with systemic therapy.", "cervical",
         ["metastatic"], "first"),
        ("Relapsed AML with FLT3-ITD", "aml", ["relapsed_refractory"], "later"),
        ("Metastatic secretory carcinoma of the parotid gland with an ETV6-NTRK3 fusion", "other_solid",
         ["metastatic"], None),
        ("Relapsed acute leukemia with KMT2A rearrangement", "acute_leukemia", ["relapsed_refractory"], "later"),
    ],
)
def test_tumour_setting_and_line(text, tumour, settings, line, vocab):
    t = extract_tumour(text, vocab)
    assert t is not None and t.tumour == tumour
    assert set(settings) <= set(t.settings)
    if line is not None:
        assert t.line == line


def test_adjuvant_treatment_is_not_a_line_for_metastatic_disease(vocab):
    text = (
        "ER+/HER2- breast cancer, relapsed with lung metastases 8 months into adjuvant letrozole (after surgery "
        "and chemotherapy). PIK3CA E545K."
    )
    letrozole = TherapyExposure(therapy="letrozole", classes=["aromatase_inhibitor", "antineoplastic"], mention="letrozole")
    t = extract_tumour(text, vocab, [letrozole], {"letrozole"})
    assert t is not None and t.line != "later"  # first line for metastatic disease (or unstated), never later
    assert "relapsed_refractory" not in t.settings


def test_a_drug_only_considered_is_not_a_prior_line(vocab):
    bev = TherapyExposure(therapy="bevacizumab", classes=["antineoplastic"], mention="bevacizumab")
    t = extract_tumour("Metastatic cervical cancer, PD-L1 CPS 12, untreated; fit for bevacizumab.", vocab, [bev], {"bevacizumab"})
    assert t is not None and t.line == "first"


# ------------------------------------------------------------------ breast receptor status, every way it is written
# Hormone-receptor status is positive when ER or PR is positive (ASCO/CAP: >= 1 % stained nuclei); HER2 follows the
# ASCO/CAP IHC/ISH categories. Each receptor is written in one of several forms and every combination is generated,
# so a form that only fails next to another one (the hyphen of "ER-positive" read as a minus sign) cannot hide.
_RECEPTOR_FORMS = {
    True: ["{r}-positive", "{r}+", "{r} positive", "{r}: positive", "{r} 90%", "{r} pos"],
    False: ["{r}-negative", "{r}-", "{r} negative", "{r}: negative", "{r} 0%", "{r} neg"],
}
_HER2_FORMS = {
    ("", "negative"): ["HER2-negative", "HER2-", "HER2 negative", "HER2 not amplified"],
    ("zero", "negative"): ["HER2 0", "HER2 IHC 0", "HER2: IHC 0"],
    ("low", "positive"): ["HER2-low", "HER2 IHC 1+", "HER2 2+, FISH not amplified", "HER2 IHC 2+ and ISH-negative"],
    ("positive", "positive"): ["HER2-positive", "HER2 3+", "HER2 IHC 3+", "HER2 2+, FISH amplified", "HER2 amplified"],
}


def _receptor_cases():
    cases = []
    i = 0
    for er in (True, False):
        for pr in (True, False):
            for (level, status), her2_forms in _HER2_FORMS.items():
                for her2 in her2_forms:
                    # rotate the receptor forms so every form meets every other over the run
                    er_txt = _RECEPTOR_FORMS[er][i % 6].format(r="ER")
                    pr_txt = _RECEPTOR_FORMS[pr][(i // 6 + i) % 6].format(r="PR")
                    i += 1
                    for sep in (", ", " "):
                        cases.append((f"Metastatic breast cancer, {er_txt}{sep}{pr_txt}{sep}{her2}.", er or pr, level, status))
    return cases


@pytest.mark.parametrize(("text", "hr_positive", "her2_level", "her2_status"), _receptor_cases())
def test_breast_receptor_status_in_every_form(text, hr_positive, her2_level, her2_status, vocab):
    ctx = extract_tumour(text, vocab)
    assert ctx is not None and ctx.tumour == "breast"
    ms = {m.marker: m for m in ctx.markers}
    assert "HR" in ms, text
    assert ms["HR"].status == ("positive" if hr_positive else "negative"), text
    assert (ms["HER2"].level, ms["HER2"].status) == (her2_level, her2_status), text
    assert ms["HER2"].alteration in ("", "amplification"), text


@pytest.mark.parametrize(
    ("text", "hr"),
    [
        ("hormone receptor-positive, HER2-negative breast cancer", "positive"),
        ("HR+/HER2- metastatic breast cancer", "positive"),
        ("estrogen receptor-negative, progesterone receptor-positive breast cancer", "positive"),
        ("oestrogen receptor positive breast cancer", "positive"),
        ("ER-negative/PR-negative breast cancer", "negative"),
        ("triple-negative breast cancer", "negative"),
    ],
)
def test_hormone_receptor_written_out(text, hr, vocab):
    ms = {m.marker: m for m in extract_tumour(text, vocab).markers}
    assert ms["HR"].status == hr


def test_a_bare_er_is_not_a_receptor(vocab):
    ctx = extract_tumour("Seen in the ER yesterday with metastatic breast cancer.", vocab)
    assert ctx is not None and all(m.marker != "HR" for m in ctx.markers)


_DRIVER_FORMS = {
    "positive": ["{g}-positive", "{g} positive", "{g}+", "{g}-mutant", "{g} mutation detected"],
    "negative": ["{g}-negative", "{g} negative", "{g} wild-type", "{g}-", "no {g} mutation", "{g} not detected",
                 "negative for {g}"],
}


@pytest.mark.parametrize("gene", ["EGFR", "ALK", "ROS1", "RET", "KRAS", "BRAF", "NTRK", "FGFR2", "IDH1", "FLT3",
                                  "PIK3CA", "ESR1", "BRCA", "NRG1", "MET", "KIT"])
def test_driver_results_in_every_form(gene, vocab):
    for status, forms in _DRIVER_FORMS.items():
        for form in forms:
            text = f"Metastatic cancer, {form.format(g=gene)}, ECOG 1."
            got = _markers(text, vocab).get(gene)
            assert got is not None and got.status == status, text


@pytest.mark.parametrize(
    ("text", "status"),
    [("PD-L1-negative", "negative"), ("PD-L1 TPS 0%", "negative"), ("PD-L1 TPS <1%", "negative"),
     ("PD-L1 CPS 0", "negative"), ("PD-L1 TPS 1%", "positive"), ("PD-L1 TPS 60%", "positive"),
     ("PD-L1-positive", "positive"), ("PD-L1 CPS 10", "positive")],
)
def test_pdl1_below_one_percent_is_negative(text, status, vocab):
    assert _markers(f"Metastatic NSCLC, {text}.", vocab)["PDL1"].status == status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a list member with its own variant keeps it; the shared result is for the others
        ("Tissue NGS: PIK3CA H1047R, AKT1 and PTEN wild type.", {"PIK3CA": "positive", "AKT1": "negative", "PTEN": "negative"}),
        ("MSS, BRAF V600E, KRAS and NRAS wild type.", {"BRAF": "positive", "KRAS": "negative", "NRAS": "negative"}),
        ("PIK3CA, AKT1 and PTEN are unaltered.", {"PIK3CA": "negative", "AKT1": "negative", "PTEN": "negative"}),
        # a negative result for another alteration of the same gene does not undo the positive one
        ("The relapse marrow shows FLT3-TKD D835Y, FLT3-ITD negative.", {"FLT3": "positive"}),
    ],
)
def test_list_members_and_same_gene_results(text, expected, vocab):
    got = _markers(text, vocab)
    assert {k: got[k].status for k in expected} == expected, {k: (v.status, v.alteration) for k, v in got.items()}


@pytest.mark.parametrize("text", ["An RNA fusion panel finds ETV6::NTRK3.", "NGS shows CD74-ROS1.", "EML4::ALK detected."])
def test_a_partner_gene_written_before_the_marker_is_a_fusion(text, vocab):
    (m,) = [m for m in _markers(text, vocab).values() if m.marker in ("NTRK", "ROS1", "ALK")]
    assert m.status == "positive" and m.alteration == "fusion"


def test_recurrence_after_adjuvant_therapy_and_an_organ_operation(vocab):
    ctx = extract_tumour("ER-positive, HER2 IHC 0 breast cancer recurred in bone six years after adjuvant anastrozole. "
                         "ESR1 Y537S.", vocab)
    assert ctx is not None and "recurrent" in ctx.settings
    lung = extract_tumour("Five weeks after a right lower lobectomy. Pathology: adenocarcinoma, stage IIIA; EML4-ALK "
                          "rearrangement.", vocab)
    assert lung is not None and lung.tumour == "nsclc"


def test_an_unknown_gene_in_a_list_shares_the_negative_result(vocab):
    got = _markers("NGS: IDH2 R140Q; IDH1 and SF3B1 wild type.", vocab)
    assert got["IDH2"].status == "positive" and got["IDH1"].status == "negative"
    kept = _markers("KRAS G12C, STK11 wild-type", vocab)
    assert kept["KRAS"].status == "positive" and kept["KRAS"].alteration == "G12C"
