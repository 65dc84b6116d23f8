"""The one number format of the reports: what a reader reads back is the number."""

import math
import re

import numpy as np
import pytest

from actlab.report.format import ci, num, pct, ratio


def _read_back(text: str) -> float:
    """The value a reader takes from ``ratio``'s text (independent of how it was written)."""
    if m := re.fullmatch(r"\$10\^\{(-?[\d.]+)\}\$", text):
        return 10.0 ** float(m.group(1))
    if text.startswith("1/"):
        return 1.0 / float(text[2:])
    return float(text)


@pytest.mark.parametrize("value", [*np.geomspace(1e-5, 1e5, 201), 0.996, 0.95, 0.51, 0.49])
def test_a_ratio_reads_back_as_its_value_to_two_digits(value):
    text = ratio(math.log10(value))
    assert text not in ("1/1", "1/1.0")  # a factor just under 1 is not "1/1"
    back = _read_back(text)
    # two significant digits: half a unit of the second digit; beyond four decades one decimal
    # of the exponent
    rel = 10**0.05 - 1 if "10^" in text else 0.05
    assert abs(back / value - 1) <= rel + 1e-12, (value, text)


def test_ratio_num_pct_and_ci_edge_cases():
    assert ratio(float("nan")) == "n/a" and ratio(None) == "n/a"
    assert ratio(math.log10(0.83)) == "0.83" and ratio(math.log10(1 / 250)) == "1/250"
    assert num(-0.0) == "0" and num(float("inf")) == "∞" and num(1234.0) == "1230"
    assert num(2.5e-5) == r"$2.5 \times 10^{-5}$"
    assert pct(0.5) == "50%" and pct(0.0) == "0%"
    assert ci({"mean": 1.0, "lo": float("nan"), "hi": float("nan")}) == "1"
    assert ci({"mean": 1.0, "lo": 0.5, "hi": 1.5}) == "1 [0.5, 1.5]"


def _read_ci(text: str) -> list[float]:
    """mean, lo, hi as a reader takes them from ``ci``'s text."""
    if m := re.fullmatch(r"\$\((\S+)\\;\[(\S+),\\, (\S+)\]\) \\times 10\^\{(-?\d+)\}\$", text):
        return [float(v) * 10.0 ** int(m.group(4)) for v in m.groups()[:3]]
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text)
    assert m, text
    return [float(v) for v in m.groups()]


@pytest.mark.parametrize(
    "values",
    [(0.0014, 2e-4, 0.00261), (1e-5, -3e-5, 4e-5), (0.5, 0.2, 0.8), (2e5, 1e5, 3e5), (5.0, 0.0, 9)],
)
def test_an_interval_reads_back_in_one_style(values):
    text = ci(dict(zip(("mean", "lo", "hi"), values, strict=True)))
    assert text.count("10^") <= 1  # one power of ten for all three, or none
    np.testing.assert_allclose(_read_ci(text), values, rtol=5e-3, atol=0)


@pytest.mark.parametrize(
    "values",
    [
        (0.5, 1 / 2.1, 0.53),
        (0.7, 0.6, 0.996),
        (0.3, 0.1, 0.996),
        (3, 0.3, 9),
        (2, 1, 4),
        (1.003, 1.001, 1.005),
        (0.997, 0.995, 0.999),
    ],
)
def test_a_factor_interval_reads_back_in_one_style(values):
    from actlab.report.format import ratio_ci

    text = ratio_ci(dict(zip(("mean", "lo", "hi"), map(math.log10, values), strict=True)))
    parts = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text).groups()
    below = [p for p, v in zip(parts, values, strict=True) if v < 1]
    assert len({p.startswith("1/") for p in below}) <= 1, text  # one style below 1
    assert "1/1" not in parts and "1/1]" not in text, text
    assert len(set(parts)) == 3, text  # three different factors never read "1 [1, 1]"
    back = [_read_back(p) for p in parts]
    np.testing.assert_allclose(back, values, rtol=0.05)


def test_pct_ci_writes_a_share_with_its_interval_or_alone():
    from actlab.report.format import pct_ci

    assert pct_ci({"mean": 0.25, "lo": 0.2, "hi": 0.3}) == "25% [20%, 30%]"
    assert pct_ci({"mean": 0.0, "lo": 0.0, "hi": 0.0}) == "0%"  # every seed the same
    assert pct_ci({"mean": 0.5, "lo": None, "hi": None}) == "50%"  # one seed, read back
