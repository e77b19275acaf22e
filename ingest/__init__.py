"""GuideRail ingestion: load guideline files, split into sections and chunks, embed into Chroma + BM25."""
