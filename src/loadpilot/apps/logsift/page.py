"""The HTML page: a form to paste log lines into and a table of templates, the biggest first.

Everything that comes from outside (log lines, templates, examples, error reasons) is escaped, so a line holding
`<script>` shows as text. The page loads nothing else: styles are inline and the Content-Security-Policy sent
with it forbids scripts and any other source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
MAX_ECHOED_CHARS = 65_536
"""Text posted with the form is shown again in the textarea only up to this size, so a page never balloons."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
textarea { width: 100%; font-family: ui-monospace, monospace; font-size: 0.85rem; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
td.count { text-align: right; white-space: nowrap; }
code { font-family: ui-monospace, monospace; font-size: 0.85rem; white-space: pre-wrap; word-break: break-all; }
.error { color: #a00; font-weight: bold; }
.examples code { color: #555; display: block; }
"""


@dataclass(frozen=True)
class Row:
    """One line of the table: a template, its count, and example lines."""

    template: str
    count: int
    examples: Sequence[str]


def render(
    heading: str,
    rows: Sequence[Row],
    *,
    summary: str = "",
    text: str = "",
    error: str = "",
) -> str:
    """The whole page: the form (holding `text` when short), an `error` if any, then `rows` under `heading`."""
    echoed = text if len(text) <= MAX_ECHOED_CHARS else ""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>logsift</title><style>{_STYLE}</style></head><body>",
        "<h1>logsift</h1>",
        "<p>Paste log lines, one per line: lines that differ only in their variable parts (numbers, addresses, "
        "paths, ids, dates) are grouped under one template.</p>",
        '<form method="post" action="/" accept-charset="utf-8">',
        f'<textarea name="text" rows="12" spellcheck="false">{escape(echoed)}</textarea>',
        '<p><button type="submit">Group lines</button></p></form>',
    ]
    if error:
        parts.append(f'<p class="error">{escape(error)}</p>')
    parts.append(f"<h2>{escape(heading)}</h2>")
    if summary:
        parts.append(f"<p>{escape(summary)}</p>")
    if rows:
        parts.append("<table><thead><tr><th>lines</th><th>template</th><th>examples</th></tr></thead><tbody>")
        parts.extend(_row(row) for row in rows)
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No templates yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _row(row: Row) -> str:
    examples = "".join(f"<code>{escape(line)}</code>" for line in row.examples)
    return (
        f'<tr><td class="count">{row.count:,}</td><td><code>{escape(row.template)}</code></td>'
        f'<td class="examples">{examples}</td></tr>'
    )
