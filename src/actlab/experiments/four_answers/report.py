"""The side-by-side chapter's Markdown: the table, one computed sentence per column, the tally.

The text helpers (:func:`cell_text`, :func:`column_sentence`, :func:`tally_sentence`) take small
dicts, so the tests check each sentence with hand-set columns.
"""

from __future__ import annotations

import math
from typing import Any

from markdown.extensions.toc import slugify

from actlab.experiments.base import Results, get_experiment
from actlab.report.format import ci, num, pct

__all__ = ["report", "cell_text", "column_sentence", "tally_sentence", "SECTIONS", "anchor"]

SECTIONS = {
    "gradient": ("gradient-flow", "Across depth"),
    "off": ("unit-states", "Unit states over training"),
    "dormant": ("unit-states", "Unit states over training"),
    "rate": ("stability", "The largest stable rate, and depth"),
    "capacity": ("capacity", "Which activation fits which function"),
}
"""Where each column's numbers are reported: (experiment, heading of its section)."""

NAMES = {"gd": "GD", "momentum": "heavy-ball momentum", "adam": "Adam"}
INIT_TEXT = {
    "torch": "[default initialisation](#term-default-init)",
    "xavier": "[Xavier initialisation](#term-xavier-init)",
    "he": "[He initialisation](#term-he-init)",
}


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def anchor(key: str) -> str:
    """The in-page anchor of the section a column's numbers come from (python-markdown's slug
    of its heading, as in the tutorial)."""
    return "#" + slugify(SECTIONS[key.split("/")[0]][1], "-")


def _chapter(key: str) -> str:
    name = SECTIONS[key.split("/")[0]][0]
    return f"[{get_experiment(name).title}](#{slugify(get_experiment(name).title, '-')})"


def _list(names: list[str]) -> str:
    names = [f"`{n}`" for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _pct_ci(cell: dict[str, Any]) -> str:
    mean, lo, hi = _f(cell.get("mean")), _f(cell.get("lo")), _f(cell.get("hi"))
    if math.isnan(lo) or (lo == hi == mean):
        return pct(mean)
    return f"{pct(mean)} [{pct(lo)}, {pct(hi)}]"


def _rate(cell: dict[str, Any]) -> str:
    """A largest stable rate: ``≥ r`` when some seed was stable at the top of the grid, ``< r``
    when some was stable at no rate, the mean alone when all seeds agree."""
    mean, lo, hi = _f(cell.get("mean")), _f(cell.get("lo")), _f(cell.get("hi"))
    if cell.get("censored") == "above":
        return f"≥ {num(mean, 2)}"
    if cell.get("censored") == "below":
        return f"< {num(hi, 2)}" if math.isfinite(hi) else f"≤ {num(mean, 2)}"
    if math.isnan(lo) or abs(hi - lo) <= 1e-12 * max(abs(hi), 1.0):
        return num(mean, 2)
    return f"{num(mean, 2)} [{num(lo, 2)}, {num(hi, 2)}]"


def _error(cell: dict[str, Any]) -> str:
    """A relative error from its log10 cell: the geometric mean over seeds and its interval."""
    mean, lo, hi = _f(cell.get("mean")), _f(cell.get("lo")), _f(cell.get("hi"))
    if math.isnan(lo):
        return num(10**mean, 2)
    return f"{num(10**mean, 2)} [{num(10**lo, 2)}, {num(10**hi, 2)}]"


def cell_text(key: str, cell: dict[str, Any] | None) -> str:
    """One table cell: the value with its 95% interval, then its mark."""
    if cell is None:
        return "—"
    kind = key.split("/")[0]
    if kind == "gradient":
        text = f"{ci(cell, 3)} ({cell['direction']})"
    elif kind == "off":
        text = f"{cell['kind']} {_pct_ci(cell)}"
    elif kind == "dormant":
        text = _pct_ci(cell)
    elif kind == "rate":
        text = _rate(cell)
        if cell.get("flat"):
            text += f" ({cell['flat']} of {cell['n']} flat)"
    else:
        text = _error(cell)
    mark = cell.get("mark", "")
    if mark == "best":
        return f"**{text}** best"
    if mark == "within noise":
        return f"{text} within noise"
    return text


def header(key: str, setting: dict[str, Any]) -> str:
    """A column's header, linked to the section its numbers come from."""
    kind = key.split("/")[0]
    if kind == "gradient":
        text = f"log10 gradient ratio, layer 1 / layer {setting['depth']}, at init"
    elif kind == "off":
        text = f"dead or saturated after {setting['steps']} steps"
    elif kind == "dormant":
        text = f"τ-dormant (τ = {setting['tau']:g}) after {setting['steps']} steps"
    elif kind == "rate":
        text = f"largest stable {NAMES[setting['optimizer']]} rate, depth {setting['depth']}"
    else:
        text = f"held-out error on {setting['label']}, {setting['depth']} × {setting['width']}"
    return f"[{text}]({anchor(key)})"


def _marked(cells: dict[str, dict], mark: str) -> list[str]:
    return [a for a, c in cells.items() if c.get("mark") == mark]


def _ranked(cells: dict[str, dict], reverse: bool) -> list[str]:
    valid = [a for a, c in cells.items() if not math.isnan(_f(c.get("mean")))]
    return sorted(valid, key=lambda a: _f(cells[a]["mean"]), reverse=reverse)


def column_sentence(key: str, column: dict[str, Any]) -> str:
    """What one column says, computed from its cells and marks."""
    s, cells = column["setting"], column["cells"]
    kind = key.split("/")[0]
    best, near = _marked(cells, "best"), _marked(cells, "within noise")
    near_text = f"; within noise of it: {_list(near)}" if near else "; no other within noise"
    if kind == "gradient":
        counts = {
            d: [a for a, c in cells.items() if c["direction"] == d]
            for d in ("vanishes", "explodes", "kept")
        }
        n = len(cells)
        parts = [
            f"{label} for {f'all {n} activations' if len(counts[d]) == n else _list(counts[d])}"
            for d, label in (
                ("vanishes", "vanishes"),
                ("explodes", "explodes"),
                ("kept", "is kept"),
            )
            if counts[d]
        ]
        gap = max(abs(_f(c["mean"]) - _f(c["pred"])) for c in cells.values())
        return (
            f"**Gradient flow.** At {INIT_TEXT.get(s['init'], s['init'])}, through {s['depth']} "
            f"layers of width {s['width']} and over {s['seeds']} seeds, the backward signal "
            f"{'; it '.join(parts)}. Closest to a ratio of 1: `{best[0]}` "
            f"({ci(cells[best[0]])} decades){near_text}. The mean-field prediction is within "
            f"{num(gap, 2)} decades of every measured mean."
        )
    if kind == "off":
        items = [f"`{a}` {c['kind']} {_pct_ci(c)}" for a, c in cells.items()]
        return (
            f"**Units off.** After {s['steps']} steps of the {s['task']} task (depth "
            f"{s['depth']}, width {s['width']}, {s['seeds']} seeds), the fraction of hidden "
            f"units off in the way each activation can be: {'; '.join(items)}. Activations "
            "that can neither die nor saturate have no cell here; the next column compares "
            "all of them with one definition."
        )
    if kind == "dormant":
        worst = _ranked(cells, reverse=True)[0]
        return (
            f"**Dormant units.** The fewest τ-dormant units (τ = {s['tau']:g}) at the end: "
            f"`{best[0]}` ({_pct_ci(cells[best[0]])}){near_text}; the most: `{worst}` "
            f"({_pct_ci(cells[worst])})."
        )
    if kind == "rate":
        order = _ranked(cells, reverse=True)
        censored = [a for a in order if cells[a].get("censored") == "above"]
        tail = (
            f" For {_list(censored)} some seed was stable at the largest rate tried, so "
            "the value is a lower bound."
            if censored
            else ""
        )
        flat = [f"`{a}` ({c['flat']} of {c['n']})" for a, c in cells.items() if c.get("flat")]
        if flat:
            tail += (
                " Stable without learning: at its largest stable rate the network fits the "
                f"data no better than a constant for {', '.join(flat)} seeds (*flat* in the "
                "table)."
            )
        return (
            f"**Stability ({NAMES[s['optimizer']]}).** Largest stable rate at depth "
            f"{s['depth']} (width {s['width']}, {s['steps']} steps, {s['seeds']} seeds, rates "
            f"a factor {num(s['rates'][1] / s['rates'][0], 2)} apart): highest for "
            f"`{best[0]}` ({_rate(cells[best[0]])}){near_text}; lowest for `{order[-1]}` "
            f"({_rate(cells[order[-1]])}).{tail}"
        )
    floor = math.log10(s["affine_floor"])
    flat = [a for a, c in cells.items() if _f(c.get("hi")) >= floor or math.isnan(_f(c["hi"]))]
    flat_text = (
        f" No better than the best straight line ({num(s['affine_floor'], 2)}), its interval "
        f"reaching that error: {_list(flat)}."
        if flat
        else f" Every activation beats the best straight line ({num(s['affine_floor'], 2)})."
    )
    return (
        f"**Capacity.** Held-out error on {s['label']} relative to its variance, at depth "
        f"{s['depth']} × width {s['width']} ({s['steps']} steps, {s['seeds']} seeds, each "
        f"activation at its own tuned rate): lowest for `{best[0]}` "
        f"({_error(cells[best[0]])}){near_text}.{flat_text}"
    )


def tally_sentence(tally: dict[str, dict[str, int]], columns: dict[str, Any]) -> str:
    """Which activation is best where, and whether one is at the top everywhere."""
    winners = {}
    for key, column in columns.items():
        for a in _marked(column["cells"], "best"):
            winners.setdefault(a, []).append(key)
    everywhere = [a for a, t in tally.items() if t["of"] and t["top"] == t["of"]]
    ranked = sorted(tally, key=lambda a: (-tally[a]["top"], list(tally).index(a)))
    counts = ", ".join(f"`{a}` {tally[a]['top']} of {tally[a]['of']}" for a in ranked)
    n_ranked = sum(1 for c in columns.values() for cell in c["cells"].values() if cell.get("mark"))
    one = len(everywhere) == 1
    lead = (
        f"{_list(everywhere)} {'is' if one else 'are'} at the top (best or within noise) of "
        f"every ranked column {'it appears' if one else 'they appear'} in."
        if everywhere
        else "No activation is at the top (best or within noise) of every ranked column."
    )
    if n_ranked == 0:
        return "No column could be ranked."
    flat_top = {
        a: k
        for a in tally
        if (
            k := sum(
                1
                for key, c in columns.items()
                if key.startswith("rate/")
                and c["cells"].get(a, {}).get("mark") in ("best", "within noise")
                and 2 * c["cells"][a].get("flat", 0) >= c["cells"][a].get("n", 0) > 0
            )
        )
    }
    flat_text = (
        " Of these, rate columns where most seeds were flat (stable without learning): "
        + ", ".join(f"`{a}` {k}" for a, k in flat_top.items())
        + "."
        if flat_top
        else ""
    )
    return (
        f"{lead} The best of the {sum(len(v) for v in winners.values())} ranked columns are "
        f"shared by {len(winners)} activation{'s' if len(winners) != 1 else ''} "
        f"({'; '.join(f'`{a}`: {len(k)}' for a, k in winners.items())}). At the top, per "
        f"activation: {counts}.{flat_text}"
    )


def report(results: Results) -> str:
    from actlab.experiments.four_answers.exercises import EXERCISES
    from actlab.report.exercises import exercises_markdown

    s = results.summary
    columns, acts = s["columns"], s["activations"]
    keys = list(columns)
    chapters = []
    for key in keys:
        link = _chapter(key)
        if link not in chapters:
            chapters.append(link)
    out = [
        "# The four answers, side by side",
        "",
        "Four chapters asked how the activation shapes training: does the gradient reach the "
        "first layers, do units switch off, how large a learning rate survives, and what can "
        f"the network represent. This table puts their answers in one place: {', '.join(chapters)}"
        f" (the `{s['inputs_preset']}` preset of each). Every cell is read from that chapter's "
        "run, and each header links to the section where it is measured and explained.",
        "",
        "![The four answers: each cell's mean over seeds with its 95% interval, coloured by "
        "its mark](figures/answers.png)",
        "",
        "| activation | "
        + " | ".join(header(k, columns[k]["setting"]) for k in keys)
        + " | at the top |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for act in acts:
        cells = [cell_text(k, columns[k]["cells"].get(act)) for k in keys]
        t = s["tally"][act]
        out.append(f"| `{act}` | " + " | ".join(cells) + f" | {t['top']} of {t['of']} |")
    out += [
        "",
        "How to read a mark: in each ranked column, **best** is the best mean over seeds, "
        "*within noise* means that its 95% interval overlaps the best's, and no mark means "
        'it lies clear of the best. "At the top" counts the ranked columns where the '
        "activation is best or within noise. An interval of zero width means every seed gave "
        "the same value (the learning rates are a grid, so the rate columns say which grid "
        "point, not the rate to more than a factor of the grid's step). A dash: the chapter "
        "did not run that activation, or (units off) the activation can neither die nor "
        "saturate.",
        "",
        "## What each column says",
        "",
    ]
    out += [column_sentence(k, columns[k]) + "\n" for k in keys]
    out += [
        "## Taken together",
        "",
        tally_sentence(s["tally"], columns),
        "",
        "## What this table does not say",
        "",
        "- The columns come from different networks: "
        + "; ".join(_setting_text(k, columns[k]["setting"]) for k in keys)
        + ". An activation's row is a set of answers to four questions at four settings, not "
        "one network measured four ways.",
        "- Overlapping intervals are a lenient test: two 95% intervals can overlap although a "
        "test of the difference (the chapters use paired tests on the same seeds) tells the "
        'two apart. *Within noise* here means "not shown different by this rule" (exercise '
        "1 measures how lenient).",
        "- A large stable rate is not good news by itself: a network whose gradient has "
        "vanished barely moves, so it is hard to destabilise. The *flat* count in a rate cell "
        "says how many seeds were stable only in that sense.",
        "- Intervals are over the seeds of each run (its initialisations, and for capacity "
        "its data draws), not over tasks: another task, width or training length can reorder "
        "a column. The chapters say which of their findings hold across their grids.",
        "",
        exercises_markdown(EXERCISES),
    ]
    return "\n".join(out)


def _setting_text(key: str, s: dict[str, Any]) -> str:
    kind = key.split("/")[0]
    if kind == "gradient":
        return f"gradient flow at depth {s['depth']}, width {s['width']}, at initialisation"
    if kind == "off":
        return f"units at depth {s['depth']}, width {s['width']} after {s['steps']} steps"
    if kind == "dormant":
        return "dormant units in that same network"
    if kind == "rate":
        return f"{NAMES[s['optimizer']]} rates at depth {s['depth']}, width {s['width']}"
    return f"capacity at depth {s['depth']}, width {s['width']} after {s['steps']} steps"
