"""User text inside Markdown, shown exactly as typed.

gradio's Markdown renders Markdown *and* HTML: a run named `![x](/logout)` would make every
teammate's browser fetch /logout, `![](http://evil/pixel)` would leak their addresses, and
`[link](http://evil)` would put a link under their mouse. Every piece of text that a user,
a file or a model chose (run names, owners, model ids, dataset paths, file and column names,
error messages) goes through `markdown_literal` before it is placed in Markdown:

    f"### {markdown_literal(run_name)} — {state}"

The characters that can open markup are backslash-escaped (CommonMark shows an escaped
punctuation character as itself): no link, image, emphasis, code span, HTML tag or entity can
start (an underscore inside a word, as in FTUI_MAX_ROWS, cannot and is left alone). Autolinks
are broken where they would begin (`http\\://`, `www\\.`, `name\\@host`), `$`
becomes an HTML entity so gradio's `$$` LaTeX delimiters cannot match, line breaks become
spaces so the text cannot start a new block, and a leading `-`, `+`, `=` or `1.` is escaped in
case the text opens a line. Other punctuation (`.`, `:`, `-`, parentheses) is left alone, so
messages still read well to API clients that get the Markdown source.
"""

from __future__ import annotations

import re

_LINE_BREAKS = "\r\n\t\v\f\x85\u2028\u2029"
_LITERAL = str.maketrans(
    {
        **{char: "\\" + char for char in "\\`*[]<>&!#|~@{}"},
        "$": "&#36;",
        **{chr(code): " " for code in range(32)},
        **{char: " " for char in _LINE_BREAKS},
    }
)
_AUTOLINK = re.compile(r"(?i)(://|www\.)")  # fixed strings: no backtracking
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # my_file stays as is
_LINE_START = re.compile(r"[-+=]|\d{1,9}[.)]")


def markdown_literal(text: object) -> str:
    """`text` (made a string) escaped so that gradio's Markdown shows it as plain text."""
    escaped = str(text).translate(_LITERAL)
    escaped = _AUTOLINK.sub(lambda found: _escape_last(found.group()), escaped)
    escaped = _EDGE_UNDERSCORE.sub(r"\\_", escaped)
    start = _LINE_START.match(escaped)
    if start:
        escaped = _escape_last(start.group()) + escaped[start.end() :]
    return escaped


def _escape_last(token: str) -> str:
    """'://' -> '\\://', 'www.' -> 'www\\.', '-' -> '\\-', '12.' -> '12\\.'."""
    if token == "://":
        return "\\://"
    return token[:-1] + "\\" + token[-1]
