"""The Gradio chat app: ``app`` (layout and wiring), ``session`` (per-session state and event handlers,
no Gradio) and ``render`` (pure renderers, no Gradio, no I/O). ``ui.py`` and ``guiderail serve`` call
``launch``; tests build the app with ``build_app``."""

from assistant.web.app import build_app, launch

__all__ = ["build_app", "launch"]
