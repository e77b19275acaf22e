"""GuideRail assistant: patient context, retrieval, rule checks, generation, verification."""

__version__ = "0.1.0"
