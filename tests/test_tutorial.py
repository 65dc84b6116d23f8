"""The tutorial: assembled from run folders into one self-contained, offline HTML file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from actlab.experiments import get_experiment
from actlab.report.html import find_external_references
from actlab.report.markdown import latex_to_mathml, render_markdown
from actlab.report.tutorial import build_tutorial
from actlab.store import RunStore

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", re.IGNORECASE)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A smoke gallery run written the way the CLI writes one."""
    spec = get_experiment("gallery")
    cfg = spec.preset("smoke")
    store = RunStore(tmp_path_factory.mktemp("runs") / "gallery-smoke")
    store.begin(spec.name, "smoke", cfg)
    store.save_results(spec.run(cfg, store.chunk_runner()))
    results = store.load_results()
    for name, fig in spec.figures(results).items():
        store.save_figure(name, fig)
        plt.close(fig)
    store.save_report(spec.report(results))
    store.finish()
    return store.path


@pytest.fixture(scope="module")
def tutorial(run_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tutorial")
    index = build_tutorial([(get_experiment("gallery"), run_folder)], out)
    assert index == out / "index.html"
    return index


def test_html_has_section_toc_math_and_images(tutorial, run_folder):
    text = tutorial.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<h2 id="activation-gallery">Activation gallery</h2>' in text
    assert '<nav class="toc"' in text and 'href="#activation-gallery"' in text
    assert 'href="#the-classic-four"' in text  # subsections in the contents too
    assert text.count("<math") > 20 and 'class="math-display"' in text
    assert "math-error" not in text.split("<main>")[1]  # every formula converted
    assert "$$" not in text  # no LaTeX left unconverted
    pngs = re.findall(r'<img [^>]*src="data:image/png;base64,', text)
    assert len(pngs) == len(list((run_folder / "figures").glob("*.png"))) == 4
    assert run_folder.name in text  # provenance of the section


def test_no_external_url_of_any_kind(tutorial):
    text = tutorial.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert not EXTERNAL.search(text)
    assert find_external_references(text) == []
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert "url(" not in text


def test_markdown_and_figures_beside_it(tutorial, run_folder):
    md = (tutorial.parent / "index.md").read_text(encoding="utf-8")
    assert "## Contents" in md and "(#activation-gallery)" in md
    assert "\n## Activation gallery\n" in md
    assert not re.search(r"^# Activation gallery$", md, re.MULTILINE)  # the report's own title
    for png in (run_folder / "figures").glob("*.png"):
        copy = tutorial.parent / "figures" / "gallery" / png.name
        assert copy.read_bytes() == png.read_bytes()
        assert f"(figures/gallery/{png.name})" in md
    # Report headings are nested under the section.
    assert "\n### Formulas\n" in md


def test_numbers_are_the_reports(tutorial, run_folder):
    report = (run_folder / "report.md").read_text(encoding="utf-8")
    sentence = next(line for line in report.splitlines() if line.startswith("For $z"))
    number = re.search(r"tanh's on ([\d.]+%)", sentence)[1]
    assert f"tanh's on {number}" in tutorial.read_text(encoding="utf-8")


def test_missing_report_is_a_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="report.md"):
        build_tutorial([(get_experiment("gallery"), tmp_path / "run")], tmp_path / "out")


def test_missing_figure_is_a_clear_error(tmp_path, run_folder):
    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    (run / "figures" / "classic.png").unlink()
    with pytest.raises(FileNotFoundError, match="classic.png"):
        build_tutorial([(get_experiment("gallery"), run)], tmp_path / "out")


def test_external_links_and_images_are_refused(tmp_path, run_folder):
    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    report = run / "report.md"
    report.write_text(report.read_text() + "\nSee [the paper](https://example.org/p.pdf).\n")
    index = build_tutorial([(get_experiment("gallery"), run)], tmp_path / "out")
    text = index.read_text()
    assert "the paper" in text and "example.org" not in text
    report.write_text(report.read_text() + "\n![remote](https://example.org/x.png)\n")
    with pytest.raises(ValueError, match="not a local file"):
        build_tutorial([(get_experiment("gallery"), run)], tmp_path / "out2")


def test_math_conversion():
    out = render_markdown(
        "## T\n\nInline $a_1 * b_2$ and `$code$`, a price \\$5, and $5 and $6.\n\n"
        "$$\\begin{cases} x & x > 0 \\\\ 0 & x \\le 0 \\end{cases}$$\n\n"
        "| a | b |\n|---|---|\n| $|x|$ | 1 |\n"
    )
    assert out.errors == []
    assert out.html.count("<math") == 3
    assert "<code>$code$</code>" in out.html and "$5 and $6" in out.html
    assert "price &#36;5," in out.html  # an escaped dollar is a dollar
    assert '<div class="math-display"><math' in out.html and "<mtable>" in out.html
    assert "<td><math" in out.html  # |x| inside a table cell is math, not a column separator
    assert "xmlns" not in out.html and "http" not in out.html
    assert "&#x1D7D9;" in latex_to_mathml(r"\mathbb{1}[x > 0]")  # double-struck one
    assert "<mo>&#x0223C;</mo>" in latex_to_mathml(r"z \sim N")


def test_bad_formula_is_shown_not_dropped():
    out = render_markdown("A $\\frac{1}{$ B")
    assert '<code class="math-error">\\frac{1}{</code>' in out.html
    assert len(out.errors) == 1 and "frac" in out.errors[0]


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
    reason="Chromium not installed",
)
def test_renders_headless_in_chromium(tutorial, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    shot = tmp_path / "shot.png"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2400",
        tutorial.as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "Chromium wrote no screenshot"
    image = plt.imread(shot)
    assert image.shape[:2] == (2400, 1200)
    assert image[..., :3].std() > 0.05  # not a blank page


def test_a_report_title_gives_way_to_the_section_title():
    from actlab.report.tutorial import _demote

    text = "# A deep MLP\n\nIntro.\n\n## Results\n\n### Detail\n"
    out = _demote(text, "A 10-layer MLP on a noisy sine")
    assert "A deep MLP" not in out
    assert "### Results" in out and "#### Detail" in out
    # A level-2 first heading with another text is a subsection, not the report's title.
    assert "### Setup" in _demote("## Setup\n\ntext\n", "Gallery")


def test_anchors_of_headings_with_math_are_readable_and_stable():
    from actlab.report.markdown import render_markdown

    text = "## The $x^2/2 - 1$ target\n\nA.\n\n### With $\\varphi(z)$\n\nB.\n"
    first = render_markdown(text)
    assert 'id="the-x22-1-target"' in first.html and 'id="with-varphi-z"' in first.html
    assert "mathtoken" not in first.html.lower() and "mathtoken" not in first.toc.lower()
    # Formulas earlier on the page do not change a heading's anchor.
    later = render_markdown("Some $a$ and $b$ first.\n\n" + text)
    assert 'id="the-x22-1-target"' in later.html


def test_the_tutorial_ends_with_its_notation_and_terms_and_every_link_lands(tutorial):
    from actlab.report.notation import NOTATION, TERMS
    from actlab.report.tutorial import GLOSSARY_TITLE

    text = tutorial.read_text(encoding="utf-8")
    main = text.split("<main>")[1]
    headings = re.findall(r"<h2 id=\"[^\"]+\">(.*?)</h2>", main)
    assert headings[-1] == GLOSSARY_TITLE
    glossary = main.split(f">{GLOSSARY_TITLE}</h2>")[1]
    assert glossary.count("<tr>") == len(NOTATION) + 1  # one row per symbol, and the header
    assert all(f'<dt id="term-{key}">' in glossary for key in TERMS)
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    targets = set(re.findall(r'href="#([^"]+)"', text))
    assert targets and targets <= ids, sorted(targets - ids)
    md = (tutorial.parent / "index.md").read_text(encoding="utf-8")
    assert md.rstrip().endswith("</dl>") and "Built by actlab from 1 run(s)" in text
