"""Client-sent text shown in Markdown (Dagster metadata and check descriptions, Streamlit pages), literally.

Plain Python (no dagster or streamlit import), so that orchestration, activation and the dashboard share it. A value
a client controls (file names, event names, variant names, rejection reasons quoting file content, anything read
from raw data) goes through `md_escape` (or `md_code`, `md_table`) before it meets Markdown: every character
Markdown, GFM or Streamlit give a meaning to is backslash-escaped, so it can open no link, image, HTML tag, emphasis,
table cell, list, heading, math or icon; line breaks and other control characters are shown as escapes (`\\n`),
so they cannot end a table row or a paragraph; and the text is cut at `max_chars` with an ellipsis, so that a 1 MB
name makes a short cell. Text the code writes itself (headers, `**no**`) can be passed to `md_table` as `Markdown`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from numbers import Number

MAX_CHARS = 200  # a cell or an interpolated value; the escaped text may be longer (a backslash per special)
ELLIPSIS = "…"
# CommonMark's backslash escapes work on any ASCII punctuation: escape what Markdown (\ ` * _ { } [ ] < > ( ) # + - .
# ! |), GFM (~ strikethrough, autolinks through ':' and '.') and Streamlit (':' icons, emoji and colours, '$' math)
# give a meaning to, and '&' (an entity such as &lt; would show as '<', not as sent).
SPECIALS = frozenset("\\`*_{}[]<>()#+-.!|~$:&")
_SPECIAL_RE = re.compile("([" + re.escape("".join(sorted(SPECIALS))) + "])")
# bidirectional overrides and isolates reorder what is shown (a name can display as another): shown as escapes
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Markdown(str):
    """Markdown the code wrote itself: `md_table` puts it in a cell as it is."""


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    if char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def _shown(text: str) -> str:
    """Control characters, line and paragraph separators and bidi controls as escapes (\\n, \\x00, \\u2028)."""
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_visible(char) for char in text)


def truncate(text: str, max_chars: int | None = MAX_CHARS) -> str:
    """At most `max_chars` characters: the first max_chars - 1 and an ellipsis when longer."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS


def plain_text(value: object, max_chars: int | None = MAX_CHARS) -> str:
    """`value` as one line of plain text (for places that show text as it is, such as log lines): cut at
    `max_chars`, then control characters as escapes."""
    return _shown(truncate("" if value is None else str(value), max_chars))


def md_escape(value: object, max_chars: int | None = MAX_CHARS) -> str:
    """`value` (str() of it; None is "") as Markdown text that renders as exactly that text, on one line, cut at
    `max_chars` characters (before escaping) with an ellipsis."""
    return _SPECIAL_RE.sub(r"\\\1", plain_text(value, max_chars))


def md_code(value: object, max_chars: int | None = MAX_CHARS) -> str:
    """`value` as an inline code span (literal in Markdown: no emphasis, link or HTML), on one line, cut at
    `max_chars`. Not for table cells: GFM splits a cell at '|' even inside code; use md_escape there."""
    text = plain_text(value, max_chars)
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_cell(value: object, max_chars: int | None = MAX_CHARS) -> str:
    """One table cell: `Markdown` as it is, numbers as str(), anything else escaped and cut."""
    if isinstance(value, Markdown):
        return str(value)
    if isinstance(value, Number) and not isinstance(value, bool):
        return str(value)
    return md_escape(value, max_chars)


def md_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    align: str | None = None,
    max_chars: int | None = MAX_CHARS,
    max_rows: int | None = None,
) -> str:
    """A GFM table: one line per row, every cell through md_cell, headers escaped too.

    align: one letter per column, 'l', 'r' or 'c' (default all left). max_rows: rows beyond it are left out and a
    last row says how many. A row with fewer cells than headers is padded; one with more is cut to the headers.
    """
    width = len(headers)
    align = (align or "l" * width).ljust(width, "l")
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(md_escape(h, max_chars) for h in headers) + " |",
        "|" + "|".join(marks[a] for a in align[:width]) + "|",
    ]
    left_out = 0
    for index, row in enumerate(rows):
        if max_rows is not None and index >= max_rows:
            left_out += 1
            continue
        cells = [md_cell(value, max_chars) for value in list(row)[:width]]
        cells += [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    if left_out:
        lines.append("| " + " | ".join([f"… {left_out} more", *[""] * (width - 1)]) + " |")
    return "\n".join(lines)


def md_frame(frame, *, max_chars: int | None = MAX_CHARS, max_rows: int | None = None) -> str:
    """A pandas DataFrame (duck-typed: columns, dtypes, itertuples) as md_table, numeric columns right-aligned;
    round it first for fewer digits."""
    align = "".join("r" if dtype.kind in "iuf" else "l" for dtype in frame.dtypes)
    rows = frame.itertuples(index=False, name=None)
    return md_table([str(c) for c in frame.columns], rows, align=align, max_chars=max_chars, max_rows=max_rows)


def md_list(items: Iterable[object], *, max_chars: int | None = MAX_CHARS, max_items: int | None = None) -> str:
    """A bullet list, one escaped item a line ("" for no items)."""
    items = list(items)
    shown = items if max_items is None else items[:max_items]
    lines = [f"- {md_escape(item, max_chars)}" for item in shown]
    if len(items) > len(shown):
        lines.append(f"- … {len(items) - len(shown)} more")
    return "\n".join(lines)
