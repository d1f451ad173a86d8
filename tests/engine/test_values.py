"""Totals and averages add up the numbers as they are written, and the quick comparison of a
sum with a literal always agrees with the exact one."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from engine.values import average, compare, fold, sum_compares, total
from grammar.ast import CompareOp

cents = st.integers(-100_000, 100_000).map(lambda c: c / 100)
amounts = st.lists(
    st.one_of(
        cents,
        st.integers(-1000, 1000),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([1e308, -1e308, 2**70]),  # sums beyond a double, or a float's digits
    ),
    max_size=8,
)


def exact(numbers: list) -> Fraction:
    return sum((Fraction(repr(x)) for x in numbers), Fraction(0))


def rounded(value: Fraction) -> float:
    """The nearest float; infinity beyond the largest."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def test_sums_of_cents_are_the_sums_written():
    assert total([10.1, 20.2]) == 30.3 and sum([10.1, 20.2]) != 30.3
    assert total([0.7, 0.1]) == 0.8
    assert average([0.1, 0.2, 0.3]) == 0.2
    assert total([4, 6]) == 10 and type(total([4, 6])) is int
    assert (total([]), average([])) == (0, None)


@given(amounts)
def test_a_total_is_the_exact_sum_rounded_once(numbers):
    whole = all(type(x) is int for x in numbers)  # added up as integers: exactly
    assert total(numbers) == (int(exact(numbers)) if whole else rounded(exact(numbers)))
    if numbers:
        assert average(numbers) == rounded(exact(numbers) / len(numbers))


@given(amounts, st.booleans(), st.sampled_from(list(CompareOp)), st.data())
def test_the_quick_comparison_agrees_with_the_exact_one(numbers, mean, op, data):
    # Literals at the exact sum and a hair either side of it: where the binary sum misleads.
    near = rounded(exact(numbers) / (len(numbers) if mean and numbers else 1))
    literal = data.draw(
        st.sampled_from([near, near * (1 + 2e-16), near * (1 - 2e-16), near + 0.01, 0, "x"])
    )
    expected = compare(average(numbers) if mean else total(numbers), op, literal)
    assert sum_compares(numbers, mean, op, literal) == expected


def test_text_compares_caselessly_and_canonically():
    assert fold("STRASSE") == fold("Straße")
    assert fold("Zu\u0308rich") == fold("Z\u00fcrich") == fold("Z\u00dcRICH")
    assert compare("Zu\u0308rich", CompareOp.EQ, "zürich")
    assert not compare("Zurich", CompareOp.EQ, "zürich")  # accents still count
    # Unicode's default folding keeps the dot of a Turkish capital I (no locale here).
    assert fold("\u0130stanbul") != fold("istanbul")
