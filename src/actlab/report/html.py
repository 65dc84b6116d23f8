"""The HTML page of the tutorial: one self-contained file, readable offline.

Figures are embedded as ``data:`` URIs, the style sheet is inline, fonts are the reader's own,
and there is no script. :func:`find_external_references` lists any ``src``/``href`` that would
reach outside the file; :func:`unlink_external` removes such links (keeping their text).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["CSS", "page", "embed_images", "unlink_external", "find_external_references"]

CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --rule: #d9dce1; --soft: #f6f7f9; --accent: #1f5fa8; }
* { box-sizing: border-box; }
html { font-size: 17px; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.6;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, header, nav.toc { max-width: 56rem; margin: 0 auto; padding: 0 1.25rem; }
header { padding-top: 2rem; }
header h1 { margin-bottom: 0.3rem; }
header p.lead { color: var(--muted); margin-top: 0; }
nav.toc { margin-top: 1rem; margin-bottom: 2rem; }
nav.toc > div { background: var(--soft); border: 1px solid var(--rule); border-radius: 6px;
  padding: 0.8rem 1.2rem; }
nav.toc h2 { font-size: 1rem; margin: 0 0 0.4rem 0; border: 0; padding: 0; }
nav.toc ul { margin: 0; padding-left: 1.2rem; }
nav.toc li { margin: 0.1rem 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h1, h2, h3, h4 { line-height: 1.25; }
h2 { margin-top: 3rem; padding-bottom: 0.3rem; border-bottom: 2px solid var(--rule); }
h3 { margin-top: 2rem; }
p.provenance { color: var(--muted); font-size: 0.85rem; margin-top: -0.4rem; }
/* Figures may be wider than the text: centred on the page, up to the window's width. */
img { display: block; max-width: min(96vw, 78rem); height: auto; margin: 1.2rem 0;
  position: relative; left: 50%; transform: translateX(-50%); }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--rule); padding: 0.25rem 0.6rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); }
tbody tr:nth-child(even) { background: #fbfbfc; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 0.9em; background: var(--soft); padding: 0.05rem 0.3rem; border-radius: 3px; }
pre { background: var(--soft); padding: 0.8rem 1rem; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
.math-display { overflow-x: auto; overflow-y: hidden; padding: 0.15rem 0; margin: 0.4rem 0 0.8rem; }
math { font-size: 1.05em; }
code.math-error { color: #a12; }
footer { max-width: 56rem; margin: 3rem auto 2rem; padding: 0 1.25rem; color: var(--muted);
  font-size: 0.85rem; }
@media print { nav.toc { display: none; } h2 { break-before: page; } }
"""

_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')
_EXTERNAL_LINK = re.compile(
    r'<a\b[^>]*\bhref="(?:[a-zA-Z][a-zA-Z0-9+.\-]*:|//)[^"]*"[^>]*>(.*?)</a>', re.DOTALL
)
_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_REFERENCE = re.compile(
    r"""\s(?:src|href|srcset|action|formaction|poster|data|xlink:href)\s*=\s*"""
    r"""["']?\s*([^"'\s>]+)""",
    re.IGNORECASE,
)


def page(title: str, lead: str, toc: str, body: str, footer: str = "") -> str:
    """The complete HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{html.escape(title)}</h1><p class="lead">{lead}</p></header>\n'
        f'<nav class="toc" aria-label="Contents"><div><h2>Contents</h2>\n{toc}\n</div></nav>\n'
        f"<main>\n{body}\n</main>\n<footer>{footer}</footer>\n</body>\n</html>\n"
    )


def embed_images(body: str, resolve: Callable[[str], Path]) -> str:
    """Replace each ``<img src="PATH">`` by a ``data:`` URI of the file ``resolve(PATH)``.

    Raises:
        ValueError: for an image that is not a local file (an external URL).
        FileNotFoundError: for a local image that does not exist.
    """

    def embed(match: re.Match) -> str:
        src = html.unescape(match[2])
        if src.startswith("data:"):
            return match[0]
        if re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*:|//)", src):
            raise ValueError(
                f"image {src!r} is not a local file; the tutorial embeds every "
                "figure and fetches nothing"
            )
        path = resolve(src)
        if not path.is_file():
            raise FileNotFoundError(f"figure {src!r} not found (looked for {path})")
        mime = {
            ".png": "image/png",
            ".svg": "image/svg+xml",
            ".jpg": "image/jpeg",
            ".jpeg": "image/jpeg",
            ".gif": "image/gif",
        }.get(path.suffix.lower(), "image/png")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"{match[1]}data:{mime};base64,{data}{match[3]}"

    return _IMG_SRC.sub(embed, body)


def unlink_external(body: str) -> str:
    """Drop every link that leaves the page (any scheme or ``//host``), keeping its text."""
    return _EXTERNAL_LINK.sub(lambda m: m[1], body)


def find_external_references(document: str) -> list[str]:
    """Every ``src``/``href`` (and similar) value that is neither a ``data:`` URI nor a link to
    an anchor of the page: what a browser would try to fetch or follow elsewhere."""
    found = []
    for tag in _TAG.findall(document):
        for value in _REFERENCE.findall(tag):
            if not (value.startswith("#") or value.startswith("data:")):
                found.append(value)
    return found
