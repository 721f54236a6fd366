"""The concurrent request loop: a fixed pool of workers, each answer journaled the moment it arrives.

A pool of ``concurrency`` workers pulls chunks from one queue, so memory stays flat for any corpus size and the
number of requests in flight never exceeds the limit. A malformed answer (invalid or truncated JSON, prose, an
answer cut off by ``max_tokens``) is journaled, because it was paid for, and the chunk is asked again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qadapter.data.types import Document
from qadapter.errors import QadapterError
from qadapter.generate.client import ChatClient, RequestFailed, estimate_tokens
from qadapter.generate.config import GenerateConfig
from qadapter.generate.journal import GroupCommitWriter, Journal, Usage, request_key
from qadapter.generate.parsing import MalformedAnswer, parse_questions
from qadapter.generate.prompts import PromptTemplate, pick_examples

logger = logging.getLogger(__name__)

#: Rough answer size per question (question text plus JSON overhead), for rate limits and dry-run estimates.
TOKENS_PER_QUESTION = 30


@dataclass
class RunOutcome:
    answered: int = 0
    malformed: int = 0
    usage: Usage = field(default_factory=Usage)
    failed: dict[str, str] = field(default_factory=dict)


def build_messages(
    doc: Document, prompt: PromptTemplate, config: GenerateConfig, examples: Sequence[str]
) -> list[dict[str, str]]:
    shots = pick_examples(examples, config.num_examples, key=doc.id, seed=config.seed)
    return prompt.messages(chunk=doc.text, title=doc.title, n=config.per_chunk, examples=shots)


def estimate_request(messages: list[dict[str, str]], config: GenerateConfig) -> tuple[int, int]:
    """(prompt tokens, completion tokens) expected for one request, without a tokenizer."""
    prompt_tokens = estimate_tokens("".join(m["content"] for m in messages)) + 4 * len(messages)
    completion = config.per_chunk * TOKENS_PER_QUESTION
    if config.max_tokens is not None:
        completion = min(completion, config.max_tokens)
    return prompt_tokens, completion


@dataclass
class _Asker:
    """Asks about one chunk at a time, journaling every paid answer (malformed ones too) as it arrives."""

    client: ChatClient
    writer: GroupCommitWriter
    prompt: PromptTemplate
    config: GenerateConfig
    examples: Sequence[str]
    outcome: RunOutcome

    def record(self, doc: Document, key: str, answer: Any) -> dict[str, Any]:
        return {
            "key": key,
            "doc_id": doc.id,
            "model": self.config.model,
            "prompt": self.prompt.name,
            "prompt_version": self.prompt.version,
            "finish_reason": answer.finish_reason,
            "usage": {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "reported": answer.usage_reported,
            },
            "time": round(time.time(), 3),
            "text": answer.text,
        }

    async def ask(self, doc: Document) -> None:
        config, outcome = self.config, self.outcome
        messages = build_messages(doc, self.prompt, config, self.examples)
        key = request_key(config.model, messages)
        prompt_est, completion_est = estimate_request(messages, config)
        reason = ""
        for _ in range(config.max_parse_retries + 1):
            try:
                answer = await self.client.complete(messages, estimated_tokens=prompt_est + completion_est)
            except RequestFailed as exc:
                outcome.failed[doc.id] = str(exc)
                logger.warning("chunk %s: %s", doc.id, exc)
                return
            record = self.record(doc, key, answer)
            outcome.usage += Usage(answer.prompt_tokens, answer.completion_tokens, 1)
            try:
                if answer.finish_reason == "length":
                    raise MalformedAnswer("the answer was cut off by max_tokens")
                questions = parse_questions(answer.text)
            except MalformedAnswer as exc:
                reason = str(exc)
                outcome.malformed += 1
                await self.writer.append({**record, "status": "malformed", "error": reason})
                logger.info("chunk %s: malformed answer (%s); asking again", doc.id, reason)
                continue
            await self.writer.append({**record, "status": "ok", "questions": questions})
            outcome.answered += 1
            return
        hint = "; raise --max-tokens" if "max_tokens" in reason else ""
        outcome.failed[doc.id] = f"{config.max_parse_retries + 1} malformed answers, last: {reason}{hint}"


async def run_requests(
    docs: Sequence[Document],
    *,
    client: ChatClient,
    journal: Journal,
    prompt: PromptTemplate,
    config: GenerateConfig,
    examples: Sequence[str] = (),
    progress: bool = False,
) -> RunOutcome:
    """Ask for questions about every document in ``docs``; return what happened. Raises QadapterError on an error
    that retrying cannot fix (bad key, unknown model), after cancelling the other workers."""
    from qadapter.core.progress import progress as progress_bar

    outcome = RunOutcome()
    asker = _Asker(client, GroupCommitWriter(journal), prompt, config, examples, outcome)
    queue: asyncio.Queue[Document] = asyncio.Queue()
    for doc in docs:
        queue.put_nowait(doc)
    bar = progress_bar(len(docs), "generating", "chunk", enabled=progress)

    async def worker() -> None:
        while not queue.empty():
            await asker.ask(queue.get_nowait())
            bar.update(1)
            bar.set_postfix(
                tokens=outcome.usage.prompt_tokens + outcome.usage.completion_tokens, refresh=False
            )

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(config.concurrency, len(docs))):
                group.create_task(worker())
    except BaseExceptionGroup as eg:
        fatal = [e for e in eg.exceptions if isinstance(e, QadapterError)]
        raise (fatal[0] if fatal else eg.exceptions[0]) from None
    finally:
        bar.close()
    return outcome
