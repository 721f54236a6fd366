"""Prompts that ask a chat model for questions about one chunk.

Two presets ship with qadapter, and a user can bring their own file:

- ``seed``: the prompt of the notebook qadapter grew from (questions a user would ask, no company names, some
  with typos, returned as ``{"question_1": ..., "question_N": ...}``), so results can be compared with it.
- ``default``: diverse, realistic questions of different kinds (factual, how-to, vague, keyword-style) that do not
  copy the chunk's wording, because an adapter trained on paraphrases of the chunk learns little about real users.

A prompt file is plain text (the user message) or TOML with ``user`` and optional ``system``, ``name`` and
``version`` keys. Templates use ``string.Template`` placeholders, so JSON braces need no escaping:

- ``$chunk``: the chunk text; ``$title``: its title (may be empty); ``$n``: how many questions to ask for;
- ``$examples``: a block of real user queries (empty when there are none), for few-shot style.

Write ``$$`` for a literal dollar sign.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qadapter.errors import QadapterError

PLACEHOLDERS = ("chunk", "title", "n", "examples")


@dataclass(frozen=True)
class PromptTemplate:
    """A named, versioned prompt. The version is stamped on every query it produced."""

    name: str
    version: str
    user: str
    system: str = ""

    def __post_init__(self) -> None:
        for label, text in (("user", self.user), ("system", self.system)):
            try:
                names = {
                    m.group("named") or m.group("braced")
                    for m in string.Template.pattern.finditer(text)
                    if m.group("named") or m.group("braced")
                }
            except ValueError as exc:  # pragma: no cover - finditer does not raise, kept for clarity
                raise QadapterError(f"prompt {self.name!r}: bad placeholder ({exc})") from exc
            unknown = sorted(names - set(PLACEHOLDERS))
            if unknown:
                raise QadapterError(
                    f"prompt {self.name!r}: unknown placeholder(s) {['$' + u for u in unknown]} in the {label} "
                    f"message; valid placeholders: {['$' + p for p in PLACEHOLDERS]} (write $$ for a dollar sign)"
                )
        if "$chunk" not in self.user and "${chunk}" not in self.user:
            raise QadapterError(
                f"prompt {self.name!r}: the user message must contain $chunk (where the text goes)"
            )

    def messages(
        self, *, chunk: str, title: str = "", n: int, examples: Sequence[str] = ()
    ) -> list[dict[str, str]]:
        """The chat messages for one chunk."""
        values = {"chunk": chunk, "title": title, "n": str(n), "examples": format_examples(examples)}
        out = []
        if self.system:
            out.append({"role": "system", "content": string.Template(self.system).safe_substitute(values)})
        out.append({"role": "user", "content": string.Template(self.user).safe_substitute(values)})
        return out


def format_examples(examples: Sequence[str]) -> str:
    if not examples:
        return ""
    lines = "\n".join(f"- {e}" for e in examples)
    return f"Here are real questions users have asked; match their style, length and tone:\n{lines}\n"


SEED = PromptTemplate(
    name="seed",
    version="1",
    system="You write questions that users of a search system would ask.",
    user=(
        "Generate $n questions that are similar to what a user would ask about the text chunk below. "
        "Do not mention the company name in the questions. Some of the questions should contain typos, "
        "as real users make them.\n"
        "${examples}"
        'Return only a JSON object that maps "question_1", "question_2", ... "question_$n" to the questions.\n\n'
        "Text chunk:\n$chunk"
    ),
)

DEFAULT = PromptTemplate(
    name="default",
    version="1",
    system=(
        "You imitate the people who search a knowledge base. You write the questions they would type, "
        "not summaries of the text."
    ),
    user=(
        "Below is a passage from a knowledge base. Write $n different search queries that a real user could type "
        "and that this passage answers.\n"
        "- Mix the kinds: factual questions, how-to or why questions, vague or underspecified questions, and short "
        "keyword-style queries without a question mark.\n"
        "- Use the words a user would use, not the passage's wording: do not copy phrases or sentences from it.\n"
        "- Each query must make sense on its own, without seeing the passage; do not write 'this passage' or "
        "'the text'.\n"
        "- Vary the length, from two words to one long sentence.\n"
        "${examples}"
        'Return only a JSON object: {"questions": ["...", "..."]} with exactly $n strings.\n\n'
        "Title: $title\nPassage:\n$chunk"
    ),
)

PRESETS: dict[str, PromptTemplate] = {"default": DEFAULT, "seed": SEED}


def load_prompt(spec: str) -> PromptTemplate:
    """A preset name (``default``, ``seed``) or a path to a ``.txt``/``.md`` or ``.toml`` prompt file."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise QadapterError(
            f"prompt {spec!r} is neither a preset nor a file; presets: {sorted(PRESETS)}, "
            "or pass the path of a prompt file (see 'qadapter generate --help')"
        )
    raw = path.read_text(encoding="utf-8")
    version = hashlib.sha256(raw.encode()).hexdigest()[:12]
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise QadapterError(f"{path}: not valid TOML ({exc})") from None
        allowed = {"name", "version", "user", "system"}
        unknown = sorted(set(data) - allowed)
        if unknown or not isinstance(data.get("user"), str):
            raise QadapterError(
                f"{path}: a TOML prompt needs a 'user' string and may have {sorted(allowed - {'user'})}"
            )
        return PromptTemplate(
            name=str(data.get("name", path.stem)),
            version=str(data.get("version", version)),
            user=data["user"],
            system=str(data.get("system", "")),
        )
    return PromptTemplate(name=path.stem, version=version, user=raw)


def load_examples(spec: str | None, workspace_queries: Sequence[str] = ()) -> list[str]:
    """Real user queries for few-shot prompts: ``"workspace"`` (the workspace's non-generated queries), a text
    file with one query per line, or a JSONL file with a ``text`` field per line."""
    if spec is None:
        return []
    if spec == "workspace":
        if not workspace_queries:
            raise QadapterError("--examples workspace: the workspace has no queries that were not generated")
        return list(workspace_queries)
    path = Path(spec)
    if not path.is_file():
        raise QadapterError(
            f"examples file {spec!r} not found; pass a text file (one query a line), JSONL or 'workspace'"
        )
    out: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = _example_text(path, lineno, line) if line.strip() else ""
        if text:
            out.append(text)
    if not out:
        raise QadapterError(f"examples file {path} has no queries")
    return out


def _example_text(path: Path, lineno: int, line: str) -> str:
    """One example query from a line of a text file, or from the ``text`` of a JSONL record."""
    if path.suffix != ".jsonl":
        return line.strip()
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise QadapterError(f"{path}:{lineno}: not valid JSON") from None
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise QadapterError(f"{path}:{lineno}: expected an object with a 'text' string")
    return text.strip()


def pick_examples(examples: Sequence[str], k: int, *, key: str, seed: int = 0) -> list[str]:
    """A deterministic sample of ``k`` examples per chunk, so prompts vary across chunks but a re-run is identical."""
    if not examples or k <= 0:
        return []
    rng = random.Random(f"{seed}:{key}")
    return rng.sample(list(examples), min(k, len(examples)))
