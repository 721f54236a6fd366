"""Chunking that stays linear in the input size, whatever the input looks like.

``semantic-text-splitter`` chooses good cut points (paragraphs, sentences, words) but its cost grows faster than the
text when it has to cut inside one long line (measured: 1 MB single-line text 21 s, 4 MB 157 s), and a "word"
longer than the tokenizer's word limit counts as one ``[UNK]`` token however long it is, so token counting alone
let a 50 MB run become one chunk. So the text is first cut into bounded pieces:

- :func:`segments` walks the text once and yields windows of ordinary lines (at most ``window`` characters, cut
  at a line break; each goes to the splitter, whose cost is then bounded per window) and lines longer than
  ``long_line`` characters on their own;
- :func:`split_long` chunks such a long line greedily in one pass over the tokenizer's offsets, preferring to cut
  at a sentence end, then at whitespace, and never past ``max_chars`` characters or ``chunk_size`` tokens;
- :func:`cap_chars` splits any chunk over ``max_chars`` characters into even pieces (the hard cap).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

#: Boundaries to cut at, best first: paragraph, line, sentence end, whitespace.
_BOUNDARIES = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "\t")


def segments(text: str, *, window: int, long_line: int) -> Iterator[tuple[int, str, bool]]:
    """``(offset, piece, is_long_line)`` covering ``text`` in order; ordinary pieces are whole lines, <= ``window``."""
    start = pos = 0  # start of the current window of ordinary lines, and of the next line
    n = len(text)
    while pos < n:
        newline = text.find("\n", pos)
        end = n if newline < 0 else newline + 1
        if end - pos > long_line:
            if pos > start:
                yield start, text[start:pos], False
            yield pos, text[pos:end], True
            start = end
        elif end - start > window and pos > start:
            yield start, text[start:pos], False
            start = pos
        pos = end
    if start < n:
        yield start, text[start:n], False


def cut_at_boundary(text: str, lo: int, hi: int) -> int:
    """The best place to end a chunk in ``text[lo:hi]`` (just after a boundary), or ``hi`` when there is none."""
    for boundary in _BOUNDARIES:
        found = text.rfind(boundary, lo, hi)
        if found >= 0:
            return found + len(boundary)
    return hi


def _next_start(text: str, starts: Sequence[int] | None, pos: int, cut: int, overlap: int) -> int:
    """Where the next chunk starts: ``overlap`` tokens (or characters) before ``cut``, moved to a word start."""
    if overlap <= 0:
        return cut
    if starts is None:
        back = max(pos + 1, cut - overlap)
    else:
        k = bisect.bisect_left(starts, cut) - overlap
        back = max(pos + 1, starts[k] if k >= 0 else pos + 1)
    space = _first_space(text, back, cut)
    return cut if space is None else space


def _first_space(text: str, lo: int, hi: int) -> int | None:
    for index in range(lo, hi):
        if text[index].isspace():
            return index + 1 if index + 1 < hi else None
    return None


def split_long(
    text: str, *, chunk_size: int, overlap: int, max_chars: int, starts: Sequence[int] | None
) -> list[tuple[int, str]]:
    """Chunk ``text`` in one pass. ``starts`` are the character offsets where its tokens start (None: count
    characters instead of tokens). A chunk holds at most ``chunk_size`` tokens and ``max_chars`` characters."""
    chunks: list[tuple[int, str]] = []
    n, pos = len(text), 0
    while pos < n:
        limit = min(n, pos + max_chars, pos + chunk_size if starts is None else n)
        if starts is not None:
            first = bisect.bisect_left(starts, pos)
            if first + chunk_size < len(starts):
                limit = min(limit, max(pos + 1, starts[first + chunk_size]))
        cut = limit if limit >= n else cut_at_boundary(text, pos + (limit - pos) // 2, limit)
        chunks.append((pos, text[pos:cut]))
        if cut >= n:
            break
        pos = max(pos + 1, _next_start(text, starts, pos, cut, overlap))
    return chunks


def cap_chars(offset: int, chunk: str, max_chars: int) -> list[tuple[int, str]]:
    """``chunk`` as it is when it fits in ``max_chars``, else cut into even pieces that do (at boundaries where
    possible), so no long run of characters (a URL, base64, a 'word' of a million letters) exceeds the cap."""
    if len(chunk) <= max_chars:
        return [(offset, chunk)]
    parts = -(-len(chunk) // max_chars)
    even = -(-len(chunk) // parts)
    pieces = split_long(chunk, chunk_size=even, overlap=0, max_chars=max_chars, starts=None)
    return [(offset + start, piece) for start, piece in pieces]
