"""A real local HTTP server that speaks the OpenAI chat-completions protocol, with scriptable failures.

Tests and the generation benchmark run the real ``openai`` client against it. It identifies the chunk a request is
about by a marker in the prompt (``CHUNK-<key>`` by default), records every request, and answers each one with the
next scripted action for that chunk (then ``default``):

- ``ok``: a JSON answer with ``questions_per_chunk`` questions;
- ``429:S``: HTTP 429 with ``Retry-After: S``; ``500``, ``503``, ``401``, ``404``: that status;
- ``timeout:S``: answer only after S seconds (the client should give up first);
- ``truncated``: JSON content cut in the middle (finish_reason ``stop``); ``length``: same with ``length``;
- ``malformed``: prose with no questions; ``badbody``: an HTTP body that is not JSON;
- ``cut``: the connection closes half-way through the body;
- ``hang``: wait until :meth:`FakeLLMServer.release` or :meth:`stop`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Record:
    key: str | None
    action: str
    start: float
    end: float | None = None
    body: dict[str, Any] | None = None


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when dozens of clients connect at once (real servers use more).
    request_queue_size = 256
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or are killed reset their connections; that is the point of some tests.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def default_questions(key: str, n: int) -> list[str]:
    return [f"Question number {i} on subject {key} for users?" for i in range(1, n + 1)]


class FakeLLMServer:
    def __init__(
        self,
        *,
        latency: float = 0.0,
        questions_per_chunk: int = 5,
        key_pattern: str = r"CHUNK-([A-Za-z0-9_]+)",
        questions: Callable[[str, int], list[str]] = default_questions,
        default: str = "ok",
        usage: bool = True,
    ) -> None:
        self.latency = latency
        self.questions_per_chunk = questions_per_chunk
        self.key_pattern = re.compile(key_pattern)
        self.questions = questions
        self.default = default
        self.usage = usage
        self.records: list[Record] = []
        self._scripts: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._in_flight = 0
        self.max_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------------------------
    def script(self, key: str, actions: Iterable[str]) -> None:
        with self._lock:
            self._scripts[key].extend(actions)

    def release(self) -> None:
        self._release.set()

    def reset_records(self) -> None:
        with self._lock:
            self.records.clear()
            self.max_in_flight = 0

    def requested(self) -> Counter:
        """How many requests each chunk got."""
        with self._lock:
            return Counter(r.key for r in self.records)

    def completed_ok(self) -> list[str]:
        with self._lock:
            return [r.key for r in self.records if r.action == "ok" and r.end is not None]

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one round trip per answer, as a real server

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                body = json.loads(raw)
                server._handle(self, body)

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering --------------------------------------------------------------------------------------------
    def _completion(self, body: dict[str, Any], content: str, finish: str = "stop") -> dict[str, Any]:
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        out: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            ],
        }
        if self.usage:
            completion = max(1, len(content) // 4)
            prompt = max(1, prompt_chars // 4)
            out["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return out

    def _handle(self, handler: Any, body: dict[str, Any]) -> None:
        text = "\n".join(m.get("content") or "" for m in body.get("messages", []))
        match = self.key_pattern.search(text)
        key = match.group(1) if match else None
        with self._lock:
            queue = self._scripts.get(key) if key is not None else None
            action = queue.popleft() if queue else self.default
            record = Record(key, action, time.monotonic(), body=body)
            self.records.append(record)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            self._act(handler, body, key or "unknown", action)
            record.end = time.monotonic()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self._lock:
                self._in_flight -= 1

    def _act(self, handler: Any, body: dict[str, Any], key: str, action: str) -> None:
        name, _, arg = action.partition(":")
        good = json.dumps({"questions": self.questions(key, self.questions_per_chunk)})
        if name == "ok":
            handler._send(200, self._completion(body, good))
        elif name == "429":
            handler._send(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit", "code": "rate_limit_exceeded"}},
                {"Retry-After": arg or "1"},
            )
        elif name.isdigit():
            handler._send(int(name), {"error": {"message": f"status {name}", "type": "server_error"}})
        elif name == "timeout":
            time.sleep(float(arg or 5))
            handler._send(200, self._completion(body, good))
        elif name in ("truncated", "length"):
            handler._send(
                200,
                self._completion(body, good[: len(good) // 2], "stop" if name == "truncated" else "length"),
            )
        elif name == "malformed":
            handler._send(200, self._completion(body, "Sure! These are great questions to think about."))
        elif name == "badbody":
            handler._send(200, b'{"id": "x", "choices": [')
        elif name == "cut":
            data = json.dumps(self._completion(body, good)).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
        elif name == "hang":
            self._release.wait()
            handler._send(200, self._completion(body, good))
        else:
            raise ValueError(f"unknown action {action!r}")


def _serve_forever() -> None:
    """``python tests/fake_llm_server.py --latency 0.3``: serve in its own process (prints the URL, then waits),
    so a benchmark's client does not share the GIL with the server."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    server = FakeLLMServer(latency=args.latency, questions_per_chunk=args.questions).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    _serve_forever()
