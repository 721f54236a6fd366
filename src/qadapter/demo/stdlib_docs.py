"""A real retrieval data set that every machine with Python already has: the standard library's docstrings.

Each documented public function, class or method becomes one document (its docstring after the summary line, under
its qualified name as the title) and one query (the summary line). Nobody on this project wrote this text, it needs no
network, and the task is realistic: "which API does X?" asked in the words the API's own summary uses, answered by its
longer description. The summary line is removed from the document, so the query is never an exact substring of it.

The signature is left out of the document on purpose: default values in signatures can print memory addresses
(``<object object at 0x...>``), which would make the build non-deterministic, and the body already names the
parameters that matter. The qualified name stays in, as the title, just as a heading sits above an API reference entry.

Docstrings differ a little between Python versions, so the data set does too; for one Python it is deterministic.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import platform
import random
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from qadapter.data.atomic import atomic_dir, atomic_open
from qadapter.data.types import Document, Qrels, Query
from qadapter.data.workspace import Workspace
from qadapter.errors import QadapterError

logger = logging.getLogger(__name__)

#: Standard-library modules walked by default, in this order (the order decides which of two identical docstrings is
#: kept). Chosen because they import without side effects and are documented in prose; only objects defined in Python
#: (functions, classes and their methods) are read from them. Left out on purpose: modules that act on import
#: (``antigravity``, ``this``, ``turtle``, ``tkinter``, ``idlelib``, ``rlcompleter``) and modules deprecated or removed
#: in recent Pythons, and ``pdb`` (its command help is usage lines, not prose). A module missing from the running
#: Python is skipped.
DEFAULT_MODULES: tuple[str, ...] = (
    "abc", "argparse", "ast", "asyncio", "base64", "bdb", "bz2", "calendar", "cmd", "code", "codecs", "codeop",
    "collections", "collections.abc", "colorsys", "compileall", "concurrent.futures", "configparser",
    "contextlib", "contextvars", "copy", "copyreg", "csv", "dataclasses", "datetime", "dbm", "decimal", "difflib",
    "dis", "doctest", "email.charset", "email.feedparser", "email.generator", "email.header",
    "email.headerregistry", "email.message", "email.parser", "email.policy", "email.utils", "enum", "filecmp",
    "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt", "getpass", "gettext", "glob",
    "graphlib", "gzip", "heapq", "hmac", "html", "html.parser", "http.client", "http.cookiejar", "http.cookies",
    "http.server", "imaplib", "importlib.abc", "importlib.machinery", "importlib.metadata", "importlib.resources",
    "importlib.util", "inspect", "io", "ipaddress", "json", "locale", "logging", "logging.config",
    "logging.handlers", "lzma", "mailbox", "mimetypes", "modulefinder", "multiprocessing.managers",
    "multiprocessing.pool", "multiprocessing.shared_memory", "netrc", "numbers", "operator", "optparse", "os",
    "pathlib", "pickletools", "pkgutil", "platform", "plistlib", "poplib", "pprint", "profile", "pstats",
    "py_compile", "pyclbr", "pydoc", "queue", "quopri", "random", "re", "reprlib", "runpy", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl",
    "statistics", "string", "subprocess", "symtable", "sysconfig", "tabnanny", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "types", "typing",
    "unittest", "unittest.mock", "urllib.error", "urllib.parse", "urllib.request", "urllib.robotparser", "uuid",
    "warnings", "wave", "weakref", "wsgiref.handlers", "wsgiref.headers", "wsgiref.simple_server", "wsgiref.util",
    "wsgiref.validate", "xml.dom.minidom", "xml.dom.pulldom", "xml.etree.ElementTree", "xml.sax",
    "xml.sax.handler", "xml.sax.saxutils", "xml.sax.xmlreader", "xmlrpc.client", "xmlrpc.server", "zipapp",
    "zipfile", "zipimport", "zoneinfo",
)  # fmt: skip

#: Modules that run code with visible effects when imported (open a browser, print, open windows); never walked.
UNSAFE_MODULES = frozenset({"antigravity", "this", "turtle", "turtledemo", "tkinter", "idlelib", "__hello__"})

SUMMARY_MIN_CHARS = 20
SUMMARY_MAX_CHARS = 200
DATASET_FILE = "dataset.json"
_SIGNATURE_LINE = re.compile(r"^[A-Za-z_][\w.]*\(.*\)(\s*-+>.*)?$")
#: End of a sentence: ". " (or ! ?) followed by a capital letter, a quote or a backquote; good enough for summaries.
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]`'\"][.!?])\s+(?=[A-Z`'\"(])")
#: A summary written as code rather than prose: ``name(args) ...`` or ``data [,options] -> result``.
_CODE_SUMMARY = re.compile(r"^[A-Za-z_][\w.]*\(|^\S+(\s\[[^\]]*\])?\s(-+>|=>)\s")


@dataclass(frozen=True)
class DocstringEntry:
    """One documented object: ``name`` (e.g. ``json.dumps``) becomes the document id and title, ``summary`` the
    query, ``body`` the document text; ``kind`` is ``function``, ``class`` or ``method``."""

    name: str
    module: str
    kind: str
    summary: str
    body: str


def _import(name: str, *, strict: bool) -> ModuleType | None:
    if name.split(".")[0] in UNSAFE_MODULES:
        if strict:
            raise QadapterError(
                f"module '{name}' has side effects on import and cannot be walked; choose another"
            )
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception as exc:  # any import failure just means this Python lacks the module
        if strict:
            raise QadapterError(
                f"cannot import module '{name}' ({type(exc).__name__}: {exc}); check the name"
            ) from None
        logger.info("skipping module %s: %s", name, exc)
        return None


def _own_doc(obj: Any) -> str | None:
    """The object's own docstring, cleaned. ``inspect.getdoc`` would inherit a base class's docstring, which turns
    every override into a duplicate of its parent, so only a docstring set on the object itself counts."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)


def split_docstring(doc: str) -> tuple[str, str] | None:
    """Split a cleaned docstring into ``(summary, body)``; ``None`` when there is no usable summary or no body.

    The summary is the first paragraph (PEP 257's summary line, joined when it wraps). Many stdlib docstrings run the
    summary straight into the details without a blank line; then the first sentence is the summary and the rest of
    the paragraph starts the body. A first paragraph that is only a call signature (old C-style
    ``name(args) -> result``) is skipped, so the summary is prose.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    if paragraphs and all(_SIGNATURE_LINE.match(line.strip()) for line in paragraphs[0].splitlines()):
        paragraphs = paragraphs[1:]
    if not paragraphs:
        return None
    first = " ".join(line.strip() for line in paragraphs[0].splitlines())
    rest = paragraphs[1:]
    if len(first) > SUMMARY_MAX_CHARS or not rest:
        sentences = _SENTENCE_END.split(first, maxsplit=1)
        if len(sentences) == 2:
            first, tail = sentences
            rest = [tail, *rest]
    if not rest or first.endswith(":") or ">>>" in first or _CODE_SUMMARY.match(first):
        return None
    return first, "\n\n".join(rest)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _module_members(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if not isinstance(names, list | tuple):
        names = [n for n in vars(module) if _public(n)]
    return sorted({str(n) for n in names if _public(str(n))})


def _belongs(obj: Any, module: ModuleType) -> bool:
    """Defined in this module or one of its submodules (``json.JSONDecoder`` lives in ``json.decoder``), not merely
    imported from elsewhere (``os.path`` functions re-exported by ``shutil`` belong to ``posixpath``)."""
    owner = getattr(obj, "__module__", None)
    return isinstance(owner, str) and (owner == module.__name__ or owner.startswith(module.__name__ + "."))


def _walk(modules: Sequence[tuple[str, ModuleType]]) -> Iterator[tuple[str, str, str, Any]]:
    """Yield ``(name, module, kind, object)`` for every public function, class and method, each object once."""
    seen: set[int] = set()
    for mod_name, module in modules:
        for attr in _module_members(module):
            obj = getattr(module, attr, None)
            if (
                not (inspect.isclass(obj) or inspect.isfunction(obj))
                or not _belongs(obj, module)
                or id(obj) in seen
            ):
                continue
            seen.add(id(obj))
            name = f"{mod_name}.{attr}"
            if inspect.isfunction(obj):
                yield name, mod_name, "function", obj
                continue
            yield name, mod_name, "class", obj
            for meth_name in sorted(vars(obj)):
                raw = vars(obj)[meth_name]
                func = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
                if _public(meth_name) and inspect.isfunction(func) and id(func) not in seen:
                    seen.add(id(func))
                    yield f"{name}.{meth_name}", mod_name, "method", func


def collect_entries(
    modules: Sequence[str] | None = None, *, min_doc_chars: int = 100
) -> list[DocstringEntry]:
    """Every usable docstring of ``modules`` (default :data:`DEFAULT_MODULES`), in walk order, deduplicated.

    An entry is kept when its summary has ``SUMMARY_MIN_CHARS``..``SUMMARY_MAX_CHARS`` characters and its body at
    least ``min_doc_chars``. When two entries share a summary or a body, only the first is kept: a repeated summary
    would be a query with several right answers, and a repeated body a document that cannot be told apart. An entry
    whose body repeats its own summary is dropped too, so no query is an exact substring of its document.
    """
    strict = modules is not None
    loaded = [(name, mod) for name in (modules or DEFAULT_MODULES) if (mod := _import(name, strict=strict))]
    entries: list[DocstringEntry] = []
    seen_summaries: set[str] = set()
    seen_bodies: set[str] = set()
    for name, mod_name, kind, obj in _walk(loaded):
        doc = _own_doc(obj)
        parts = split_docstring(doc) if doc else None
        if parts is None:
            continue
        summary, body = parts
        if not SUMMARY_MIN_CHARS <= len(summary) <= SUMMARY_MAX_CHARS or len(body) < min_doc_chars:
            continue
        key_summary, key_body = summary.casefold(), " ".join(body.split())
        if key_summary in key_body.casefold():  # the body repeats the summary: an exact-match giveaway
            continue
        if key_summary in seen_summaries or key_body in seen_bodies:
            continue
        seen_summaries.add(key_summary)
        seen_bodies.add(key_body)
        entries.append(DocstringEntry(name, mod_name, kind, summary, body))
    return entries


def build_stdlib_workspace(
    output: str | Path,
    *,
    modules: Sequence[str] | None = None,
    min_doc_chars: int = 100,
    max_docs: int = 3000,
    test_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Workspace:
    """Write the standard-library docstring data set as a workspace at ``output`` and return it.

    Writes ``corpus.jsonl``, ``queries.jsonl``, ``qrels/all.tsv`` and a split *by document*: ``qrels/train.tsv`` and
    ``qrels/test.tsv``, so test queries ask about documents the adapter never saw in training. Keeps at most
    ``max_docs`` documents (a seeded sample, so embedding stays around a minute on a laptop CPU). Nothing is written
    unless every step succeeds, and an existing ``output`` is replaced only with ``overwrite=True``.

    ``modules`` overrides :data:`DEFAULT_MODULES`; a name there that cannot be imported is an error, whereas a default
    module missing from this Python is skipped.
    """
    if min_doc_chars < 0:
        raise QadapterError(f"min_doc_chars must be >= 0, got {min_doc_chars}")
    if max_docs < 2:
        raise QadapterError(f"max_docs must be at least 2 (one train and one test document), got {max_docs}")
    if not 0.0 < test_fraction < 1.0:
        raise QadapterError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if modules is not None and not modules:
        raise QadapterError("modules is empty; pass at least one module name or None for the default list")
    output = Path(output)
    if output.exists() and not overwrite:
        raise QadapterError(f"{output} already exists; choose another output path or pass --overwrite")

    entries = collect_entries(modules, min_doc_chars=min_doc_chars)
    rng = random.Random(seed)
    if len(entries) > max_docs:
        keep = set(rng.sample(range(len(entries)), max_docs))
        entries = [e for i, e in enumerate(entries) if i in keep]
    if len(entries) < 2:
        raise QadapterError(
            f"only {len(entries)} usable docstring(s) found in {list(modules or DEFAULT_MODULES)} with "
            f"min_doc_chars={min_doc_chars}; add modules or lower min_doc_chars"
        )

    order = list(range(len(entries)))
    rng.shuffle(order)
    n_test = min(max(1, round(len(entries) * test_fraction)), len(entries) - 1)
    test_idx = set(order[:n_test])

    corpus = [
        Document(e.name, e.body, title=e.name, metadata={"module": e.module, "kind": e.kind}) for e in entries
    ]
    queries = [
        Query(f"q:{e.name}", e.summary, metadata={"source": "docstring summary", "doc": e.name})
        for e in entries
    ]
    qrels_all: Qrels = {f"q:{e.name}": {e.name: 1} for e in entries}
    train = {f"q:{e.name}": {e.name: 1} for i, e in enumerate(entries) if i not in test_idx}
    test = {f"q:{e.name}": {e.name: 1} for i, e in enumerate(entries) if i in test_idx}

    with atomic_dir(output, overwrite=overwrite) as tmp:
        workspace = Workspace(tmp)
        workspace.write_corpus(corpus)
        workspace.write_queries(queries)
        workspace.write_qrels("all", qrels_all)
        workspace.write_qrels("train", train)
        workspace.write_qrels("test", test)
        _write_provenance(
            tmp / DATASET_FILE, modules, min_doc_chars, max_docs, test_fraction, seed, corpus, train, test
        )
    logger.info("wrote %d documents (%d train, %d test) to %s", len(corpus), len(train), len(test), output)
    return Workspace(output)


def _write_provenance(
    path: Path,
    modules: Sequence[str] | None,
    min_doc_chars: int,
    max_docs: int,
    test_fraction: float,
    seed: int,
    corpus: list[Document],
    train: Qrels,
    test: Qrels,
) -> None:
    """Record where the data came from, so a reader of the workspace knows it is generated and how to rebuild it."""
    record = {
        "source": "Python standard library docstrings (query: summary line; document: the rest)",
        "python": platform.python_version(),
        "modules": sorted({d.metadata["module"] for d in corpus}),
        "requested_modules": list(modules) if modules is not None else "default",
        "params": {
            "min_doc_chars": min_doc_chars,
            "max_docs": max_docs,
            "test_fraction": test_fraction,
            "seed": seed,
        },
        "counts": {"documents": len(corpus), "queries": len(corpus), "train": len(train), "test": len(test)},
        "split": "by document",
    }
    with atomic_open(path) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
