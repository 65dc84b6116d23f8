"""The side-by-side chapter's Markdown: the table, one computed sentence per column, the tally.

The text helpers (:func:`cell_text`, :func:`column_sentence`, :func:`tally_sentence`) take small
dicts, so the tests check each sentence with hand-set columns.
"""

from __future__ import annotations

import math
from typing import Any

from markdown.extensions.toc import slugify

from actlab.experiments.base import Results, get_experiment
from actlab.report.format import ci, num, pct, pct_ci
from actlab.stats import as_float

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
    """A share with its interval; a share pooled over units also says its count."""
    text = pct_ci(cell)
    if cell.get("pooled") and " [" in text:
        mean = as_float(cell.get("mean"))
        head, tail = text.split(" [", 1)
        return f"{head} ({round(mean * cell['pooled'])} of {cell['pooled']}) [{tail}"
    return text


def _rate(cell: dict[str, Any]) -> str:
    """A largest rate (stable and learning): ``≥ r`` when some seed learned at the top of the
    grid, ``none`` when no seed learned at any rate, ``≤ r`` when some did not, the mean alone
    when all seeds agree."""
    mean, lo, hi = as_float(cell.get("mean")), as_float(cell.get("lo")), as_float(cell.get("hi"))
    if cell.get("censored") == "below":
        if math.isnan(mean):
            return f"none (< {num(hi, 2)})"
        return f"≤ {num(mean, 2)} ({cell.get('none', 0)} of {cell.get('n')} learned at no rate)"
    if cell.get("censored") == "above":
        return f"≥ {num(mean, 2)}"
    if math.isnan(lo) or abs(hi - lo) <= 1e-12 * max(abs(hi), 1.0):
        return num(mean, 2)
    return f"{num(mean, 2)} [{num(lo, 2)}, {num(hi, 2)}]"


def _stable_note(cell: dict[str, Any]) -> str:
    """The stability chapter's own cell where it differs from the learning rate: its largest
    stable rate and how many seeds fit like a constant there."""
    st = cell.get("stable") or {}
    if not st.get("flat"):
        return ""
    top = "≥ " if st.get("at_top") else ""
    return f" (stable to {top}{num(as_float(st.get('mean')), 2)}, {st['flat']} of {st['n']} flat)"


def _error(cell: dict[str, Any]) -> str:
    """A relative error from its log10 cell: the geometric mean over seeds and its interval."""
    mean, lo, hi = as_float(cell.get("mean")), as_float(cell.get("lo")), as_float(cell.get("hi"))
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
        text = _rate(cell) + _stable_note(cell)
    else:
        text = _error(cell)
    if cell.get("unranked"):
        return f"{text} (not ranked)"
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
        text = f"log10 backward-signal ratio, layer 1 / layer {setting['depth']}, at init"
    elif kind == "off":
        text = f"dead or saturated after {setting['steps']} steps"
    elif kind == "dormant":
        text = f"τ-dormant (τ = {setting['tau']:g}) after {setting['steps']} steps"
    elif kind == "rate":
        text = (
            f"largest {NAMES[setting['optimizer']]} rate stable and learning, depth "
            f"{setting['depth']}"
        )
    else:
        text = f"held-out error on {setting['label']}, {setting['depth']} × {setting['width']}"
    return f"[{text}]({anchor(key)})"


def _marked(cells: dict[str, dict], mark: str) -> list[str]:
    return [a for a, c in cells.items() if c.get("mark") == mark]


def _ranked(cells: dict[str, dict], reverse: bool) -> list[str]:
    valid = [a for a, c in cells.items() if not math.isnan(as_float(c.get("mean")))]
    return sorted(valid, key=lambda a: as_float(cells[a]["mean"]), reverse=reverse)


def _others_kept(s: dict[str, Any]) -> str:
    """The other initialisations of gradient-flow: where the ratio's interval holds 0."""
    kept = s.get("kept_at_other_inits") or {}
    parts = [
        f"at {INIT_TEXT.get(i, i)} it is kept for {_list(a) if a else 'none'}"
        for i, a in kept.items()
    ]
    if not parts:
        return ""
    return (
        " The initialisation matters more than the activation here: in the same chapter, "
        + "; ".join(parts)
        + "."
    )


def _unranked_text(cells: dict[str, dict]) -> str:
    slow = [a for a, c in cells.items() if c.get("unranked")]
    if not slow:
        return ""
    losses = ", ".join(
        f"`{a}` {num(as_float(c.get('loss_start')))} → {num(as_float(c.get('loss_end')))}"
        for a, c in ((a, cells[a]) for a in slow)
    )
    return (
        f" Not ranked: {_list(slow)}, whose training loss fell by less than half ({losses}); "
        "a network that barely trained says little about what training does to its units."
    )


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
        gap = max(abs(as_float(c["mean"]) - as_float(c["pred"])) for c in cells.values())
        lead = "Closest to a ratio of 1"
        if not counts["kept"]:
            lead = "None keeps it; the fewest decades lost"
        return (
            f"**Gradient flow.** At {INIT_TEXT.get(s['init'], s['init'])}, through {s['depth']} "
            f"layers of width {s['width']} and over {s['seeds']} seeds, the backward signal "
            f"{'; it '.join(parts)}. {lead}: `{best[0]}` "
            f"({ci(cells[best[0]])} decades){near_text}. The mean-field prediction is within "
            f"{num(gap, 2)} decades of every measured mean.{_others_kept(s)}"
        )
    if kind == "off":
        items = [f"`{a}` {c['kind']} {_pct_ci(c)}" for a, c in cells.items()]
        return (
            f"**Units off.** After {s['steps']} steps of the {s['task']} task (depth "
            f"{s['depth']}, width {s['width']}, {s['seeds']} seeds), the fraction of hidden "
            "units off in the way each activation can be ([dead](#term-dead) for one that can "
            f"die, [saturated](#term-saturated) for a bounded one): {'; '.join(items)}. "
            "Activations that can neither die nor saturate have no cell here; the next column "
            f"compares all of them with one definition.{_unranked_text(cells)}"
        )
    if kind == "dormant":
        ranked = {a: c for a, c in cells.items() if not c.get("unranked")}
        if not best or not ranked:
            return (
                "**Dormant units.** No activation could be ranked by its "
                f"[τ-dormant](#term-dormant) fraction.{_unranked_text(cells)}"
            )
        worst = _ranked(ranked, reverse=True)[0]
        return (
            f"**Dormant units.** The fewest [τ-dormant](#term-dormant) units (τ = "
            f"{s['tau']:g}) at the end: {_list(best)} ({_pct_ci(cells[best[0]])}){near_text}; "
            f"the most: `{worst}` ({_pct_ci(cells[worst])}).{_unranked_text(cells)}"
        )
    if kind == "rate":
        order = _ranked(cells, reverse=True)
        censored = [a for a in order if cells[a].get("censored") == "above"]
        tail = (
            f" For {_list(censored)} some seed learned at the largest rate tried, so "
            "the value is a lower bound."
            if censored
            else ""
        )
        none = [
            f"`{a}` ({c['none']} of {c['n']} seeds)"
            for a, c in cells.items()
            if c.get("censored") == "below"
        ]
        if none:
            tail += (
                f" Learned at no rate tried (every rate ended flat or unstable): {', '.join(none)}."
            )
        flat = [
            f"`{a}` ({c['stable']['flat']} of {c['stable']['n']})"
            for a, c in cells.items()
            if (c.get("stable") or {}).get("flat")
        ]
        if flat:
            tail += (
                " The chapter's largest *stable* rate is higher where seeds were stable there "
                "without learning (*flat*: ending at "
                f"{pct(s.get('flat_fit', 0.9))} or more of the targets' variance, no better "
                f"than a constant), in how many seeds: {', '.join(flat)}. A flat network is "
                "hard to destabilise, so that rate is not ranked."
            )
        if not best:
            return (
                f"**Stability ({NAMES[s['optimizer']]}).** No activation learned at any rate at "
                f"depth {s['depth']}.{tail}"
            )
        low = [a for a in order if a not in best]
        some = " of those that learned at some rate" if none else ""
        low_text = f"; lowest{some} for `{low[-1]}` ({_rate(cells[low[-1]])})" if low else ""
        return (
            f"**Stability ({NAMES[s['optimizer']]}).** Largest rate at which the network was "
            f"stable *and* learned, at depth {s['depth']} (width {s['width']}, {s['steps']} "
            f"steps, {s['seeds']} seeds, {INIT_TEXT.get(s.get('init'), s.get('init'))}, rates "
            f"a factor {num(s['rates'][1] / s['rates'][0], 2)} apart, "
            f"[geometric mean](#term-geometric-mean) over seeds): highest for {_list(best)} "
            f"({_rate(cells[best[0]])}){near_text}{low_text}.{tail}"
        )
    floor = math.log10(s["affine_floor"])
    flat = [
        a
        for a, c in cells.items()
        if as_float(c.get("hi")) >= floor or math.isnan(as_float(c["hi"]))
    ]
    flat_text = (
        f" Not shown better than the best straight line ({num(s['affine_floor'], 2)}), its "
        f"interval reaching that error: {_list(flat)}."
        if flat
        else f" Every activation beats the best straight line ({num(s['affine_floor'], 2)})."
    )
    rule = (
        " (the chapter's [paired test](#term-paired) over seeds against the lowest error)"
        if s.get("rule") == "paired"
        else ""
    )
    if s.get("tuned_all"):
        where = "the largest shape, where every activation's rate was tuned"
    else:
        big = s.get("largest") or [s["depth"], s["width"]]
        worse = s.get("worse_at_largest") or []
        where = (
            "the shape where every activation's rate was tuned on [held-out](#term-held-out) data"
        )
        if worse:
            flat_text += (
                f" Why not the largest shape, depth {big[0]} × width {big[1]}: the rates tuned "
                f"here are not tuned there, and the chapter finds {_list(worse)} fitting worse "
                "there than here although the larger network can represent what the smaller "
                "one computes: the optimiser did not find a fit that exists (a rate tuned "
                "elsewhere, the step budget, the deeper initialisation; the chapter does not "
                "separate them)."
            )
    return (
        f"**Capacity.** Held-out error on {s['label']} relative to its variance, at depth "
        f"{s['depth']} × width {s['width']} ({s['steps']} steps, {s['seeds']} seeds; {where}): "
        f"lowest for {_list(best)} ({_error(cells[best[0]])}){near_text}{rule}.{flat_text}"
    )


def tally_sentence(tally: dict[str, dict[str, int]], columns: dict[str, Any]) -> str:
    """Which activation is best where, and whether one is at the top everywhere."""
    winners: dict[str, list[str]] = {}
    for key, column in columns.items():
        for a in _marked(column["cells"], "best"):
            winners.setdefault(a, []).append(key)
    n_cols = sum(1 for c in columns.values() if _marked(c["cells"], "best"))
    if n_cols == 0:
        return "No column could be ranked."
    everywhere = [a for a, t in tally.items() if t["of"] and t["top"] == t["of"]]
    ranked = sorted(tally, key=lambda a: (-tally[a]["top"], list(tally).index(a)))
    counts = ", ".join(f"`{a}` {tally[a]['top']} of {tally[a]['of']}" for a in ranked)
    one = len(everywhere) == 1
    lead = (
        f"{_list(everywhere)} {'is' if one else 'are'} at the top (best or within noise) of "
        f"every ranked column {'it is' if one else 'they are'} ranked in."
        if everywhere
        else "No activation is at the top (best or within noise) of every ranked column."
    )
    unranked = sorted(
        {a for c in columns.values() for a, cell in c["cells"].items() if cell.get("unranked")}
    )
    skip = (
        f" Cells left unranked ({_list(unranked)}: barely trained) count in neither number."
        if unranked
        else ""
    )
    return (
        f"{lead} The best of the {n_cols} ranked columns go to {len(winners)} "
        f"activation{'s' if len(winners) != 1 else ''} "
        f"({'; '.join(f'`{a}`: {len(k)}' for a, k in winners.items())}). At the top, per "
        f"activation (out of the columns it is ranked in): {counts}.{skip} The count is a "
        "summary of the marks, not a score: its columns are different networks and "
        "questions, an activation missing from a chapter has fewer of them, and *within "
        "noise* is a lenient rule."
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
        "How to read a mark: in each ranked column, **best** is the best mean over seeds "
        "(every activation with that mean, on a tie), *within noise* means that its 95% "
        "interval ([t-interval](#term-t-interval) over seeds) overlaps the best's, and no "
        "mark means it lies clear of the best; the capacity column takes its marks from its "
        "chapter's [paired test](#term-paired) instead"
        + ("" if columns["capacity"]["setting"].get("rule") == "paired" else " where it has one")
        + '. "At the top" counts the ranked columns where the activation is best or within '
        "noise. A rate cell without an interval means every seed's value fell on the same "
        "grid point: the rates are a grid, so each seed's edge lies between its value and the "
        "next grid point, and the marks compare the intervals widened to that next point. A "
        'fraction that was exactly 0 in every seed, "0% (0 of n)", gets the [Wilson '
        "interval](#term-wilson-interval) of its pooled count of n units instead of a "
        't-interval of zero width. "(stable to r, k of n flat)": the stability chapter\'s '
        "largest stable rate r, where k seeds were stable but fit no better than a constant. "
        '"(not ranked)": the network barely trained (see the column\'s sentence). A dash: '
        "the chapter did not run that activation, or (units off) the activation can neither "
        "die nor saturate.",
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
        "vanished barely moves, so it is hard to destabilise. That is why the rate columns "
        "rank the largest rate at which the network also learned, and show the chapter's "
        "largest stable rate beside it only where seeds were stable without learning there.",
        "- Intervals are over the seeds of each run (its initialisations, and for capacity "
        "its data draws), not over tasks: another task, width or training length can reorder "
        "a column. The chapters say which of their findings hold across their grids.",
        "",
        exercises_markdown(EXERCISES),
    ]
    return "\n".join(out)


def _init(s: dict[str, Any]) -> str:
    init = s.get("init")
    return f", {INIT_TEXT.get(init, init)}" if init else ""


def _setting_text(key: str, s: dict[str, Any]) -> str:
    kind = key.split("/")[0]
    if kind == "gradient":
        return (
            f"gradient flow at depth {s['depth']}, width {s['width']}, at initialisation{_init(s)}"
        )
    if kind == "off":
        return f"units at depth {s['depth']}, width {s['width']} after {s['steps']} steps{_init(s)}"
    if kind == "dormant":
        return "dormant units in that same network"
    if kind == "rate":
        return (
            f"{NAMES[s['optimizer']]} rates at depth {s['depth']}, width {s['width']}, "
            f"{s['steps']} steps{_init(s)}"
        )
    return f"capacity at depth {s['depth']}, width {s['width']} after {s['steps']} steps{_init(s)}"
