"""One notation and one set of terms for the whole tutorial.

``NOTATION`` maps each symbol the tutorial's formulas use to its one meaning; ``TERMS`` defines
each technical term once (the tutorial ends with both, and chapters link a term to its entry,
``#term-KEY``). :func:`symbols_in` reads the symbols out of a report's ``$...$`` math, so a test
can check that every symbol a chapter writes is in the table -- a chapter that needs a new symbol
adds it here, with a meaning no other symbol has.

A symbol is a letter or Greek letter, with its accent (``\\hat v``), a named subscript
(``\\varepsilon_{\\mathrm{mach}}``, ``s_z``) or superscript (``V^*``) when the table lists that
form; other subscripts are indices and fall back to the letter (``x_i`` is ``x``, ``W_l`` is
``W``). Words in ``\\text{}``, ``\\mathrm{}`` and ``\\operatorname{}`` are names, not symbols.

Run ``python -m actlab.report.notation FILE.md`` to list a report's symbols missing from the table.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

__all__ = [
    "NOTATION",
    "SCOPES",
    "TERMS",
    "misplaced_symbols",
    "symbols_in",
    "unknown_symbols",
    "glossary_markdown",
]

# symbol (LaTeX, as the reports write it) -> its one meaning
NOTATION: dict[str, str] = {
    # a network
    "x": "an input (of the network, or the numbers a function is applied to, e.g. logits)",
    "y": "a target value",
    r"\hat y": "the network's prediction",
    "z": "a pre-activation, the input of the activation function",
    r"\varphi": "the activation function; $\\varphi'$ its derivative",
    "h": "a unit's or a layer's output, $h = \\varphi(z)$",
    "w": "one weight (a number)",
    "b": "a bias",
    "W": "a weight matrix ($W_l$: of layer $l$)",
    "v": "the single neuron's output weight",
    "c": "the single neuron's output bias",
    "l": "a layer's index",
    "D": "depth: the number of hidden layers",
    "L": "the loss",
    r"\theta": "all parameters of a network; $|\\theta|$ their number",
    r"\delta": "the backward signal $\\partial L/\\partial z_l$ of layer $l$",
    r"\rho": "the factor by which the spread of the signal changes per layer",
    r"\kappa": "a gradient ratio between two layers",
    "f": "the true function behind noisy data",
    "N": "the width: the number of units in each hidden layer",
    # mean-field theory of a random deep network
    r"\sigma_w": (
        "$\\sigma_w^2$: the weights' variance times fan-in, "
        "$\\mathrm{Var}(w) = \\sigma_w^2/\\text{fan-in}$"
    ),
    r"\sigma_b": "$\\sigma_b^2$: the biases' variance",
    "q": "the mean square of a layer's pre-activations, $q^l$; $q^*$ its fixed point over depth",
    r"\chi_1": "the factor by which the mean squared backward signal changes per layer",
    r"\xi_q": "the depth over which $q^l$ settles to $q^*$",
    r"\xi_c": "the depth over which two inputs' correlation settles",
    r"\tau": "the threshold of $\\tau$-dormancy, a fraction of the layer's mean $|h|$ (ReDo)",
    # functions and constants
    r"\sigma": "the sigmoid, $\\sigma(z) = 1/(1+e^{-z})$",
    r"\Phi": "the standard normal CDF; $\\Phi'$ its density",
    "e": "Euler's number, $e^z = \\exp(z)$",
    r"\pi": "the number 3.14159...",
    "u": "$\\operatorname{softplus}(z)$, a shorthand inside Mish's derivative",
    r"\psi": "the $\\tanh(\\cdot)$ term inside the tanh-approximate GELU's derivative",
    r"\alpha": "the negative-side coefficient of an activation (ELU, SELU, PReLU, leaky ReLU)",
    r"\lambda": "a positive scale factor (SELU's $\\lambda$; $\\mathrm{ReLU}(\\lambda z)$)",
    "s_z": "the standard deviation of the pre-activations fed to the gallery's functions",
    # data, noise and statistics
    r"\xi": "noise added to a target",
    "s": "the standard deviation of that noise (the noise floor is $s^2$)",
    "n": "the number of values in a sample (data points, or seeds in an interval)",
    "i": "an index over data points, units or entries",
    "j": "a second index",
    "d": "the intercept of a least-squares line",
    "E": "an expected value, $E[\\cdot]$",
    "P": "the probability of an event, $P(\\cdot)$",
    "R": "$R^2$, the share of the target's variance a fit explains",
    r"\mathcal{N}": "a normal distribution $\\mathcal{N}(\\text{mean}, \\text{variance})$",
    "U": "a uniform distribution $U(\\text{low}, \\text{high})$",
    "B": "the bound of a uniform initialisation $U(-B, B)$",
    "O": "order of magnitude, $O(\\cdot)$",
    "I": "the identity matrix",
    "H": "the hat matrix of a least-squares fit",
    "t_*": "a Student-t quantile, $t_{0.975,\\,n-1}$",
    # optimisation
    r"\eta": "the learning rate",
    "g": "a gradient",
    "t": "a step: of an optimiser, or of an environment (RL)",
    "m_t": "Adam's first-moment estimate ($m_0$ at the start)",
    "v_t": "Adam's second-moment estimate ($v_0$ at the start)",
    r"\hat m_t": "Adam's bias-corrected first moment",
    r"\hat v_t": "Adam's bias-corrected second moment",
    r"\beta_1": "Adam's first-moment decay",
    r"\beta_2": "Adam's second-moment decay",
    r"\epsilon": "Adam's $\\epsilon$, added to the denominator",
    r"\mu": "the heavy-ball momentum coefficient (torch.optim.SGD's `momentum`)",
    r"\lambda_{\max}": (
        "the sharpness: the largest eigenvalue of the training loss's Hessian $\\nabla^2 L$ "
        "(for Adam, of $P_t^{-1/2} \\nabla^2 L \\, P_t^{-1/2}$)"
    ),
    r"\lambda_i": "an eigenvalue of the Hessian $\\nabla^2 L$",
    "P_t": "Adam's diagonal preconditioner at step $t$, "
    "$(1-\\beta_1^t)(\\sqrt{v_t/(1-\\beta_2^t)}+\\epsilon)$",
    # numbers in a computer
    r"\varepsilon_{\mathrm{mach}}": "machine epsilon, the spacing of floats just above 1",
    "m": "the number subtracted from every logit before exponentiating (usually their maximum)",
    r"\Delta": "the gap between two logits",
    # reinforcement learning
    "k": "a state (of the toy RL problem, or of an environment); $k'$ the next one",
    "a": "an action",
    "r": "a reward",
    r"\gamma": "the discount factor",
    "Q": "action values $Q(k, a)$",
    "V": "state values $V(k)$; $V^*$ the optimal ones",
    "p": "a probability distribution (softmax output, a policy $p(a \\mid k)$)",
    r"\mathcal{H}": "the entropy of a distribution",
    "T": "the softmax temperature",
    r"\beta": "the inverse temperature, $1/T$",
    r"\varepsilon_{\mathrm{greedy}}": "the exploration probability of an epsilon-greedy policy",
}

# Symbols whose meaning belongs to some chapters only (experiment names); the others may appear
# anywhere. A scoped symbol in another chapter is a second meaning, e.g. a bare $v$ for Adam's
# second moment where $v$ is the single neuron's output weight.
SCOPES: dict[str, frozenset[str]] = {
    key: frozenset(chapters.split())
    for key, chapters in {
        "v": "single-neuron",
        "c": "single-neuron",
        "d": "single-neuron",
        "m": "numpy-basics",
        r"\Delta": "numpy-basics",
        "k": "numpy-basics rl-hadamard",
        "a": "numpy-basics rl-hadamard",
        "r": "numpy-basics rl-hadamard",
        r"\gamma": "numpy-basics rl-hadamard",
        "Q": "numpy-basics rl-hadamard",
        "V": "numpy-basics",
        "p": "numpy-basics",
        r"\mathcal{H}": "numpy-basics",
        "T": "numpy-basics",
        r"\beta": "numpy-basics",
        r"\varepsilon_{\mathrm{greedy}}": "numpy-basics",
        "s_z": "gallery",
        "u": "gallery",
        r"\psi": "gallery",
        r"\alpha": "gallery",
        "H": "deep-mlp",
        "s": "deep-mlp activation-swap single-neuron",
        "q": "gradient-flow unit-states",
        "t": "deep-mlp activation-swap stability rl-hadamard",
        r"\mu": "stability",
        r"\lambda_{\max}": "stability",
        r"\lambda_i": "stability",
        "P_t": "stability",
        "g": "deep-mlp activation-swap stability",
    }.items()
}

# key -> (term, definition in Markdown). Chapters link a term as [term](#term-KEY).
TERMS: dict[str, tuple[str, str]] = {
    "default-init": (
        "default initialisation",
        "PyTorch's `nn.Linear` draws each weight and bias from $U(-B, B)$ with "
        "$B = 1/\\sqrt{\\text{fan-in}}$, so $\\mathrm{Var}(w) = 1/(3\\,\\text{fan-in})$: a third "
        "of what keeps the spread of a linear layer's output constant.",
    ),
    "xavier-init": (
        "Xavier (Glorot) initialisation",
        "$U(-B, B)$ with $B = \\sqrt{6/(\\text{fan-in} + \\text{fan-out})}$: variance "
        "$2/(\\text{fan-in} + \\text{fan-out})$, chosen to keep the spread for tanh-like units.",
    ),
    "he-init": (
        "He (Kaiming) initialisation",
        "Weights with variance $2/\\text{fan-in}$: ReLU zeroes half of a symmetric input, and "
        "the factor 2 makes up for it, so the spread stays constant through ReLU layers.",
    ),
    "ensemble": (
        "ensemble",
        "Several copies of one network (one per seed, or per activation or learning rate) "
        "trained side by side in one batched computation; each member is exactly the network it "
        "would be alone.",
    ),
    "preset": (
        "preset",
        "A named set of an experiment's settings: `smoke` (seconds, for tests), `default` (what "
        "the tutorial runs) and larger ones for a fuller answer.",
    ),
    "seed": (
        "seed",
        "The number that fixes a run's random draws (initial weights, data, batches). Repeating "
        "an experiment over several seeds shows how much of a result is luck.",
    ),
    "held-out": (
        "held-out data",
        "Points drawn like the training data but never trained on; error there measures what "
        "the network learned rather than what it memorised.",
    ),
    "noise-floor": (
        "noise floor",
        "With targets $y = f(x) + \\xi$ and noise of variance $s^2$, even the true $f$ has "
        "mean squared error $s^2$ on new points: no model can be expected to do better.",
    ),
    "t-interval": (
        "95% interval (Student-t)",
        "For $n$ values with mean $\\bar x$ and standard deviation sd, "
        "$\\bar x \\pm t_{0.975,\\,n-1}\\,\\mathrm{sd}/\\sqrt n$; it covers the mean over all "
        "seeds in 95% of repetitions if the values are roughly normal. With few seeds it is wide.",
    ),
    "wilson-interval": (
        "Wilson interval",
        "The 95% interval of a proportion $k$ out of $n$ trials that stays inside [0, 1] and is "
        "not empty at 0 or $n$ (0 of 25 gives 0 to 13%).",
    ),
    "geometric-mean": (
        "geometric mean over seeds",
        "The mean of $\\log_{10}$ of a positive quantity, raised back to a power of 10; used for "
        "quantities such as gradient sizes that vary over orders of magnitude, with the "
        "interval taken on the log scale.",
    ),
    "welch": (
        "Welch's test",
        "A two-sample t-test that does not assume equal variances. The tutorial says two "
        "settings differ only when it rejects equal means at the 5% level; otherwise the "
        "difference is within noise.",
    ),
    "paired": (
        "paired test",
        "Where two settings were run from the same seeds (the same data draw and initial "
        "weights), the t-test of the per-seed differences: what a seed gives both cancels, so "
        "it can separate a small, consistent difference that Welch's test calls noise.",
    ),
    "r-squared": (
        "R²",
        "$R^2 = 1 - \\text{(mean squared error)}/\\text{(variance of the target)}$: 1 for a "
        "perfect fit, 0 for predicting the mean.",
    ),
    "subnormal": (
        "subnormal number",
        "A float smaller than the smallest normal one (about $10^{-38}$ in float32, $10^{-308}$ "
        "in float64), stored with fewer significant digits; below it, numbers round to 0.",
    ),
    "off": (
        "off",
        "A unit is off on an input when its output $h$ is exactly 0 there (ReLU with $z \\le 0$).",
    ),
    "dead": (
        "dead unit",
        "A unit that is off on every probe input: its output is exactly 0, so no gradient reaches "
        "its incoming weights. Activations with an exact zero region (ReLU, ReLU6) have them; in "
        "float32 so can GELU and SiLU, whose outputs round to exactly 0 far on the negative side "
        "(GELU below about $z = -5.5$, SiLU below about $z = -100$).",
    ),
    "inactive": (
        "inactive unit",
        "A unit whose pre-activation is negative ($z < 0$) on every probe input: dead for ReLU, "
        "on its small negative slope for leaky ReLU.",
    ),
    "saturated": (
        "saturated",
        "On the flat part of a bounded activation: $|\\tanh z| > 0.99$, or $\\sigma(z)$ outside "
        "[0.01, 0.99]. A unit is saturated when this holds on every probe input; the share of "
        "(unit, input) pairs in the band shows saturation that is partial.",
    ),
    "dormant": (
        "τ-dormant unit (ReDo)",
        "A unit whose mean $|h|$ over the inputs is at most $\\tau$ times the layer's average "
        "(Sokar et al., 2023, $\\tau = 0.025$); dead units are dormant, and so are units that "
        "are merely much quieter than their neighbours.",
    ),
}

_WORDS = re.compile(r"\\(?:text|mathrm|operatorname|mathit|mathbf|textrm)\s*\{([^{}]*)\}")
_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta kappa lambda mu nu xi pi rho "
    "sigma tau phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega"
).split()
_GROUP = r"\{(?:[^{}]|\{[^{}]*\})*\}"
_SYMBOL = re.compile(
    r"(?P<accent>\\(?:hat|bar|tilde|overline|widehat)\s*(?:\{\s*)?)?"
    r"(?P<base>\\mathcal\s*\{[A-Z]\}|\\(?:" + "|".join(_GREEK) + r")(?![A-Za-z])"
    r"|(?<![A-Za-z\\@])[A-Za-z](?![A-Za-z@]))"
    r"(?:\s*\})?"
    r"(?P<sub>_\s*(?:" + _GROUP + r"|\\?[A-Za-z0-9]+|\*))?"
    r"(?P<sup>\^\s*(?:\\pi|\*|\{\\pi\}|\{\*\}))?"
)


def _words(latex: str) -> str:
    """``\\mathrm{mach}`` -> ``@mach@``: a name, kept whole so it is never read as symbols."""
    return _WORDS.sub(lambda m: "@" + re.sub(r"\s+", "", m.group(1)) + "@", latex)


def _norm(text: str) -> str:
    text = re.sub(r"\s+", "", _words(text or "")).replace("{", "").replace("}", "")
    return text.replace("\\hat", "\\hat ").replace("\\bar", "\\bar ")


def _lookup(accent: str, base: str, sub: str, sup: str) -> str:
    """The table key a symbol falls under (the most specific form listed)."""
    acc = f"\\{_norm(accent).lstrip(chr(92))} " if accent else ""
    base = re.sub(r"\s+", "", base)
    candidates = [acc + base + sub + sup, acc + base + sub, base + sub, acc + base, base]
    if sub:
        candidates.insert(2, base + "_*")
        if re.fullmatch(r"_\{?\s*\d+\s*\}?", sub):  # m_0, v_1: a step of m_t, v_t
            candidates[1:1] = [acc + base + "_t", base + "_t"]
    keys = {_norm(k): k for k in NOTATION}
    for cand in candidates:
        found = keys.get(_norm(cand))
        if found is not None:
            return found
    return acc + base + sub + sup


_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\d)", re.DOTALL)


def symbols_in(markdown: str) -> Counter:
    """Counts of the table keys (or, for symbols not in the table, their LaTeX) in ``$`` math.

    Code spans and fenced blocks are skipped; ``\\bar x`` (a mean) counts as ``x``.
    """
    text = re.sub(r"```.*?```|`[^`\n]*`", "", markdown, flags=re.DOTALL)
    found: Counter = Counter()
    for match in _MATH.finditer(text):
        body = _words(match.group(1) or match.group(2))
        for s in _SYMBOL.finditer(body):
            accent = s.group("accent") or ""
            if "bar" in accent or "overline" in accent:
                accent = ""
            found[_lookup(accent, s.group("base"), s.group("sub") or "", s.group("sup") or "")] += 1
    return found


def unknown_symbols(markdown: str) -> list[str]:
    """The symbols in ``markdown``'s math that :data:`NOTATION` does not list, sorted."""
    return sorted(k for k in symbols_in(markdown) if k not in NOTATION)


def misplaced_symbols(markdown: str, chapter: str) -> list[str]:
    """Symbols in ``markdown`` (the report of experiment ``chapter``) that are unknown, or scoped
    (:data:`SCOPES`) to other chapters -- a symbol used with a second meaning."""
    found = symbols_in(markdown)
    return sorted(k for k in found if k not in NOTATION or chapter not in SCOPES.get(k, {chapter}))


def glossary_markdown() -> str:
    """The tutorial's closing section body: the notation table, then the terms (``#term-KEY``)."""

    def written(key: str) -> str:
        return key.replace("_*", r"_{0.975,\,n-1}")

    rows = "\n".join(
        f"| ${written(k)}$ | {v} | {', '.join(sorted(SCOPES.get(k, ['every chapter'])))} |"
        for k, v in NOTATION.items()
    )
    terms = "\n".join(
        f'<dt id="term-{key}">{html_term}</dt>\n<dd markdown="1">{text}</dd>'
        for key, (html_term, text) in sorted(TERMS.items(), key=lambda kv: kv[1][0].lower())
    )
    return (
        "Each symbol in this tutorial's formulas has one meaning, listed here; a term in a "
        "chapter links to its definition below.\n\n### Notation\n\n| symbol | meaning | used in |\n"
        f'|---|---|---|\n{rows}\n\n### Terms\n\n<dl markdown="1">\n{terms}\n</dl>\n'
    )


def main(argv: list[str]) -> int:
    bad = 0
    for path in argv:
        with open(path, encoding="utf-8") as fh:
            missing = unknown_symbols(fh.read())
        for sym in missing:
            print(f"{path}: ${sym}$ is not in actlab.report.notation.NOTATION")
        bad += len(missing)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
