"""The `guiderail` command: thin argument handling around one pipeline call per subcommand.

No clinical logic lives here. Errors from the GuideRail hierarchy become one clear line on stderr
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from assistant.errors import GuideRailError, StoreError
from assistant.logging_setup import configure_logging, install_redaction, register_patient_text
from assistant.settings import Settings, load_settings

log = logging.getLogger("guiderail")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        type=Path,
        help="index folder (default: $GUIDERAIL_STORE_DIR or .data/index); with --chroma-url it holds only the "
        "local manifest and BM25 sidecar of the remote collection (under remote/<hash>/)",
    )
    p.add_argument(
        "--chroma-url", help="Chroma server URL, e.g. http://127.0.0.1:8000 (vectors live there instead of in --store)"
    )
    p.add_argument(
        "--embedder",
        choices=["minilm", "hash"],
        default=None,
        help="embedding model (default: $GUIDERAIL_EMBEDDER or minilm); hash is a test/dev option: instant, no "
        "model files, poor retrieval",
    )


def _llm_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", choices=["local", "openai", "none"], help="answer backend (default: $GUIDERAIL_LLM or local)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guiderail", description="Guideline-grounded clinical assistant.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index guideline files (no PATH: the shipped corpus + open-medicine pack)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    p.add_argument("--pack", default=None, help="source-pack name recorded on user documents (default: user)")
    p.add_argument("--no-progress", action="store_true")
    _store_args(p)

    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--patient", help="extra patient details")
    p.add_argument("--audience", choices=["clinician", "patient"], default=None)
    p.add_argument("--json", action="store_true", help="print the full answer record as JSON")
    _llm_arg(p)
    _store_args(p)

    p = sub.add_parser("eval", help="score the system on a Q&A JSONL file")
    p.add_argument("qa", type=Path, metavar="QA.jsonl")
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--limit", type=int)
    p.add_argument("--judge", action="store_true", help="grade with an OpenAI-compatible judge model")
    p.add_argument("--compare", help="comma-separated configurations, e.g. none,local,naive-local")
    p.add_argument("--no-resume", action="store_true", help="start over instead of continuing a crashed run")
    _llm_arg(p)
    _store_args(p)

    p = sub.add_parser("serve", help="start the chat app (same as python ui.py)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    _llm_arg(p)
    _store_args(p)

    p = sub.add_parser("bench", help="measure speed and memory; writes JSON + Markdown")
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    p.add_argument("--nci", type=Path, default=None, help="folder of NCI pages for the scale benchmark")
    p.add_argument("--only", help="comma-separated sections to run (ingest,retrieval,answer,rules)")
    p.add_argument("--questions", type=int, default=None, help="number of dev-set questions for answer latency")
    _llm_arg(p)
    _store_args(p)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(
        store_dir=getattr(args, "store", None),
        chroma_url=getattr(args, "chroma_url", None),
        embedder=getattr(args, "embedder", None),
        llm=getattr(args, "llm", None),
        audience=getattr(args, "audience", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import ingest_command

    report = ingest_command(settings, list(args.paths), progress=not args.no_progress, pack=args.pack)
    # Each problem is named exactly once, here (the pipeline logs them at debug level only).
    for path, reason in report.warnings:
        print(f"warning: {path}: {reason}", file=sys.stderr)
    for path, reason in report.errors:
        print(f"error: {path}: {reason}", file=sys.stderr)
    print(report.summary())
    return EXIT_ERROR if report.errors and report.documents == 0 else EXIT_OK


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.pipeline import build_assistant, clean_question
    from ingest.store import local_index_problem

    register_patient_text(args.question, args.patient)
    # Cheap checks before any model loads (~16 s): a bad question or a missing/unready index fails at once,
    # and a mistyped --store is never created as an empty folder.
    clean_question(args.question, settings.max_question_chars)
    problem = local_index_problem(settings)
    if problem:
        raise StoreError(problem)
    assistant = build_assistant(settings)
    answer = assistant.ask(args.question, patient=args.patient, audience=settings.audience)
    if args.json:
        print(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        if answer.banner:
            print(f"[{answer.banner}]\n")
        print(answer.answer_markdown)
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.evaluation import run_eval

    compare = [c.strip() for c in args.compare.split(",")] if args.compare else None
    metrics = run_eval(
        settings, args.qa, args.out, limit=args.limit, judge=args.judge, compare=compare, resume=not args.no_resume
    )
    print(json.dumps(metrics.get("summary", metrics), indent=2, default=str))
    print(f"report: {args.out / 'report.md'}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.web import launch

    launch(settings)
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.bench import run_bench

    only = [s.strip() for s in args.only.split(",")] if args.only else None
    result = run_bench(settings, args.out, nci_dir=args.nci, only=only, questions=args.questions)
    print(f"bench written to {args.out} ({len(result)} sections)")
    return EXIT_OK


COMMANDS = {"ingest": _cmd_ingest, "ask": _cmd_ask, "eval": _cmd_eval, "serve": _cmd_serve, "bench": _cmd_bench}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    args = build_parser().parse_args(argv)
    # Console logging with patient text redacted from every record (GUIDERAIL_LOG_PATIENT_TEXT turns it off).
    configure_logging(verbose=args.verbose)
    try:
        settings = settings_from_args(args)
        install_redaction(settings)
        return COMMANDS[args.command](args, settings)
    except GuideRailError as exc:
        print(f"guiderail {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:  # pydantic validation of settings/arguments
        print(f"guiderail {args.command}: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
