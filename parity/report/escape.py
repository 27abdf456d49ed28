"""Escaping for each output syntax: text from case files is untrusted.

Case names, descriptions, sources, ``known[].reason``, framework error messages (which
may echo parameters), host and side labels all come from outside parity. Each output
format gets one function that makes such text safe for that format's syntax:

* :func:`terminal`: control characters that a terminal would act on are shown, not sent;
* :func:`csv_cell`: no text cell is read as a formula by a spreadsheet (OWASP);
* :func:`xml_text`: no character XML 1.0 forbids (the file stays well-formed);
* :func:`markdown_cell`: text stays text inside one Markdown (GFM) table cell.

A character that is removed is always replaced by something visible (``\\x1b``,
``\\u202e``), so a reader sees that something was there. Every function is one compiled
regular expression with a fast path for the usual case, text with nothing to escape,
which is returned as it is (reports can have 10,000 rows).

The HTML report needs none of these: Jinja2 autoescapes its text, and its embedded JSON
is written by ``tojson`` (ASCII only, ``<``, ``>``, ``&`` and ``'`` as ``\\u`` escapes).
"""

from __future__ import annotations

import re

__all__ = ["csv_cell", "markdown_cell", "terminal", "visible", "xml_text"]


def visible(char: str) -> str:
    """The visible spelling of one character: ``\\x1b`` below U+0100, ``\\u202e`` above."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _class(*ranges: tuple[int, int]) -> str:
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


def _visible_match(m: re.Match) -> str:
    return visible(m.group())


# C0 controls but tab (0x09) and newline (0x0a), DEL, C1 controls (U+0080-U+009F: U+009B is
# a one-byte CSI), and the bidi embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) that reorder what follows them on screen ("Trojan Source"); and lone
# surrogates, which are no characters (a YAML "\ud800" makes one) and which no UTF-8
# stream can encode (printing one raises UnicodeEncodeError).
_CONTROL_RANGES = ((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069), (0xD800, 0xDFFF))
_CONTROL = re.compile(f"[{_class(*_CONTROL_RANGES)}]")


def terminal(text) -> str:
    """``text`` as it may be written to a terminal: C0 controls except newline and tab (ESC
    would start a sequence that retitles the window or clears the screen, CR would
    overwrite the line), DEL and C1 controls become ``\\x1b``-style escapes, the bidi
    overrides U+202A-U+202E and U+2066-U+2069 (and lone surrogates, which cannot be
    printed) ``\\u202e``-style ones. All other characters, Unicode letters included, are
    kept."""
    text = text if isinstance(text, str) else str(text)
    return _CONTROL.sub(_visible_match, text) if _CONTROL.search(text) else text


#: what makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """One CSV cell. A string that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return gets a leading single quote (OWASP's rule against formula injection: a
    spreadsheet then shows the text instead of evaluating it), and its control characters
    are made visible as in :func:`terminal`. Anything else (numbers, booleans, None) is
    returned untouched, so that numeric cells such as ``-0.5`` stay numbers."""
    if not isinstance(value, str):
        return value
    quoted = "'" if value.startswith(FORMULA_START) else ""
    if _CONTROL.search(value):  # newline and tab are data in a cell (the csv module quotes them)
        value = _CONTROL.sub(_visible_match, value)
    return quoted + value


# XML 1.0 allows tab, newline, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000 up; lone
# surrogates (which a Python str can hold) are not characters at all
_XML_FORBIDDEN = re.compile(f"[{_class((0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0xD800, 0xDFFF), (0xFFFE, 0xFFFF))}]")


def xml_text(text) -> str:
    """``text`` with every character XML 1.0 forbids (U+0000-U+0008, U+000B, U+000C,
    U+000E-U+001F, lone surrogates, U+FFFE, U+FFFF) replaced by its visible escape
    (``\\x01``, ``\\ud800``), for attribute values and element text alike. ``&``, ``<``
    and quotes are left to the XML serializer."""
    text = text if isinstance(text, str) else str(text)
    return _XML_FORBIDDEN.sub(_visible_match, text) if _XML_FORBIDDEN.search(text) else text


_MARKDOWN = {c: "\\" + c for c in "\\|[]()!*_`~"}
_MARKDOWN.update({"<": "&lt;", ">": "&gt;", "&": "&amp;", "\r\n": " ", "\r": " ", "\n": " ", "\t": " "})
_MARKDOWN_SPECIAL = re.compile(r"\r\n|[\\|\[\]()!*_`~<>&\r\n\t" + _class(*_CONTROL_RANGES) + "]")


def _markdown_match(m: re.Match) -> str:
    s = m.group()
    return _MARKDOWN.get(s) or visible(s)


def markdown_cell(text) -> str:
    """``text`` as the content of one cell of a GitHub-flavoured Markdown table, shown as
    written and never as markup: ``|`` and backslash are backslash-escaped (a cell ends at
    no pipe of its own), ``<``, ``>`` and ``&`` become entities (no HTML tag, no
    ``<img onerror>``), the characters that make links, images, emphasis, strikethrough
    and code (``[ ] ( ) ! * _ ` ~``) and a leading ``#`` are backslash-escaped, line
    breaks and tabs become a space, and control characters are made visible as in
    :func:`terminal`."""
    text = text if isinstance(text, str) else str(text)
    if _MARKDOWN_SPECIAL.search(text):
        text = _MARKDOWN_SPECIAL.sub(_markdown_match, text)
    return "\\" + text if text.startswith("#") else text
