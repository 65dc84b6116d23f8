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
