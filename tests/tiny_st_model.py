"""Tiny random-weight Sentence Transformers models built in-process (a few hundred KB, no download)."""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "how",
    "what",
    "why",
    "do",
    "does",
    "river",
    "city",
    "solar",
    "water",
    "energy",
    "panel",
    "cost",
    "price",
]


def build_tiny_model(
    path: Path, seed: int, hidden: int = 16, *, tokenizer_dir: Path | None = None, normalize: bool = False
) -> Path:
    """A BERT of 1 layer and ``hidden`` dimensions with mean pooling, saved as a Sentence Transformers folder.

    Its vocabulary is :data:`WORDS`, or the tokenizer saved in ``tokenizer_dir`` (e.g. the bundled MiniLM's, for a
    model that reads any English text); ``normalize`` adds a unit-length module as the last step."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models  # type: ignore[no-redef]
    from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        vocab = path.parent / f".vocab-{seed}.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128 if tokenizer_dir is not None else 64,
    )
    raw = path.parent / f".raw-{seed}"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=None if tokenizer_dir is not None else 32)
    dim = (
        transformer.get_embedding_dimension()
        if hasattr(transformer, "get_embedding_dimension")
        else transformer.get_word_embedding_dimension()
    )
    pooling = models.Pooling(dim, pooling_mode="mean")
    modules = [transformer, pooling, *([models.Normalize()] if normalize else [])]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path
