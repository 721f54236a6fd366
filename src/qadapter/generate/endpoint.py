"""The chat endpoint: which one is used, and one spelling of it for provenance.

The endpoint is not part of what identifies a paid answer (see :func:`qadapter.generate.journal.request_key`):
the same model asked the same prompt about the same chunk gives an answer worth keeping whichever URL served it.
It is recorded, normalised, next to each run so the answers can be traced.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from qadapter.errors import QadapterError

#: Environment variables for the chat endpoint, in order of precedence (after the ``--llm-base-url`` flag).
ENV_VARS = ("QADAPTER_LLM_BASE_URL", "OPENAI_BASE_URL")
DEFAULT_ENDPOINT = "https://api.openai.com/v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"}


def resolve_llm_base_url(value: str | None) -> str | None:
    """The chat endpoint to use: ``value`` (the flag), else ``QADAPTER_LLM_BASE_URL``, else ``OPENAI_BASE_URL``;
    None means the OpenAI API."""
    if value:
        return value
    for name in ENV_VARS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def normalize_base_url(url: str | None) -> str:
    """One spelling per endpoint: lower-case scheme and host, loopback names as ``127.0.0.1``, no default port,
    no trailing ``/``. ``None`` is the OpenAI API."""
    if not url:
        return DEFAULT_ENDPOINT
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise QadapterError(
            f"--llm-base-url {url!r} is not an http(s) URL; expected e.g. http://localhost:11434/v1"
        )
    host = parts.hostname.lower()
    if host in _LOOPBACK:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise QadapterError(f"--llm-base-url {url!r} has an invalid port") from None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))
