"""The tutorial's notation table and the reader of symbols in a report's math."""

import pytest

from actlab.report.notation import (
    NOTATION,
    SCOPES,
    TERMS,
    glossary_markdown,
    misplaced_symbols,
    symbols_in,
    unknown_symbols,
)


@pytest.mark.parametrize(
    ("math", "symbol"),
    [
        ("$x_i$", "x"),  # an index subscript is the letter
        ("$W_l$", "W"),
        ("$h_{l-1}$", "h"),
        (r"$\bar y$", "y"),  # a mean of y is still y
        (r"$\hat y$", r"\hat y"),
        (r"$\hat{y}$", r"\hat y"),
        ("$v_t$", "v_t"),  # a listed subscript is its own symbol
        ("$m_0$", "m_t"),  # a numbered step of m_t is m_t, not the softmax shift m
        (r"$\hat v_t$", r"\hat v_t"),
        (r"$\varepsilon_{\mathrm{mach}}$", r"\varepsilon_{\mathrm{mach}}"),
        (r"$t_{0.975,\,n-1}$", "t_*"),
        ("$s_z$", "s_z"),
        (r"$\mathcal{N}$", r"\mathcal{N}"),
        (r"$\beta_2$", r"\beta_2"),
        (r"$\beta$", r"\beta"),
    ],
)
def test_a_symbol_falls_under_its_most_specific_entry(math, symbol):
    assert set(symbols_in(math)) == {symbol}


def test_names_code_and_prices_are_not_symbols():
    text = r"$\mathrm{Var}(\text{a})$, `$x$ in code`, $5 and $6, \$y, $\operatorname{softplus}$"
    assert symbols_in(text) == {}
    assert symbols_in(r"$$\sigma(z) = 1/(1 + e^{-z})$$") == {r"\sigma": 1, "z": 2, "e": 1}


def test_a_symbol_outside_its_chapter_or_the_table_is_flagged():
    adam = r"the second moment $v = 0.001 g^2$"
    assert misplaced_symbols(adam, "activation-swap") == ["v"]
    assert misplaced_symbols(adam, "single-neuron") == ["g"]
    assert misplaced_symbols(r"$v_t = 0.001 g^2$", "activation-swap") == []
    assert unknown_symbols(r"$\zeta + x$") == [r"\zeta"]
    assert misplaced_symbols(r"$\zeta$", "gallery") == [r"\zeta"]


def test_the_table_reads_back_and_every_scope_is_a_symbol():
    assert set(SCOPES) <= set(NOTATION)
    for key in NOTATION:  # each entry, written as the reports write it, is read as itself
        written = key.replace("_*", "_{0.975}")
        assert set(symbols_in(f"${written}$")) == {key}, key
    meanings = [m.lower() for m in NOTATION.values()]
    assert len(set(meanings)) == len(meanings)  # no two symbols for one meaning


def test_the_glossary_lists_every_symbol_and_term_with_an_anchor():
    text = glossary_markdown()
    for key in TERMS:
        assert f'id="term-{key}"' in text
    assert set(symbols_in(text.split("### Terms")[0])) == set(NOTATION)
