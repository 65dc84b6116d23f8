"""Assemble the tutorial from run folders: ``index.md`` and one self-contained ``index.html``.

Each run folder holds a ``report.md`` (Markdown generated from that run's results, referring to
its figures as ``figures/NAME.png``) and those figures. The tutorial only assembles them, in the
order given -- one section per experiment, a table of contents, the figures (copied beside
``index.md``, embedded in ``index.html``) and the math rendered to MathML -- and never recomputes
a number.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify

from actlab.report.html import embed_images, find_external_references, page, unlink_external
from actlab.report.markdown import render_markdown
from actlab.report.notation import glossary_markdown
from actlab.store import atomic_write_bytes

__all__ = ["build_tutorial", "TITLE", "GLOSSARY_TITLE"]

TITLE = "actlab: how activation functions shape learning"
LEAD = (
    "How does the choice of activation function shape what a neural network can learn and how "
    "it trains? Each section below was produced by one run of an actlab experiment; every "
    "number in it comes from that run's results."
)

GLOSSARY_TITLE = "Notation and terms"
_HEADING = re.compile(r"^(#{1,6})(\s+.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_FIGURE_REF = re.compile(r"(\]\(\s*<?)figures/([\w.\-]+\.(?:png|svg|jpe?g|gif))(>?\s*\))")


@dataclass
class _Section:
    name: str
    title: str
    markdown: str
    provenance: str


def build_tutorial(runs: Sequence[tuple[Any, Path | str]], out_dir: Path | str) -> Path:
    """Write ``out_dir/index.md`` (+ ``out_dir/figures/EXPERIMENT/NAME.png``) and the
    self-contained ``out_dir/index.html``; returns the path of ``index.html``.

    Args:
        runs: ``(spec, run_folder)`` pairs in tutorial order; ``spec`` needs ``name`` and
            ``title`` (an :class:`~actlab.experiments.base.ExperimentSpec`).
        out_dir: The tutorial folder (created if needed).

    Raises:
        FileNotFoundError: if a run folder has no ``report.md`` or lacks a figure it cites.
        ValueError: if a report refers to an image that is not a local file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [_section(spec, Path(run), out_dir) for spec, run in runs]
    # The closing section: every chapter's symbols and linked terms (#term-KEY) are defined there.
    sections.append(_Section("glossary", GLOSSARY_TITLE, glossary_markdown(), ""))

    # index.md: GitHub-style anchors equal python-markdown's slugs for these plain titles.
    toc_md = "\n".join(
        f"{i}. [{s.title}](#{slugify(s.title, '-')})" for i, s in enumerate(sections, 1)
    )
    parts = [f"# {TITLE}", "", LEAD, "", "## Contents", "", toc_md or "(no sections)", ""]
    body_parts = []
    for s in sections:
        provenance = [f"*{s.provenance}*", ""] if s.provenance else []
        body_parts += [f"## {s.title}", "", *provenance, s.markdown.strip(), ""]
    atomic_write_bytes(out_dir / "index.md", "\n".join(parts + body_parts).encode())

    rendered = render_markdown("\n".join(body_parts), toc_depth="2-3")
    body = unlink_external(rendered.html)
    body = body.replace("<table>", '<div class="table-wrap"><table>')
    body = body.replace("</table>", "</table></div>")
    body = re.sub(r"<p><em>(Run: .*?)</em></p>", r'<p class="provenance">\1</p>', body)
    body = embed_images(body, lambda src: out_dir / src)
    footer = (
        f"Built by actlab from {len(sections) - 1} run(s). Self-contained: figures are "
        "embedded and math is MathML; nothing is fetched from a network."
    )
    if rendered.errors:
        footer += " Formulas shown as LaTeX could not be converted: " + html.escape(
            "; ".join(rendered.errors)
        )
    document = page(TITLE, html.escape(LEAD), rendered.toc, body, footer)
    external = find_external_references(document)
    if external:  # a bug in this module: unlink_external and embed_images should leave none
        raise ValueError(f"the tutorial would reference outside resources: {external[:5]}")
    index = out_dir / "index.html"
    atomic_write_bytes(index, document.encode("utf-8"))
    for path in (index, out_dir / "index.md"):
        path.chmod(0o644)  # atomic writes are private (0600); a tutorial is meant to be shared
    return index


def _section(spec: Any, run: Path, out_dir: Path) -> _Section:
    report = run / "report.md"
    if not report.is_file():
        raise FileNotFoundError(f"{run} has no report.md; rebuild it with 'actlab report {run}'")
    text = _demote(report.read_text(encoding="utf-8"), spec.title)
    figures = _copy_figures(run, out_dir / "figures" / spec.name)
    cited = set(_FIGURE_REF.findall(text))
    missing = sorted({name for _, name, _ in cited} - set(figures))
    if missing:
        raise FileNotFoundError(
            f"{run}/report.md cites figures missing from {run}/figures: {', '.join(missing)}"
        )
    text = _FIGURE_REF.sub(rf"\1figures/{spec.name}/\2\3", text)
    # Figures the report does not cite are shown after it, so that nothing is lost.
    uncited = [name for name in figures if name not in {n for _, n, _ in cited}]
    if uncited:
        text += "\n\n**More figures from this run**\n\n" + "\n\n".join(
            f"![{Path(name).stem}](figures/{spec.name}/{name})" for name in uncited
        )
    return _Section(spec.name, spec.title, text, _provenance(spec, run))


def _demote(text: str, title: str) -> str:
    """Drop the report's own title (a first heading that is level 1 or repeats the section's
    title: the section heading takes its place) and shift the other headings so that the
    highest becomes level 3 (the section itself is level 2). Code blocks are skipped."""
    lines = text.splitlines()
    headings = []  # (line index, level)
    fence = None
    for i, line in enumerate(lines):
        marker = _FENCE.match(line)
        if marker:
            if fence is None:
                fence = marker[1]
            elif marker[1].startswith(fence):  # same character, at least as long: closes it
                fence = None
            continue
        match = None if fence else _HEADING.match(line)
        if match:
            headings.append((i, len(match[1])))
    if headings:
        first, _ = headings[0]
        match = _HEADING.match(lines[first])
        own_title = len(match[1]) == 1 or match[2].strip().lower() == title.strip().lower()
        if own_title and all(not line.strip() for line in lines[:first]):
            lines[first] = ""
            headings = headings[1:]
    if headings:
        shift = 3 - min(level for _, level in headings)
        for i, level in headings:
            match = _HEADING.match(lines[i])
            lines[i] = "#" * min(6, max(3, level + shift)) + match[2]
    return "\n".join(lines).strip() + "\n"


def _copy_figures(run: Path, dest: Path) -> list[str]:
    """Copy ``run/figures/*`` to ``dest`` (removing figures left there by an older build)."""
    source = run / "figures"
    names = sorted(p.name for p in source.iterdir() if p.is_file()) if source.is_dir() else []
    names = [n for n in names if not n.startswith(".") and _FIGURE_REF.match(f"](figures/{n})")]
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for name in names:
        shutil.copyfile(source / name, dest / name)
    return names


def _provenance(spec: Any, run: Path) -> str:
    info = [f"Run: {run.name}", f"experiment {spec.name}"]
    config = _read_json(run / "config.json")
    if config.get("preset"):
        info.append(f"preset {config['preset']}")
    env = _read_json(run / "env.json")
    if env.get("actlab"):
        info.append(f"actlab {env['actlab']}")
    if env.get("git_revision"):
        info.append(f"git {str(env['git_revision'])[:10]}")
    return ", ".join(info) + "."


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
