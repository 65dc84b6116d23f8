"""Markdown with LaTeX math to HTML with MathML, offline.

``$...$`` (inline) and ``$$...$$`` (display) are taken out of the Markdown before it is
converted (so that ``\\``, ``_`` and ``*`` inside a formula are not read as Markdown), each is
converted to MathML with ``latex2mathml``, and put back into the HTML. Code spans and fenced code
blocks are left alone; ``\\$`` is a literal dollar, and a ``$`` followed by a space or a digit
after the closing one (``$5 and $6``) is not math. A formula that cannot be converted is shown
as its LaTeX source in a ``<code class="math-error">`` (and listed in ``errors``), never dropped.

The MathML carries no namespace URL (the HTML parser puts ``<math>`` in the MathML namespace), so
the page holds no URL of any kind.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import markdown as _markdown
from latex2mathml.converter import convert as _latex_to_mathml
from markdown.extensions.toc import slugify as _slugify

__all__ = ["RenderedMarkdown", "render_markdown", "latex_to_mathml", "MARKDOWN_EXTENSIONS"]

MARKDOWN_EXTENSIONS = ("tables", "toc", "fenced_code", "sane_lists", "md_in_html")

_TOKEN = "MATHTOKEN{}END"
_TOKEN_RE = re.compile(r"MATHTOKEN(\d+)END")
# Order matters: code first (left untouched), then display math, then inline math.
_SCAN_RE = re.compile(
    r"(?P<fence>^(?P<f>`{3,}|~{3,})[^\n]*\n.*?^(?P=f)[ \t]*$)"
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<escaped>\\\$)"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|\$(?P<inline>(?=\S)(?:[^$\n]|\n(?!\s*\n))+?(?<=\S))\$(?!\d)",
    re.DOTALL | re.MULTILINE,
)
_OPERATOR_WITH_DIGIT = re.compile(r"\\operatorname\{([^{}]*\d[^{}]*)\}")
_DOUBLE_STRUCK = re.compile(r'<(mi|mn) mathvariant="double-struck">([A-Za-z0-9])</\1>')
# Letters of the double-struck alphabet that Unicode keeps in the Letterlike Symbols block.
_DS_EXCEPTIONS = {
    "C": 0x2102,
    "H": 0x210D,
    "N": 0x2115,
    "P": 0x2119,
    "Q": 0x211A,
    "R": 0x211D,
    "Z": 0x2124,
}


def _double_struck(char: str) -> str:
    if char in _DS_EXCEPTIONS:
        return chr(_DS_EXCEPTIONS[char])
    if char.isdigit():
        return chr(0x1D7D8 + int(char))
    if char.isupper():
        return chr(0x1D538 + ord(char) - ord("A"))
    return chr(0x1D552 + ord(char) - ord("a"))


def latex_to_mathml(latex: str, display: bool = False) -> str:
    """One formula as a ``<math>`` element (no namespace URL; ``alttext`` holds the LaTeX).

    Raises:
        ValueError: if ``latex2mathml`` cannot parse the formula.
    """
    source = _OPERATOR_WITH_DIGIT.sub(r"\\text{\1}", latex.strip())
    try:
        mathml = _latex_to_mathml(source, display="block" if display else "inline")
    except Exception as err:  # latex2mathml raises its own exception types
        raise ValueError(
            f"cannot convert LaTeX {latex!r} to MathML ({type(err).__name__}: {err})"
        ) from None
    mathml = re.sub(r'\s+xmlns="[^"]*"', "", mathml, count=1)
    mathml = mathml.replace("<math ", f'<math alttext="{html.escape(latex.strip())}" ', 1)
    # Browsers implement MathML Core, which ignores most mathvariant values: use the Unicode
    # mathematical alphanumerics instead (the indicator 1 of \mathbb{1}, say).
    mathml = _DOUBLE_STRUCK.sub(
        lambda m: f"<{m[1]}>&#x{ord(_double_struck(m[2])):05X};</{m[1]}>", mathml
    )
    # latex2mathml writes \sim as an identifier "~"; it is the relation "is distributed as".
    return mathml.replace("<mi>&#x0007E;</mi>", "<mo>&#x0223C;</mo>")


def _plain_latex(latex: str) -> str:
    """A formula's letters for an anchor: commands lose their backslash, braces go."""
    return re.sub(r"[{}\\]", "", re.sub(r"\\([A-Za-z]+)", r" \1 ", latex))


@dataclass
class RenderedMarkdown:
    """The HTML body, the table of contents (nested ``<ul>``) and formulas that failed."""

    html: str
    toc: str
    errors: list[str] = field(default_factory=list)


def render_markdown(text: str, toc_depth: str = "2-3") -> RenderedMarkdown:
    """Markdown (with ``tables``, ``toc``, fenced code and math) to an HTML fragment."""
    formulas: list[tuple[str, bool]] = []

    def protect(match: re.Match) -> str:
        if match["fence"] is not None or match["code"] is not None:
            return match[0]
        if match["escaped"] is not None:
            return "&#36;"  # a literal dollar sign
        display = match["display"] is not None
        formulas.append((match["display"] if display else match["inline"], display))
        token = _TOKEN.format(len(formulas) - 1)
        # A display formula gets a paragraph of its own, so that it can become a block.
        return f"\n\n{token}\n\n" if display else token

    def slugify(value: str, separator: str) -> str:
        # A heading's anchor spells its formulas out (``$x^2$`` -> ``x2``): readable, and stable
        # whatever else the page holds (not the formula's position among all formulas).
        plain = _TOKEN_RE.sub(lambda m: _plain_latex(formulas[int(m[1])][0]), value)
        return _slugify(plain, separator)

    protected = _SCAN_RE.sub(protect, text)
    md = _markdown.Markdown(
        extensions=list(MARKDOWN_EXTENSIONS),
        extension_configs={"toc": {"toc_depth": toc_depth, "slugify": slugify}},
    )
    body = md.convert(protected)
    toc = md.toc  # type: ignore[attr-defined]

    errors: list[str] = []
    rendered: list[str] = []
    for latex, display in formulas:
        try:
            rendered.append(latex_to_mathml(latex, display))
        except ValueError as err:
            errors.append(str(err))
            rendered.append(f'<code class="math-error">{html.escape(latex)}</code>')

    def restore(match: re.Match) -> str:
        return rendered[int(match[1])]

    body = re.sub(
        r"<p>(MATHTOKEN(\d+)END)</p>",
        lambda m: f'<div class="math-display">{rendered[int(m[2])]}</div>',
        body,
    )
    body = _TOKEN_RE.sub(restore, body)
    toc = _TOKEN_RE.sub(lambda m: html.escape(formulas[int(m[1])][0]), toc)
    return RenderedMarkdown(html=body, toc=toc, errors=errors)
