"""A panel's SQL as Grafana's ClickHouse plugin sends it to ClickHouse.

The official plugin (`grafana-clickhouse-datasource`) turns a panel's raw SQL
into the query ClickHouse runs in three steps, in this order:

1. in the browser, `$__conditionalAll(condition, $var)` becomes `1=1` when the
   variable is All (or empty), else the condition;
2. in the browser, template variables (`$var`, `${var}`, `[[var]]`) are
   replaced: a multi-value variable by its values quoted and joined
   (`'a','b'`), a single-value one by its value as it is;
3. in the plugin's backend, the macros: `$__timeFilter(col)` and the others in
   `MACROS`, from the dashboard's time range and interval.

`expand` runs the three, so tests can run a panel's SQL on the real engine.
One deliberate difference: where Grafana would replace a variable set to All
by every one of its options, `expand` refuses, because the dashboards here
keep every variable filter inside `$__conditionalAll`.

>>> from datetime import UTC, datetime
>>> ctx = QueryContext(
...     time_from=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
...     time_to=datetime(2026, 11, 30, 13, 0, tzinfo=UTC),
...     interval_ms=60_000,
...     variables={"department": ["research", "support"], "agent": [ALL]},
... )
>>> print(expand(
...     "SELECT $__timeInterval(minute) AS time FROM t WHERE $__timeFilter(minute)"
...     " AND $__conditionalAll(principal IN ($department), $department)"
...     " AND $__conditionalAll(agent IN ($agent), $agent)", ctx))
SELECT toStartOfInterval(toDateTime(minute), INTERVAL 60 second) AS time FROM t \
WHERE minute >= toDateTime(1796040000) AND minute <= toDateTime(1796043600) \
AND principal IN ('research','support') AND 1=1
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.errors import SpendstreamError

ALL = "$__all"
"""The value Grafana holds for a variable set to All."""

VariableValue = str | Sequence[str]
"""A single-value variable's text, or a multi-value variable's selected values."""


class MacroError(SpendstreamError):
    """Panel SQL that the ClickHouse plugin would not expand into a query."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: time range, interval, variables."""

    time_from: datetime
    time_to: datetime
    interval_ms: int
    variables: Mapping[str, VariableValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("time_from", self.time_from), ("time_to", self.time_to)):
            if value.tzinfo is None:
                msg = f"{name} {value} has no time zone; pass an aware datetime"
                raise MacroError(msg)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL ClickHouse receives for `sql` under `ctx` (steps 1 to 3)."""
    sql = apply_conditional_all(sql, ctx.variables)
    sql = replace_variables(sql, ctx.variables)
    return apply_macros(sql, ctx)


# Step 1: $__conditionalAll, expanded by the plugin in the browser.

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_NAME = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _value_text(value: VariableValue) -> str:
    """The variable's value as JavaScript's `toString` writes it."""
    return value if isinstance(value, str) else ",".join(value)


def _is_all(argument: str, variables: Mapping[str, VariableValue]) -> bool:
    """Whether the variable named in `argument` is All or empty."""
    name = _VARIABLE_NAME.search(argument.strip())
    if name is None or name.group() not in variables:
        return False
    return _value_text(variables[name.group()]) in ("", ALL)


def apply_conditional_all(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Replace each `$__conditionalAll(condition, $var)`, the last one first."""
    start = sql.rfind(_CONDITIONAL_ALL)
    while start != -1:
        args, end = split_args(sql, start + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            msg = (
                f"$__conditionalAll takes a condition and a variable, got {args!r}; "
                "write $__conditionalAll(column IN ($var), $var)"
            )
            raise MacroError(msg)
        condition = args[0]
        if _is_all(args[1], variables):
            condition = "1=1"
        sql = sql[:start] + condition + sql[end:]
        start = sql.rfind(_CONDITIONAL_ALL)
    return sql


def split_args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the bracket at `open_at`, split at its top-level commas.

    Returns the arguments as written (untrimmed) and the index just past the
    closing bracket.

    >>> split_args("f(a, g(b, c)) + 1", 1)
    (['a', ' g(b, c)'], 13)
    """
    args, depth, arg_start = [], 0, open_at + 1
    for index in range(open_at, len(sql)):
        char = sql[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[arg_start:index])
                return args, index + 1
        elif char == "," and depth == 1:
            args.append(sql[arg_start:index])
            arg_start = index + 1
    msg = f"no closing bracket for the one at {open_at} in {sql[open_at:][:60]!r}"
    raise MacroError(msg)


# Step 2: template variables, replaced by Grafana with the plugin's format.

_TEMPLATE = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\[\[(?P<bracketed>\w+?)(?::(?P<bracketed_format>\w+))?\]\]"
    r"|\$\{(?P<braced>\w+)(?::(?P<braced_format>[^}]+))?\}"
)


def format_value(name: str, value: VariableValue) -> str:
    """A variable's value as the plugin formats it: lists quoted and joined."""
    values = [value] if isinstance(value, str) else list(value)
    if ALL in values:
        msg = (
            f"variable {name} is All outside $__conditionalAll; wrap its "
            f"condition: $__conditionalAll(column IN (${name}), ${name})"
        )
        raise MacroError(msg)
    if isinstance(value, str):
        return value
    return "'" + "','".join(values) + "'"


def replace_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Replace the variables Grafana knows; leave other `$words` (macros) alone."""

    def replace(match: re.Match[str]) -> str:
        name = match["plain"] or match["bracketed"] or match["braced"]
        if name not in variables:
            return match.group()
        if match["bracketed_format"] or match["braced_format"]:
            msg = f"variable {name} carries a format in {match.group()!r}; drop it"
            raise MacroError(msg)
        return format_value(name, variables[name])

    return _TEMPLATE.sub(replace, sql)


# Step 3: the macros of the plugin's backend (its pkg/macros).

Macro = Callable[[QueryContext, list[str]], str]


def _date_time(at: datetime) -> str:
    return f"toDateTime({math.floor(at.timestamp())})"


def _date_time_ms(at: datetime) -> str:
    return f"fromUnixTimestamp64Milli({math.floor(at.timestamp() * 1000)})"


def _one(name: str, args: list[str]) -> str:
    if len(args) != 1:
        msg = f"$__{name} takes one column, got {len(args)} arguments: {args!r}"
        raise MacroError(msg)
    return args[0]


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _time_filter(ctx: QueryContext, args: list[str]) -> str:
    column = _one("timeFilter", args)
    return _between(column, _date_time(ctx.time_from), _date_time(ctx.time_to))


def _time_filter_ms(ctx: QueryContext, args: list[str]) -> str:
    column = _one("timeFilter_ms", args)
    return _between(column, _date_time_ms(ctx.time_from), _date_time_ms(ctx.time_to))


def _date_filter(ctx: QueryContext, args: list[str]) -> str:
    column = _one("dateFilter", args)
    return _between(column, _utc_date(ctx.time_from), _utc_date(ctx.time_to))


def _date_time_filter(ctx: QueryContext, args: list[str]) -> str:
    if len(args) != 2:
        msg = f"$__dateTimeFilter takes a date and a time column, got {args!r}"
        raise MacroError(msg)
    dates = _between(args[0], _utc_date(ctx.time_from), _utc_date(ctx.time_to))
    times = _between(args[1], _date_time(ctx.time_from), _date_time(ctx.time_to))
    return f"({dates}) AND ({times})"


def _utc_date(at: datetime) -> str:
    return f"toDate('{at.astimezone(UTC):%Y-%m-%d}')"


def _interval_s(ctx: QueryContext) -> int:
    return int(max(ctx.interval_ms / 1000, 1))


def _time_interval(ctx: QueryContext, args: list[str]) -> str:
    column = _one("timeInterval", args)
    seconds = _interval_s(ctx)
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)"


def _time_interval_ms(ctx: QueryContext, args: list[str]) -> str:
    column = _one("timeInterval_ms", args)
    millis = max(ctx.interval_ms, 1)
    start = f"toStartOfInterval(toDateTime64({column}, 3)"
    return f"{start}, INTERVAL {millis} millisecond)"


MACROS: dict[str, Macro] = {
    "fromTime": lambda ctx, _: _date_time(ctx.time_from),
    "toTime": lambda ctx, _: _date_time(ctx.time_to),
    "fromTime_ms": lambda ctx, _: _date_time_ms(ctx.time_from),
    "toTime_ms": lambda ctx, _: _date_time_ms(ctx.time_to),
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda ctx, _: str(_interval_s(ctx)),
}
"""The plugin's macros by name, each written as the plugin writes it."""

_MACRO = re.compile(r"\$__(\w+)")


def apply_macros(sql: str, ctx: QueryContext) -> str:
    """Replace every `$__name` or `$__name(args)`; an unknown name is an error."""
    out, done = [], 0
    for match in _MACRO.finditer(sql):
        if match.start() < done:
            continue
        name = match.group(1)
        macro = MACROS.get(name)
        if macro is None:
            msg = (
                f"$__{name} is not a macro of the ClickHouse plugin; "
                f"use one of {', '.join(sorted(MACROS))}"
            )
            raise MacroError(msg)
        args: list[str] = []
        end = match.end()
        if sql.startswith("(", end):
            raw, end = split_args(sql, end)
            args = [arg.strip() for arg in raw]
        out.append(sql[done : match.start()] + macro(ctx, args))
        done = end
    return "".join(out) + sql[done:]
