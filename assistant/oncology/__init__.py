"""Oncology: tumour vocabulary, FDA biomarker-directed approval records, the tumour-context extractor and the
approval matcher. Data flow: corpus/lexicon/oncology.yaml → `OncologyVocab`; corpus/oncology/*.yaml →
`Approval` records (validated by the knowledge loader); question text → `TumourContext` (extract); context +
records → findings (match), which then go through the same safety pass as every other offer.
"""

from assistant.oncology.vocab import OncologyVocab, load_vocab

__all__ = ["OncologyVocab", "load_vocab"]
