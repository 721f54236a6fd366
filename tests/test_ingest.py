"""Ingest: files and folders -> chunks with source/page metadata, by the model's tokenizer or by characters."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qadapter.cli import cli
from qadapter.data import Workspace
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.ingest import collect_files, ingest
from qadapter.ingest.chunking import Chunker, resolve_tokenizer
from qadapter.ingest.readers import supported_suffixes

SHARED = Path("../shared/data")
NVIDIA_PDF = SHARED / "seed" / "nvidia_10k.pdf"


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page, written by hand (correct xref offsets)."""
    n = len(pages)
    font_id, first_page = 3, 4
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(n)), n),
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for i, text in enumerate(pages):
        stream = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")
        objects[first_page + 2 * i] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % (first_page + 2 * i + 1)
        )
        objects[first_page + 2 * i + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for number in sorted(objects):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def blank_pdf(path: Path, pages: int = 2) -> Path:
    """An image-only PDF as far as text goes: pages with no text layer."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "report.pdf").write_bytes(
        minimal_pdf(["Solar panels power the campus.", "Water is recycled on site."])
    )
    (root / "notes.md").write_text(
        "# Energy\n\nWind and solar.\n\n## Water\n\nRecycled water.\n", encoding="utf-8"
    )
    (root / "sub" / "notes.md").write_text(
        "# Other notes\n\nA second file with the same stem.\n", encoding="utf-8"
    )
    (root / "plain.txt").write_text("Plain text about recycling aluminium.\n", encoding="utf-8")
    (root / "page.html").write_text(
        "<html><head><title>Green Page</title><style>body{color:red}</style></head><body><nav>Menu</nav>"
        "<h1>Carbon</h1><p>Carbon neutral by 2030.</p><script>var x = 'hidden';</script></body></html>",
        encoding="utf-8",
    )
    (root / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / ".hidden" / "secret.txt").write_text("should be skipped", encoding="utf-8")
    return root


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_folder_ingest_reads_every_format_with_metadata(docs: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="qadapter.ingest"):
        ws = ingest(docs, tmp_path / "ws")
    corpus = ws.corpus()
    by_source = {}
    for doc in corpus.values():
        by_source.setdefault(doc.metadata["source"], []).append(doc)
    assert sorted(by_source) == ["notes.md", "page.html", "plain.txt", "report.pdf", "sub/notes.md"]
    assert "data.csv" in caplog.text and "unsupported" in caplog.text
    pdf = by_source["report.pdf"]
    assert pdf[0].metadata == {"source": "report.pdf", "page": 1, "chunk": 0, "page_end": 2}
    assert "Solar panels" in pdf[0].text and "Water is recycled" in pdf[0].text
    html = by_source["page.html"][0]
    assert "Carbon neutral by 2030." in html.text
    assert "hidden" not in html.text and "color" not in html.text and "Menu" not in html.text
    assert html.metadata["title"] == "Green Page"
    # ids are <file-stem>-<n>, unique across files with the same stem
    assert {d.id for d in by_source["notes.md"]} == {"notes-0"}
    assert {d.id for d in by_source["sub/notes.md"]} == {"notes-2-0"}
    assert "page-0" in corpus and "report-0" in corpus
    manifest = json.loads((ws.path / "ingest.json").read_text())
    assert manifest["chunking"] == {
        "unit": "tokens",
        "chunk_size": 254,
        "overlap": 31,
        "max_chars": 2540,
        "tokenizer_model": "all-MiniLM-L6-v2",
        "max_seq_length": 256,
    }
    assert manifest["format"] == "qadapter-ingest" and manifest["documents"] == len(corpus)


def test_ingest_is_deterministic(docs: Path, tmp_path: Path) -> None:
    a = ingest(docs, tmp_path / "a").corpus_path.read_bytes()
    b = ingest(docs, tmp_path / "b").corpus_path.read_bytes()
    assert a == b


def test_pdf_pages_are_tracked_per_chunk(tmp_path: Path) -> None:
    pages = [f"Page {i} talks about topic number {i} in some detail." for i in range(1, 7)]
    (tmp_path / "long.pdf").write_bytes(minimal_pdf(pages))
    ws = ingest(tmp_path / "long.pdf", tmp_path / "ws", chunk_size=60, overlap=0, unit="chars")
    docs = sorted(ws.corpus().values(), key=lambda d: d.metadata["chunk"])
    assert [d.metadata["chunk"] for d in docs] == list(range(len(docs)))
    for doc in docs:
        page = doc.metadata["page"]
        assert f"Page {page} " in doc.text, (page, doc.text)
    assert {d.metadata["page"] for d in docs} == set(range(1, 7))


def numbered_text(n: int) -> str:
    """Sentences that never repeat, so each chunk's position in the text is unambiguous."""
    return " ".join(
        f"Sentence {i} says that facility {i} recycled {i * 7} tonnes of aluminium." for i in range(n)
    )


def spans(text: str, chunks: list[str]) -> list[tuple[int, int]]:
    out, cursor = [], 0
    for chunk in chunks:
        start = text.index(chunk, cursor)
        out.append((start, start + len(chunk)))
        cursor = start + 1
    return out


def test_default_chunks_fit_the_model_and_overlap(tmp_path: Path) -> None:
    text = numbered_text(200)
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    chunker = Chunker()
    assert chunker.chunk_size == 254  # max_seq_length 256 minus [CLS] and [SEP]
    ws = ingest(tmp_path / "long.txt", tmp_path / "ws", overlap=40)
    docs = sorted(ws.corpus().values(), key=lambda d: d.metadata["chunk"])
    assert len(docs) > 3
    counts = [chunker.count_tokens(d.text) for d in docs]
    assert max(counts) <= 256
    assert min(counts[:-1]) > 200  # chunks are filled, not cut at every sentence
    positions = spans(text, [d.text for d in docs])
    assert positions[0][0] == 0 and positions[-1][1] == len(text)
    for (_, end), (next_start, _) in zip(positions, positions[1:], strict=False):
        assert next_start < end  # consecutive chunks overlap
        overlap_tokens = chunker.count_tokens(text[next_start:end]) - 2
        assert 0 < overlap_tokens <= 40


def test_notebook_800_400_chars_is_expressible(tmp_path: Path) -> None:
    text = numbered_text(120)
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    ws = ingest(tmp_path / "long.txt", tmp_path / "ws", chunk_size=800, overlap=400, unit="chars")
    docs = sorted(ws.corpus().values(), key=lambda d: d.metadata["chunk"])
    assert all(len(d.text) <= 800 for d in docs)
    assert max(len(d.text) for d in docs) > 700
    positions = spans(text, [d.text for d in docs])
    assert positions[0][0] == 0 and positions[-1][1] == len(text)
    for (_, end), (next_start, _) in zip(positions, positions[1:], strict=False):
        assert 0 < end - next_start <= 400
    # with up to 50% overlap, about twice as many chunks as 800-character pieces
    assert len(docs) >= 1.6 * len(text) / 800
    manifest = json.loads((ws.path / "ingest.json").read_text())
    assert manifest["chunking"] == {"unit": "chars", "chunk_size": 800, "overlap": 400, "max_chars": 800}


def test_markdown_is_split_at_headings(tmp_path: Path) -> None:
    sections = [f"# Section {i}\n\n" + f"Sentence {i} about markdown splitting. " * 6 for i in range(4)]
    (tmp_path / "doc.md").write_text("\n\n".join(sections), encoding="utf-8")
    ws = ingest(tmp_path / "doc.md", tmp_path / "ws", chunk_size=300, overlap=0, unit="chars")
    docs = sorted(ws.corpus().values(), key=lambda d: d.metadata["chunk"])
    assert [d.text.splitlines()[0] for d in docs] == [f"# Section {i}" for i in range(4)]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "the file is empty"),
        ("blank.md", b"  \n\n \t\n", "the file is empty"),
        ("corrupt.pdf", b"%PDF-1.7\n1 0 obj garbage\n%%EOF", "corrupt or unreadable PDF"),
        ("notpdf.pdf", b"hello, I am text", "not a PDF file"),
        ("markup.html", b"<html><script>x()</script></html>", "no visible text"),
    ],
)
def test_bad_files_fail_with_one_line_and_write_nothing(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / name
    bad.write_bytes(content)
    (tmp_path / "in" / "good.txt").write_text("fine text", encoding="utf-8")
    with pytest.raises(DataError) as err:
        ingest(tmp_path / "in", tmp_path / "out" / "ws")
    text = str(err.value)
    assert str(bad) in text and message in text and "\n" not in text
    assert not (tmp_path / "out" / "ws").exists()
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []


def test_image_only_pdf_says_run_ocr(tmp_path: Path) -> None:
    scanned = blank_pdf(tmp_path / "scan.pdf", pages=3)
    with pytest.raises(DataError, match=r"scan\.pdf: no text layer in any of its 3 page\(s\).*run OCR first"):
        ingest(scanned, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_skip_bad_skips_and_records(tmp_path: Path, caplog) -> None:
    (tmp_path / "in").mkdir()
    blank_pdf(tmp_path / "in" / "scan.pdf")
    (tmp_path / "in" / "good.txt").write_text("fine text", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qadapter.ingest"):
        ws = ingest(tmp_path / "in", tmp_path / "ws", skip_bad=True)
    assert list(ws.corpus()) == ["good-0"]
    assert "scan.pdf" in caplog.text
    manifest = json.loads((ws.path / "ingest.json").read_text())
    assert "no text layer" in manifest["sources"][1]["skipped"]


def test_existing_output_is_refused_unless_overwrite(docs: Path, tmp_path: Path) -> None:
    out = tmp_path / "ws"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ArtifactError, match="already exists"):
        ingest(docs / "plain.txt", out)
    assert (out / "keep.txt").exists()
    ws = ingest(docs / "plain.txt", out, overwrite=True)
    assert list(ws.corpus()) == ["plain-0"] and not (out / "keep.txt").exists()


def test_input_errors(docs: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        ingest(docs / "data.csv", tmp_path / "ws")
    with pytest.raises(DataError, match="no such file or folder"):
        ingest(tmp_path / "missing", tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files to ingest"):
        ingest(tmp_path / "empty", tmp_path / "ws")
    with pytest.raises(QadapterError, match="overlap must be"):
        ingest(docs, tmp_path / "ws", chunk_size=100, overlap=100, unit="chars")
    with pytest.raises(QadapterError, match="unknown chunking unit 'words'"):
        ingest(docs, tmp_path / "ws", unit="words")  # type: ignore[arg-type]
    with pytest.raises(QadapterError, match="--unit chars"):
        ingest(docs, tmp_path / "ws", model="openai:text-embedding-3-small")
    assert supported_suffixes() == [".htm", ".html", ".markdown", ".md", ".pdf", ".text", ".txt"]
    assert not (tmp_path / "ws").exists()


def test_tokenizer_from_a_local_model_folder_and_oversized_chunks_warn(caplog) -> None:
    from qadapter.encoders.sentence_transformers import bundled_model_path

    info = resolve_tokenizer(str(bundled_model_path()))
    assert info.max_seq_length == 256 and info.tokenizer_file.name == "tokenizer.json"
    with caplog.at_level(logging.WARNING, logger="qadapter.ingest.chunking"):
        Chunker(512, 0)
    assert "cut off" in caplog.text


def test_non_utf8_text_is_decoded(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Café crème à la carte, déjà vu.".encode("cp1252"))
    ws = ingest(tmp_path / "latin.txt", tmp_path / "ws", unit="chars")
    assert "Café" in ws.corpus()["latin-0"].text


def test_collect_files_order_and_sources(docs: Path) -> None:
    found = collect_files([docs, docs / "plain.txt"])
    assert [source for _, source in found] == [
        "notes.md",
        "page.html",
        "plain.txt",
        "report.pdf",
        "sub/notes.md",
        "plain.txt",
    ]


def test_progress_lines(
    docs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal, progress is log lines (qadapter.core.progress); here one per file."""
    from qadapter.core.progress import LineProgress

    monkeypatch.setattr(LineProgress.__init__, "__defaults__", (0.0,))
    with caplog.at_level("INFO", logger="qadapter.progress"):
        ingest(docs, tmp_path / "ws", progress=True)
    assert "ingest: 5/5 files (100%" in caplog.text


def test_cli_ingest(docs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["ingest", str(docs), "-o", str(tmp_path / "ws"), "--json", "--unit", "chars"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["files"] == 5 and summary["documents"] == len(Workspace(tmp_path / "ws").corpus())
    assert summary["chunking"] == {"unit": "chars", "chunk_size": 800, "overlap": 100, "max_chars": 800}


@pytest.mark.integration
def test_cli_subprocess_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "qadapter", "ingest", str(tmp_path / "empty.txt"), "-o", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty.txt'}: the file is empty; remove it or give it some text"
    ]
    assert not (tmp_path / "ws").exists()


@pytest.mark.integration
@pytest.mark.skipif(not NVIDIA_PDF.is_file(), reason="../shared/data/seed/nvidia_10k.pdf is not available")
def test_real_10k_pdf(tmp_path: Path) -> None:
    started = time.perf_counter()
    ws = ingest(NVIDIA_PDF, tmp_path / "ws")
    elapsed = time.perf_counter() - started
    corpus = ws.corpus()
    chunker = Chunker()
    assert len(corpus) > 300
    assert max(chunker.count_tokens(d.text) for d in corpus.values()) <= 256
    pages = [d.metadata["page"] for d in corpus.values()]
    assert pages == sorted(pages) and pages[0] == 1 and pages[-1] > 80
    assert elapsed < 60


def test_output_inside_an_input_folder_is_not_ingested(docs: Path) -> None:
    first = ingest(docs, docs / "ws").corpus_path.read_bytes()
    (docs / "ws" / "notes.txt").write_text("written into the workspace by hand", encoding="utf-8")
    again = ingest(docs, docs / "ws", overwrite=True).corpus_path.read_bytes()
    assert again == first
