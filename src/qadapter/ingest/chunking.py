"""Split text into chunks measured by the base model's own tokenizer (or by characters).

Why the model's tokenizer: a chunk longer than the model's maximum sequence length is silently truncated when it is
embedded, so its tail can never be retrieved. Counting with the same WordPiece/BPE tokenizer the model uses makes
the default chunk size exactly "as much as the model reads". tiktoken is not used: it downloads its vocabularies at
run time and counts a different model's tokens.

The splitting itself is done by ``semantic-text-splitter`` (Rust, well kept), which prefers to cut at paragraph,
sentence and word boundaries (and, for Markdown, at headings and blocks) before falling back to characters. It is
fed bounded windows, and lines too long for it go to a one-pass chunker (:mod:`qadapter.ingest.longtext`), so
chunking time grows linearly with the input; every chunk also respects a hard cap in characters.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.errors import QadapterError
from qadapter.ingest.longtext import cap_chars, cut_at_boundary, segments, split_long

logger = logging.getLogger(__name__)

Unit = Literal["tokens", "chars"]
UNITS: tuple[str, ...] = ("tokens", "chars")

#: Chunk size in characters when ``unit="chars"`` and no size is given (the notebook used 800 with 400 overlap).
DEFAULT_CHAR_CHUNK_SIZE = 800
#: When no overlap is given it is this fraction of the chunk size: enough to keep a sentence that straddles a
#: boundary whole in one of the two chunks, small enough not to embed much text twice.
DEFAULT_OVERLAP_FRACTION = 8
#: Hard cap on a chunk's characters in token mode, per token of chunk size. English prose averages 4-5 characters
#: per token, so only runs the tokenizer counts as one token (a URL, base64, a "word" of a million letters) meet it.
MAX_CHARS_PER_TOKEN = 10
#: The splitter gets windows of at most this many chunks' worth of characters (cut at line breaks) ...
WINDOW_CHUNKS = 32
#: ... and a single line longer than this many chunks' worth goes to the one-pass chunker instead.
LONG_LINE_CHUNKS = 4


@dataclass(frozen=True)
class TokenizerInfo:
    """Where a model's tokenizer lives and how many tokens the model reads."""

    tokenizer_file: Path
    max_seq_length: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise QadapterError(f"{path}: cannot read model config ({exc})") from None
    return data if isinstance(data, dict) else {}


def _transformer_folder(model_dir: Path) -> Path:
    """The folder of a Sentence Transformers model's Transformer module (the root for most models)."""
    modules = model_dir / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            entries = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Transformer"):
                return model_dir / str(entry.get("path", ""))
    return model_dir


def resolve_tokenizer(model: str) -> TokenizerInfo:
    """Find the ``tokenizer.json`` and maximum sequence length of ``model`` without loading the model.

    ``model`` is the bundled model name, a local Sentence Transformers folder, or a ``tokenizer.json`` file.
    """
    from qadapter.encoders.sentence_transformers import bundled_model_path, is_bundled

    if model.startswith("openai:"):
        raise QadapterError(
            f"model '{model}' is a remote endpoint and has no local tokenizer to count tokens with; "
            "chunk by characters instead (--unit chars --chunk-size 800), or pass a local model folder"
        )
    if is_bundled(model):
        root = bundled_model_path()
    else:
        root = Path(model).expanduser()
        if root.is_file() and root.name.endswith(".json"):
            return TokenizerInfo(root, 512)
        if not root.is_dir():
            raise QadapterError(
                f"model '{model}' is neither the bundled model nor a local Sentence Transformers folder "
                "nor a tokenizer.json file; pass one of those, or chunk by characters with --unit chars"
            )
    folder = _transformer_folder(root)
    tokenizer_file = next(
        (p for p in (folder / "tokenizer.json", root / "tokenizer.json") if p.is_file()), None
    )
    if tokenizer_file is None:
        raise QadapterError(
            f"{root}: no tokenizer.json in this model folder (a 'fast' Hugging Face tokenizer is needed to count "
            "tokens); save the model with a fast tokenizer, or chunk by characters with --unit chars"
        )
    max_len = None
    for config_path in (folder / "sentence_bert_config.json", root / "sentence_bert_config.json"):
        if config_path.is_file():
            max_len = _read_json(config_path).get("max_seq_length")
            break
    if not isinstance(max_len, int) or max_len <= 0:
        tok_config = folder / "tokenizer_config.json"
        max_len = _read_json(tok_config).get("model_max_length") if tok_config.is_file() else None
        if not isinstance(max_len, int) or not 0 < max_len <= 1_000_000:
            max_len = 512
    return TokenizerInfo(tokenizer_file, int(max_len))


def load_tokenizer(path: Path) -> Any:
    """Load a ``tokenizers.Tokenizer`` offline, with truncation and padding off so it counts the full text."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust loader raises a bare Exception
        raise QadapterError(f"{path}: not a valid Hugging Face tokenizer file ({exc})") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Chunker:
    """Splits texts into chunks of at most ``chunk_size`` tokens (or characters) with up to ``overlap`` shared.

    ``chunk_size=None`` in token mode means "everything the model reads": its maximum sequence length minus the
    special tokens ([CLS], [SEP]) the tokenizer adds. Build one per ingest run; the splitters are reused.
    """

    def __init__(
        self,
        chunk_size: int | None = None,
        overlap: int | None = None,
        *,
        unit: Unit = "tokens",
        model: str = DEFAULT_MODEL,
    ) -> None:
        if unit not in UNITS:
            raise QadapterError(f"unknown chunking unit '{unit}'; choose one of: {', '.join(UNITS)}")
        self.unit = unit
        self.model = model
        self._tokenizer: Any = None
        self.max_seq_length: int | None = None
        if unit == "tokens":
            info = resolve_tokenizer(model)
            self._tokenizer = load_tokenizer(info.tokenizer_file)
            self.max_seq_length = info.max_seq_length
            budget = info.max_seq_length - self._tokenizer.num_special_tokens_to_add(False)
            if chunk_size is None:
                chunk_size = budget
            elif chunk_size > budget:
                logger.warning(
                    "chunk size %d tokens is more than %s reads (%d tokens plus special tokens); "
                    "the end of longer chunks is cut off when they are embedded and cannot be retrieved",
                    chunk_size,
                    model,
                    budget,
                )
        elif chunk_size is None:
            chunk_size = DEFAULT_CHAR_CHUNK_SIZE
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise QadapterError(f"chunk size must be a positive whole number of {unit}, got {chunk_size!r}")
        if overlap is None:
            overlap = chunk_size // DEFAULT_OVERLAP_FRACTION
        if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < chunk_size:
            raise QadapterError(
                f"overlap must be a whole number of {unit} from 0 to chunk size - 1 ({chunk_size - 1}), got {overlap!r}"
            )
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.max_chars = chunk_size * (MAX_CHARS_PER_TOKEN if unit == "tokens" else 1)
        self._splitters: dict[bool, Any] = {}

    def config(self) -> dict[str, Any]:
        """The settings that produced the chunks, saved next to them so a run can be repeated."""
        cfg: dict[str, Any] = {
            "unit": self.unit,
            "chunk_size": self.chunk_size,
            "overlap": self.overlap,
            "max_chars": self.max_chars,
        }
        if self.unit == "tokens":
            cfg["tokenizer_model"] = self.model
            cfg["max_seq_length"] = self.max_seq_length
        return cfg

    def _splitter(self, markdown: bool) -> Any:
        if markdown not in self._splitters:
            from semantic_text_splitter import MarkdownSplitter, TextSplitter

            cls = MarkdownSplitter if markdown else TextSplitter
            if self._tokenizer is not None:
                splitter = cls.from_huggingface_tokenizer(
                    self._tokenizer, self.chunk_size, overlap=self.overlap
                )
            else:
                splitter = cls(self.chunk_size, overlap=self.overlap)
            self._splitters[markdown] = splitter
        return self._splitters[markdown]

    def split(self, text: str, *, markdown: bool = False) -> list[tuple[int, str]]:
        """Return ``(character offset, chunk text)`` pairs in order; whitespace-only chunks are dropped.

        Every chunk has at most ``chunk_size`` tokens (or characters) and ``max_chars`` characters.
        """
        chunks: list[tuple[int, str]] = []
        window, long_line = WINDOW_CHUNKS * self.max_chars, LONG_LINE_CHUNKS * self.max_chars
        for base, piece, is_long in segments(text, window=window, long_line=long_line):
            found = self._split_long(piece) if is_long else self._splitter(markdown).chunk_indices(piece)
            for offset, chunk in found:
                if chunk.strip():
                    chunks.extend(cap_chars(base + offset, chunk, self.max_chars))
        return chunks

    def _token_starts(self, line: str) -> list[int]:
        """Where each token of ``line`` starts, tokenizing it in bounded blocks cut at whitespace."""
        starts: list[int] = []
        block = WINDOW_CHUNKS * self.max_chars
        pos = 0
        while pos < len(line):
            end = (
                len(line)
                if pos + block >= len(line)
                else cut_at_boundary(line, pos + block // 2, pos + block)
            )
            encoding = self._tokenizer.encode(line[pos:end], add_special_tokens=False)
            starts.extend(pos + start for start, _ in encoding.offsets)
            pos = end
        return starts

    def _split_long(self, line: str) -> list[tuple[int, str]]:
        starts = self._token_starts(line) if self._tokenizer is not None else None
        return split_long(
            line, chunk_size=self.chunk_size, overlap=self.overlap, max_chars=self.max_chars, starts=starts
        )

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, special tokens included (token mode only)."""
        if self._tokenizer is None:
            raise QadapterError("count_tokens needs token mode (unit='tokens')")
        return len(self._tokenizer.encode(text).ids)
