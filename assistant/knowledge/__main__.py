"""`python -m assistant.knowledge [CORPUS_DIR]` validates the corpus; `... review [--out FILE]` writes the
clinician review sheet (see `assistant.knowledge.main`)."""

import sys

from assistant.knowledge import main

sys.exit(main())
