"""The crash-safe record of every paid answer: one append-only JSONL file per run.

Each answer is appended and fsynced the moment it arrives, so Ctrl-C, a crash or a full disk loses at most the
answers still in flight. Every answer carries its :func:`request_key`, a hash of exactly what was asked (the model
and the rendered messages: chunk text, title, prompt, number of questions, few-shot examples). A re-run looks the
keys up in *every* journal of the workspace (:class:`AnswerIndex`), so an answer is never paid for twice whatever
else changed: the endpoint's spelling, concurrency, limits, temperature or the run name. A line cut short by a crash
is dropped when the journal is opened (it is the only line that can be incomplete, because every earlier write was
complete and synced).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qadapter.errors import ArtifactError, QadapterError

logger = logging.getLogger(__name__)

FORMAT = "qadapter-generate-journal"
FORMAT_VERSION = 1


def request_key(model: str, messages: Sequence[dict[str, str]]) -> str:
    """What identifies a paid answer: the model and the exact messages sent (which hold the chunk and the prompt).

    The endpoint URL, the API key, throughput settings and sampling settings are left out on purpose: they do not
    change what was asked, and changing them must not make anyone pay again.
    """
    asked = {"model": model, "messages": [[m["role"], m["content"]] for m in messages]}
    return hashlib.sha256(json.dumps(asked, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )

    def cost(self, price_input: float | None, price_output: float | None) -> float | None:
        """Estimated cost in USD from prices per million tokens; None when no price is given."""
        if price_input is None and price_output is None:
            return None
        return (
            self.prompt_tokens * (price_input or 0.0) + self.completion_tokens * (price_output or 0.0)
        ) / 1e6


class Journal:
    """Append-only answers of one run: ``WS/.qadapter/generate/<run>.jsonl``.

    Record fields: ``key`` (:func:`request_key`), ``doc_id``, ``status`` (``ok`` or ``malformed``), ``questions``, ``text`` (the raw answer),
    ``usage``, ``finish_reason``, ``model``, ``prompt``, ``prompt_version``, ``time``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self._handle: Any = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            logger.warning(
                "%s: dropping an incomplete last line (the previous run stopped mid-write)", self.path
            )
            with self.path.open("r+b") as handle:
                handle.truncate(complete)
                handle.flush()
                os.fsync(handle.fileno())
        for lineno, line in enumerate(data[:complete].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ArtifactError(
                    f"{self.path}:{lineno}: corrupt journal line; delete the line (or the file, which loses its answers)"
                ) from None
            if isinstance(record, dict) and "doc_id" in record:
                self.records.append(record)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()  # an error is on its way out: closing must not replace its message

    def close(self) -> None:
        """Flush and close; a failure here (a full disk) is one clear error, like a failed append."""
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:
                raise self._write_error(exc) from exc

    def _discard(self) -> None:
        """Close after a failed write: the records that count are already durable, so a second error is noise."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()

    def _write_error(self, exc: OSError) -> QadapterError:
        return QadapterError(
            f"cannot write to {self.path} ({exc.strerror or exc}); answers so far are saved, "
            "free some disk space and re-run the same command to continue"
        )

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and make it durable before returning."""
        self.append_many([record])

    def append_many(self, records: list[dict[str, Any]]) -> None:
        """Write records with one fsync for all of them (group commit); durable when this returns."""
        data = b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in records)
        try:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("ab")
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            self._discard()
            raise self._write_error(exc) from exc
        self.records.extend(records)

    def done(self) -> set[str]:
        """Documents that already have a usable answer."""
        return {r["doc_id"] for r in self.records if r.get("status") == "ok"}

    def answers(self) -> Iterator[dict[str, Any]]:
        """The first usable answer of each document, in the order they arrived."""
        seen: set[str] = set()
        for record in self.records:
            if record.get("status") == "ok" and record["doc_id"] not in seen:
                seen.add(record["doc_id"])
                yield record

    def usage(self) -> Usage:
        """Tokens paid for by every call in this journal, usable answers or not."""
        total = Usage()
        for record in self.records:
            u = record.get("usage") or {}
            total += Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)), 1)
        return total


class AnswerIndex:
    """The usable answers of every journal in a folder, by :func:`request_key`: what a run need not ask again.

    Answers journaled before records carried a key (``legacy``) are matched by :meth:`adopt_legacy`.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._by_key: dict[str, dict[str, Any]] = {}
        self.legacy: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (run settings, record) without a key
        for path in sorted(journal.path.parent.glob("*.jsonl")):
            if path.resolve() != journal.path.resolve():
                self._take(Journal(path))
        self._take(journal)

    def _take(self, journal: Journal) -> None:
        self.add(journal.records)
        old = [r for r in journal.records if r.get("status") == "ok" and "key" not in r]
        if old:
            meta = read_run_meta(journal.path.with_suffix(".json"))
            self.legacy += [(meta, r) for r in old]

    def adopt_legacy(self, keys: dict[str, str], asked: dict[str, Any]) -> int:
        """Reuse answers journaled before answers carried a key, for ``keys`` (``{doc_id: request_key}``).

        Such an answer counts when its run asked the same thing as now: ``asked`` (model, per_chunk, examples,
        num_examples, seed, and the prompt's name, version, system and user text) equals what the run's saved
        settings say. Returns how many chunks it answered.
        """
        adopted = 0
        for meta, record in self.legacy:
            key = keys.get(record["doc_id"])
            if key is not None and key not in self._by_key and _asked_in(meta) == asked:
                self._by_key[key] = record
                adopted += 1
        return adopted

    def add(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            key = record.get("key")
            if record.get("status") == "ok" and isinstance(key, str):
                self._by_key.setdefault(key, record)

    def refresh(self) -> None:
        """Take in what the run's own journal received since."""
        self.add(self.journal.records)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> dict[str, Any] | None:
        return self._by_key.get(key)


class GroupCommitWriter:
    """Appends from many async workers, fsynced in a helper thread, batched while the previous fsync runs.

    An fsync takes milliseconds; doing one per answer on the event loop would cap throughput at a few hundred
    answers a second and stall every request in flight. Here a worker's ``append`` returns only once its record
    is durable, exactly as with :meth:`Journal.append`, but concurrent answers share one fsync.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def append(self, record: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.journal.append_many, [record for record, _ in batch])
            except BaseException as exc:
                for _, future in batch + self._pending:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                self._pending = []
                if not isinstance(exc, Exception):
                    raise
                return
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


def asked(config: dict[str, Any], prompt: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run that decide what it asks (for matching answers saved without a key)."""
    fields = ("model", "per_chunk", "examples", "num_examples", "seed")
    return {
        **{f: config.get(f) for f in fields},
        **{f"prompt_{k}": prompt.get(k) for k in ("name", "version", "system", "user")},
    }


def _asked_in(meta: dict[str, Any]) -> dict[str, Any] | None:
    config, prompt = meta.get("config"), meta.get("prompt")
    return asked(config, prompt) if isinstance(config, dict) and isinstance(prompt, dict) else None


def read_run_meta(path: Path) -> dict[str, Any]:
    """The settings saved next to a journal, or ``{}`` when there are none or they cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_run_meta(path: Path, meta: dict[str, Any]) -> None:
    """Save the settings of a run next to its journal (``<run>.json``), for provenance."""
    from qadapter.data.atomic import atomic_open
    from qadapter.version import __version__

    with atomic_open(path) as handle:
        json.dump(
            {"format": FORMAT, "format_version": FORMAT_VERSION, "qadapter_version": __version__, **meta},
            handle,
            indent=2,
        )
