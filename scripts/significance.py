"""How uncertain an accuracy on a few hundred test records is, and whether two models differ by more than noise.

- `wilson_interval`: the 95% Wilson score interval of a proportion (Wilson 1927), without
  continuity correction: on 100 records an accuracy of 50% is 40.4% to 59.6%. Chosen over the
  normal approximation, which leaves [0, 1] near 0% and 100%, and over Clopper-Pearson, which is
  conservative (wider than 95%).
- `mcnemar`: McNemar's test on two models scored on the same records, from the discordant
  records only (b: right for the first only, c: for the second only). Below 25 discordant
  records the exact binomial test (two-sided, p = 1/2), as statsmodels' `mcnemar(exact=True)`;
  from 25 up the chi-square statistic with continuity correction, (|b - c| - 1)^2 / (b + c),
  one degree of freedom.

Standard library only (the report needs no scipy at run time); tests hold both against
scipy.stats on the same counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
"""The standard normal quantile of 0.975."""
EXACT_BELOW = 25
"""Discordant records under which McNemar's test is the exact binomial one."""
ALPHA = 0.05


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of correct/total (95% by default)."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"{correct}/{total} is not a count of correct records out of a positive total")
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class McNemar:
    first_only: int
    """Records the first model got right and the second wrong (b)."""
    second_only: int
    """Records the second model got right and the first wrong (c)."""
    both: int
    neither: int
    p_value: float
    method: str
    statistic: float | None = None
    """The chi-square statistic; None for the exact test."""

    @property
    def records(self) -> int:
        return self.first_only + self.second_only + self.both + self.neither

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def exact_binomial_p(smaller: int, n: int) -> float:
    """Two-sided p-value of `smaller` successes or fewer in n trials at p = 1/2 (doubled tail, at most 1)."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(smaller + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar(first: list[bool], second: list[bool]) -> McNemar:
    """McNemar's test on paired verdicts (True: right) of two models on the same records, in the same order."""
    if len(first) != len(second):
        raise ValueError(f"paired verdicts of unequal length: {len(first)} and {len(second)}")
    b = sum(1 for x, y in zip(first, second) if x and not y)
    c = sum(1 for x, y in zip(first, second) if y and not x)
    both = sum(1 for x, y in zip(first, second) if x and y)
    neither = len(first) - b - c - both
    return mcnemar_counts(b, c, both, neither)


def mcnemar_counts(b: int, c: int, both: int = 0, neither: int = 0) -> McNemar:
    n = b + c
    if n < EXACT_BELOW:
        return McNemar(b, c, both, neither, exact_binomial_p(min(b, c), n), "exact binomial")
    statistic = (abs(b - c) - 1) ** 2 / n
    # chi-square with one degree of freedom: P(X > s) = erfc(sqrt(s / 2))
    return McNemar(b, c, both, neither, math.erfc(math.sqrt(statistic / 2)), "chi-square, continuity-corrected",
                   statistic)


def in_words(first: str, second: str, test: McNemar) -> str:
    """What the test says, for a reader: who was right where the other was not, and whether that is noise."""
    b, c = test.first_only, test.second_only
    lead = (f"{first} was right on {b} records {second} got wrong, {second} on {c} that {first} got wrong "
            f"(of {test.records} records both answered)")
    p = f"McNemar {test.method}, p = {test.p_value:.3g}"
    if b == c == 0:
        return f"{lead}: they agree on every record, no difference to test ({p})."
    better = first if b > c else second
    if test.significant:
        return f"{lead}: {better} is better, by more than noise at the 5% level ({p})."
    return (f"{lead}: the difference is within noise at the 5% level ({p}); these records cannot tell the two "
            "models apart.")
