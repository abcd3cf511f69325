"""Panel SQL expanded as Grafana's ClickHouse plugin expands it."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from models.grafana_sql import (
    ALL,
    MacroError,
    QueryContext,
    apply_conditional_all,
    expand,
    replace_variables,
)

NOON = datetime(2026, 11, 30, 12, 0, 0, 750_000, tzinfo=UTC)
NOON_S = 1796040000


def ctx(interval_ms: int = 60_000, **variables: str | list[str]) -> QueryContext:
    return QueryContext(NOON, NOON + timedelta(hours=1), interval_ms, variables)


def test_time_filter_compares_with_whole_seconds_of_the_range() -> None:
    end_s = NOON_S + 3600
    assert expand("WHERE $__timeFilter(minute)", ctx()) == (
        f"WHERE minute >= toDateTime({NOON_S}) AND minute <= toDateTime({end_s})"
    )


def test_millisecond_macros_keep_milliseconds() -> None:
    sql = expand("$__timeFilter_ms(ts) OR ts > $__fromTime_ms", ctx())
    low, high = NOON_S * 1000 + 750, (NOON_S + 3600) * 1000 + 750
    assert sql == (
        f"ts >= fromUnixTimestamp64Milli({low}) AND ts <= fromUnixTimestamp64Milli"
        f"({high}) OR ts > fromUnixTimestamp64Milli({low})"
    )


def test_from_and_to_are_date_times() -> None:
    assert expand("$__fromTime, $__toTime", ctx()) == (
        f"toDateTime({NOON_S}), toDateTime({NOON_S + 3600})"
    )


@pytest.mark.parametrize(
    ("interval_ms", "seconds"), [(60_000, 60), (90_900, 90), (200, 1), (0, 1)]
)
def test_time_interval_buckets_by_whole_seconds_at_least_one(
    interval_ms: int, seconds: int
) -> None:
    sql = expand("$__timeInterval(ts) AS time, x / $__interval_s", ctx(interval_ms))
    assert sql == (
        f"toStartOfInterval(toDateTime(ts), INTERVAL {seconds} second) AS time, "
        f"x / {seconds}"
    )


def test_date_filter_uses_utc_dates_whatever_the_zone_of_the_range() -> None:
    tokyo = timezone(timedelta(hours=9))
    late = QueryContext(
        datetime(2026, 11, 30, 20, 0, tzinfo=UTC).astimezone(tokyo),
        datetime(2026, 12, 1, 20, 0, tzinfo=UTC).astimezone(tokyo),
        60_000,
    )
    assert expand("$__dateFilter(day)", late) == (
        "day >= toDate('2026-11-30') AND day <= toDate('2026-12-01')"
    )


def test_conditional_all_drops_the_condition_when_all_or_empty() -> None:
    sql = "a AND $__conditionalAll(agent IN ($agent), $agent) AND b"
    assert apply_conditional_all(sql, {"agent": [ALL]}) == "a AND 1=1 AND b"
    assert apply_conditional_all(sql, {"agent": ""}) == "a AND 1=1 AND b"


def test_conditional_all_keeps_a_selection_quoted_and_joined() -> None:
    sql = "$__conditionalAll(lower(agent) IN (${agent}), ${agent})"
    assert expand(sql, ctx(agent=["copywriter", "db-agent"])) == (
        "lower(agent) IN ('copywriter','db-agent')"
    )


def test_a_single_value_variable_goes_in_as_it_is() -> None:
    assert expand("LIMIT $top", ctx(top="10")) == "LIMIT 10"
    assert expand("LIMIT [[top]]", ctx(top="10")) == "LIMIT 10"


def test_every_conditional_all_of_a_query_is_expanded() -> None:
    sql = (
        "$__conditionalAll(principal IN ($department), $department) AND "
        "$__conditionalAll(session_id IN ($session), $session)"
    )
    assert expand(sql, ctx(department=["research"], session=[ALL])) == (
        "principal IN ('research') AND 1=1"
    )


def test_all_outside_conditional_all_is_refused() -> None:
    with pytest.raises(MacroError, match=r"agent is All outside \$__conditionalAll"):
        expand("agent IN ($agent)", ctx(agent=[ALL]))


def test_unknown_variables_and_the_macros_pass_through_variable_replacement() -> None:
    sql = "$__timeFilter(ts) AND x = '$unknown'"
    assert replace_variables(sql, {"agent": ["a"]}) == sql


def test_a_macro_name_is_matched_whole() -> None:
    assert "fromUnixTimestamp64Milli" in expand("$__timeFilter_ms(ts)", ctx())
    with pytest.raises(MacroError, match=r"\$__timeFilters is not a macro"):
        expand("$__timeFilters(ts)", ctx())


def test_grafana_globals_are_not_plugin_macros() -> None:
    with pytest.raises(MacroError, match=r"\$__interval is not a macro"):
        expand("x / $__interval", ctx())


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("$__timeFilter(a, b)", "takes one column"),
        ("$__timeFilter(ts", "no closing bracket"),
        ("$__conditionalAll(x IN ($agent))", "takes a condition and a variable"),
        ("${agent:csv}", "carries a format"),
    ],
)
def test_malformed_sql_says_what_is_wrong(sql: str, reason: str) -> None:
    with pytest.raises(MacroError, match=reason):
        expand(sql, ctx(agent=["a"]))


def test_a_naive_time_range_is_refused() -> None:
    with pytest.raises(MacroError, match="no time zone"):
        QueryContext(datetime(2026, 11, 30), datetime(2026, 12, 1), 60_000)
