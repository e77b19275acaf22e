"""Start the GuideRail chat app: `python ui.py` (same as `guiderail serve`). All logic lives in assistant.web."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if __name__ == "__main__":
    from assistant.settings import load_settings
    from assistant.web import launch

    launch(load_settings())
