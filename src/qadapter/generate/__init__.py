"""Synthetic training queries: ask any OpenAI-compatible chat model for questions about each chunk.

One entry point, :func:`generate` (in :mod:`qadapter.generate.stage`). It never pays twice for the same chunk: every
answer is journaled to ``WS/.qadapter/generate/<run>.jsonl`` as it arrives, keyed by what was asked (model, chunk,
prompt), and a re-run (after Ctrl-C, a crash, a full disk, another endpoint spelling) asks only for the chunks
without an answer. Queries land in ``WS/queries.jsonl`` as ``gen-<doc_id>-<n>`` with provenance metadata, and their
qrels in ``WS/qrels/<split>.tsv``. ``offline=True`` needs no model server at all (weaker pseudo-queries cut from
the chunks), so the whole pipeline runs anywhere.
"""

from qadapter.generate.config import DEFAULT_PER_CHUNK, GenerateConfig
from qadapter.generate.stage import generate
from qadapter.generate.summary import GenerateSummary

__all__ = ["DEFAULT_PER_CHUNK", "GenerateConfig", "GenerateSummary", "generate"]
