"""SyntaxGym prediction formulas: a small parser and evaluator (no ``eval``), with SyntaxGym's semantics.

A suite states what a model that has learned a construction should show as formulas over region totals, e.g.
``((5;%mismatch%) > (5;%match%)) & ((*;%a%) - (*;%b%) > 0)``: ``(N;%cond%)`` is region N's total of condition
``cond`` (``*``: the sum of every region of the condition), numbers are literals. Precedence, highest first:
``+ -`` (left-associative), ``< > =`` (one comparison per level), ``& |`` (left-associative, one level, so
``a & b | c`` is ``(a & b) | c``). ``=`` is "close": ``|a - b| <= 1e-3 + 1e-5 |b|``, SyntaxGym's tolerance for
equal surprisals. This is the grammar of syntaxgym's ``prediction.py`` (the pyparsing grammar Brain-Score Language
ships as ``sg_prediction.py``); a chained comparison (``a < b < c``), which that parser silently reads as ``a < b``,
is an error here. tests/test_lm_benchmarks.py checks every formula of the miniature's suites against Brain-Score's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from brainalign.errors import BrainalignError

EQUALITY_RTOL = 1e-5
EQUALITY_ATOL = 1e-3
#: the suite-level metrics SyntaxGym accepts in ``meta.metric`` (Brain-Score checks the name, then sums tokens anyway)
SUITE_METRICS = ("sum", "mean", "median", "range", "max", "min")

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<region>\(\s*(?P<number>\d+|\*)\s*;%\s*(?P<condition>[A-Za-z0-9_-]+)\s*%\s*\))
    | (?P<literal>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<op>[-+<>=&|])
    | (?P<paren>[()])
    )""", re.VERBOSE)
_LEVELS = (("&", "|"), ("<", ">", "="), ("+", "-"))  # lowest to highest precedence
_COMPARISONS = ("<", ">", "=")


@dataclass(frozen=True)
class Region:
    number: str  # digits or "*"
    condition: str

    def __call__(self, totals: Mapping) -> float:
        if self.number == "*":
            return sum(value for (condition, _), value in totals.items() if condition == self.condition)
        key = (self.condition, int(self.number))
        if key not in totals:
            raise KeyError(key)
        return totals[key]


@dataclass(frozen=True)
class Literal:
    value: float

    def __call__(self, totals: Mapping) -> float:
        return self.value


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object

    def __call__(self, totals: Mapping):
        a, b = self.left(totals), self.right(totals)
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "<":
            return a < b
        if self.op == ">":
            return a > b
        if self.op == "=":
            return abs(a - b) <= EQUALITY_ATOL + EQUALITY_RTOL * abs(b)
        if self.op == "&":
            return a and b
        return a or b


def _tokens(formula: str) -> list[tuple[str, object]]:
    out, pos, text = [], 0, formula.rstrip()
    while pos < len(text):
        expects_operand = not out or out[-1][0] in ("op", "(")
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected text at {text[pos:pos + 12]!r}")
        if match.group("region"):
            out.append(("atom", Region(match.group("number"), match.group("condition"))))
        elif match.group("literal") and (expects_operand or match.group("literal")[0] not in "+-"):
            out.append(("atom", Literal(float(match.group("literal")))))
        elif match.group("literal"):  # "a -1": the sign is the operator (a number follows)
            out.append(("op", match.group("literal")[0]))
            pos = match.start("literal") + 1
            continue
        elif match.group("op"):
            out.append(("op", match.group("op")))
        else:
            out.append((match.group("paren"), None))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.i, self.grouped = tokens, 0, set()  # ids of parenthesised comparisons

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def level(self, depth: int):
        if depth == len(_LEVELS):
            return self.atom()
        left = self.level(depth + 1)
        ops = _LEVELS[depth]
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            op = self.tokens[self.i][1]
            self.i += 1
            right = self.level(depth + 1)
            if op in _COMPARISONS and isinstance(left, Binary) and left.op in _COMPARISONS and id(left) not in self.grouped:
                raise ValueError("chained comparison; put one side in parentheses")
            left = Binary(op, left, right)
        return left

    def atom(self):
        kind, value = self.peek()
        if kind == "atom":
            self.i += 1
            return value
        if kind == "(":
            self.i += 1
            inner = self.level(0)
            if self.peek()[0] != ")":
                raise ValueError("unbalanced parentheses")
            self.i += 1
            self.grouped.add(id(inner))
            return inner
        raise ValueError(f"expected a region, number or '(' but found {value or kind or 'the end'!r}")


def parse_formula(formula: str, where: str = "formula"):
    """The formula's tree (call it with region totals); a malformed formula is a one-line BrainalignError."""
    try:
        parser = _Parser(_tokens(formula))
        tree = parser.level(0)
        if parser.i != len(parser.tokens):
            raise ValueError(f"unexpected {parser.tokens[parser.i][1] or parser.tokens[parser.i][0]!r} after a complete expression")
    except ValueError as error:
        raise BrainalignError(f"{where}: invalid prediction formula {formula!r}: {error}") from None
    return tree


def evaluate_formula(tree, totals: Mapping, where: str = "formula") -> bool:
    """The formula's truth on one item's region totals ``{(condition, region number): total}``."""
    try:
        return bool(tree(totals))
    except KeyError as error:
        raise BrainalignError(f"{where}: the formula names region {error.args[0]!r}, which the item lacks") from None
