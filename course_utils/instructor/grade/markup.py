"""Markdown to safe HTML, for the grading page and the feedback pages.

Everything a student wrote is untrusted: raw HTML in it is escaped, not rendered, and
links with a harmful scheme (``javascript:``) are dropped (mistune's defaults).
"""

from __future__ import annotations

import mistune

_MARKDOWN = mistune.create_markdown(escape=True, plugins=["table", "strikethrough", "math"])


def markdown_html(text: str) -> str:
    """Render Markdown to HTML with any raw HTML in it escaped.

    >>> markdown_html("**yes** <script>alert(1)</script>")
    '<p><strong>yes</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>\\n'
    """
    return str(_MARKDOWN(text))
