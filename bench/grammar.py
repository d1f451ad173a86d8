"""Rule language benchmark: parse times against baselines measured in the same run.

    python bench/grammar.py [--repeat 200]

Times `parse` (text to checked AST) on the sentences of RULES.md, on a long rule near the
limits, and on rules with mistakes (the error report re-reads the rule to find every
problem); then `format_rule` and `to_json`. Baselines, in the same process: `json.loads` of
a JSON document of the same length, and Lark parsing text of the same length with a
trivial LALR grammar. Prints a table; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lark import Lark

# Run as `python bench/grammar.py`, bench/ comes first on sys.path and this file would
# shadow the grammar package: the project root takes its place.
ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from grammar import RuleError, format_rule, parse, to_json  # noqa: E402
from grammar.checks import MAX_CLAUSES, MAX_NESTING, MAX_RULE_LENGTH  # noqa: E402
from grammar.parser import build_parser, lark_parser  # noqa: E402

TYPICAL = [
    "opened email within 7 days and not purchased within 90 days",
    'visited page where url contains "/pricing" at least 3 times within 30 days',
    'clicked email within 14 days or submitted form "demo-request" within 30 days',
    "purchased where amount > 100 at least 2 times within 90 days",
    "has never purchased",
    "not opened email within 30 days",
    "total amount of purchased within 90 days >= 500",
    "average amount of purchased >= 40",
    "last purchased more than 30 days ago",
    "last activity more than 60 days ago",
    "first purchased within 7 days",
    'performed "trial_started" within 14 days',
    'performed "webinar_attended" exactly 2 times',
    'country is "DE" and age between 18 and 34',
    'lifecycle_stage in ("lead", "mql") and lead_score >= 50',
    'email ends with "@acme.com"',
    "city is unknown",
    'device_type is not "mobile"',
    "signed_up_at after 2026-01-01",
    "signed_up_at more than 30 days ago",
    'in segment "engaged" and not in segment "customers"',
    '(opened email within 7 days or clicked email within 7 days) and country in ("DE", "AT", "CH")',
]
MISTAKES = [
    "opened email withn 7 days",
    'country is DE and purchsed within 30 days or visited page "/x" at lest 2 tims',
    'purchased where amount > 100 and currency is "EUR" at least 2 times',
]

TRIVIAL_GRAMMAR = r"""
start: item+
item: WORD | NUMBER | STRING | "(" | ")" | ","
WORD: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /-?\d+(\.\d+)?/
STRING: /"[^"]*"/
OP: /[<>=!]=?/
%ignore OP
%ignore /[\s\-:.@\/]+/
"""


def long_rule() -> str:
    """A rule close to every limit: its length, its conditions and its nesting."""
    nested = "not " * (MAX_NESTING - 2) + '(country is "DE" or country is "AT")'
    group = (
        '(opened email "{pad}" where (device is "mobile" or device is "tablet")'
        " at least 2 times within 30 days"
        ' or clicked email "promo" within 14 days'
        ' and total amount of purchased where currency is "EUR" within 90 days >= 500)'
    )
    per_group = 8  # a shorthand text is a condition on its own, as in `where campaign is`
    groups = (MAX_CLAUSES - 2) // per_group
    bare = " and ".join([nested] + [group.format(pad="")] * groups)
    pad = "x" * ((MAX_RULE_LENGTH - 50 - len(bare)) // groups)
    rule = " and ".join([nested] + [group.format(pad=pad)] * groups)
    assert len(rule) <= MAX_RULE_LENGTH and 2 + per_group * groups <= MAX_CLAUSES
    return rule


def timings(fn: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call, one sample per call after a warm-up."""
    for _ in range(min(20, repeat)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def json_document(length: int) -> str:
    """A JSON document about `length` characters long, of rule-like words and numbers."""
    items: list[object] = []
    while len(json.dumps(items)) < length:
        items.append({"event": "email_opened", "within": 7, "unit": "days", "count": 2})
    return json.dumps(items)


def refuse(text: str) -> None:
    try:
        parse(text)
    except RuleError:
        return
    raise AssertionError(f"expected a problem in {text!r}")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--repeat", type=int, default=200, help="timed calls per rule")
    args = cli.parse_args()
    repeat = args.repeat

    start = time.perf_counter()
    build_parser()
    construction = time.perf_counter() - start
    lark_parser()
    trivial = Lark(TRIVIAL_GRAMMAR, parser="lalr")

    big = long_rule()
    few = max(20, repeat // 4)
    # (case, rules, samples, json.loads and trivial-Lark medians of the same lengths)
    rows: list[tuple[str, int, list[float], float | None, float | None]] = []

    typical: list[float] = []
    typical_json: list[float] = []
    typical_lark: list[float] = []
    for rule in TYPICAL:
        document = json_document(len(rule))
        typical += timings(lambda rule=rule: parse(rule), repeat)
        typical_json += timings(lambda d=document: json.loads(d), repeat)
        typical_lark += timings(lambda rule=rule: trivial.parse(rule), repeat)
    json_median, lark_median = statistics.median(typical_json), statistics.median(typical_lark)
    mean_length = round(statistics.mean(len(r) for r in TYPICAL))
    rows += [
        (
            f"parse: RULES.md rules (~{mean_length} chars)",
            len(TYPICAL),
            typical,
            json_median,
            lark_median,
        ),
        ("  baseline: json.loads, same length", len(TYPICAL), typical_json, None, None),
        ("  baseline: trivial Lark grammar", len(TYPICAL), typical_lark, None, None),
    ]

    document = json_document(len(big))
    long_times = timings(lambda: parse(big), few)
    long_json = timings(lambda: json.loads(document), few)
    long_lark = timings(lambda: trivial.parse(big), few)
    rows += [
        (
            f"parse: long rule ({len(big):,} chars, {MAX_CLAUSES} conditions)",
            1,
            long_times,
            statistics.median(long_json),
            statistics.median(long_lark),
        ),
        ("  baseline: json.loads, same length", 1, long_json, None, None),
        ("  baseline: trivial Lark grammar", 1, long_lark, None, None),
    ]

    mistakes: list[float] = []
    for rule in MISTAKES:
        mistakes += timings(lambda rule=rule: refuse(rule), few)
    rows.append(("parse: rules with mistakes, all reported", len(MISTAKES), mistakes, None, None))

    asts = [parse(rule) for rule in TYPICAL]
    formatting: list[float] = []
    dumping: list[float] = []
    for ast in asts:
        formatting += timings(lambda ast=ast: format_rule(ast), repeat)
        dumping += timings(lambda ast=ast: to_json(ast), repeat)
    rows.append(("format_rule: RULES.md rules", len(asts), formatting, None, None))
    rows.append(("to_json: RULES.md rules", len(asts), dumping, None, None))

    print(f"Rule language on Python {platform.python_version()} ({platform.machine()})")
    print(f"parser construction (once): {construction * 1000:.1f} ms")
    print()
    header = (
        f"{'case':<50} {'rules':>5} {'median µs':>10} {'p99 µs':>9} "
        f"{'x json.loads':>13} {'x trivial Lark':>15}"
    )
    print(header)
    print("-" * len(header))
    for name, count, samples, json_base, lark_base in rows:
        median = statistics.median(samples)
        vs_json = f"{median / json_base:.0f}" if json_base else ""
        vs_lark = f"{median / lark_base:.1f}" if lark_base else ""
        print(
            f"{name:<50} {count:>5} {median * 1e6:>10.1f} {p99(samples) * 1e6:>9.1f} "
            f"{vs_json:>13} {vs_lark:>15}"
        )


if __name__ == "__main__":
    main()
