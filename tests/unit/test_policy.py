"""Breaker policy: defaults, the file shape, override precedence, errors, rule edges."""

from decimal import Decimal
from pathlib import Path

import pytest

from models.codec import loads
from models.errors import PolicyError
from models.policy import DEFAULT_POLICY, Policy, load_policy, parse_policy
from models.records import AdminCommand
from models.rules import AbsoluteRule, FrequencyRule, RelativeRule, RuleSet
from models.validation import validate
from models.windows import SpendWindows

EXAMPLE = Path(__file__).parents[2] / "policy.example.toml"
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z in ms


def limits(rules: RuleSet) -> dict[int, Decimal]:
    return {rule.window_s: rule.limit_usd for rule in rules.absolute}


def test_built_in_defaults_are_the_issue_s_numbers() -> None:
    rules = DEFAULT_POLICY.defaults
    assert limits(rules) == {10: Decimal("1.00"), 60: Decimal("3.00")}
    assert rules.relative == RelativeRule(
        short_window_s=10, long_window_s=600, factor=Decimal(10), floor_usd="0.25"
    )
    assert rules.frequency == FrequencyRule(window_s=1, max_events=50)
    assert rules == RuleSet.defaults()
    assert DEFAULT_POLICY.window_spec.windows_s == (1, 10, 60, 600)
    assert DEFAULT_POLICY.window_spec.lateness_s == 30
    assert DEFAULT_POLICY.frozen_ttl_s == 7 * 86_400


def test_the_example_file_loads_and_keeps_defaults_for_everyone_else() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.rules_for("bot", "sales", "s1") == RuleSet.defaults()
    research = policy.rules_for("bot", "research", "s1")
    assert limits(research) == {
        10: Decimal("1.00"),
        60: Decimal("10.00"),
        300: Decimal("20.00"),
    }
    assert policy.rules_for("web-crawler", "sales", "s1").frequency == FrequencyRule(
        max_events=400
    )
    loadtest = policy.rules_for("bot", "sales", "loadtest-2026-11")
    assert loadtest.relative is None
    assert limits(loadtest) == {60: Decimal("3.00")}
    assert policy.window_spec.windows_s == (1, 10, 60, 300, 600)


@pytest.mark.parametrize(
    ("agent", "principal", "session_id", "limit_usd"),
    [
        ("other", "other", "other", "1.00"),
        ("other", "dept", "other", "2.00"),
        ("bot", "dept", "other", "3.00"),
        ("bot", "other", "other", "3.00"),
        ("other", "dept", "s1", "4.00"),
        ("bot", "dept", "s1", "4.00"),
    ],
)
def test_most_specific_override_wins(
    agent: str, principal: str, session_id: str, limit_usd: str
) -> None:
    policy = Policy.from_dict(
        {
            "principals": {"dept": {"absolute_usd": {"10": "2.00"}}},
            "agents": {"bot": {"absolute_usd": {"10": "3.00"}}},
            "sessions": {"s1": {"absolute_usd": {"10": "4.00"}}},
        }
    )
    rules = policy.rules_for(agent, principal, session_id)
    assert limits(rules)[10] == Decimal(limit_usd)
    assert limits(rules)[60] == Decimal("3.00")


def test_a_relative_table_replaces_the_less_specific_one_as_a_whole() -> None:
    policy = Policy.from_dict(
        {
            "rules": {"relative": {"factor": 5}},
            "agents": {"bot": {"relative": {"factor": 20}}},
            "sessions": {"s1": {"relative": {"floor_usd": "1.00"}}},
        }
    )
    agent_only = policy.rules_for("bot", "hr", "other").relative
    both = policy.rules_for("bot", "hr", "s1").relative
    assert agent_only is not None and agent_only.factor == 20
    assert both is not None
    assert (both.factor, both.floor_usd) == (5, Decimal("1.00"))


def test_rules_can_be_switched_off() -> None:
    policy = Policy.from_dict(
        {
            "rules": {
                "absolute_usd": {"10": False},
                "relative": {"enabled": False},
                "frequency": {"enabled": False},
            },
            "agents": {"bot": {"frequency": {"max_events": 9}}},
        }
    )
    assert policy.defaults == RuleSet(
        absolute=(AbsoluteRule(60, Decimal("3.00")),), relative=None, frequency=None
    )
    # An override table takes its missing keys from [rules], `enabled` too.
    assert policy.rules_for("bot", "hr", "s").frequency is None


def test_yaml_has_the_same_shape_and_reads_numbers_exactly() -> None:
    text = """
lateness_s: 5
rules:
  absolute_usd: {10: 1.10, 120: "7"}
  relative: {factor: 2.5}
agents:
  bot:
    absolute_usd: {60: off}
"""
    policy = parse_policy(text, "yaml")
    assert limits(policy.defaults) == {
        10: Decimal("1.10"),
        60: Decimal("3.00"),
        120: Decimal(7),
    }
    assert policy.defaults.relative is not None
    assert policy.defaults.relative.factor == Decimal("2.5")
    assert 60 not in limits(policy.rules_for("bot", "hr", "s"))
    assert policy.window_spec.lateness_s == 5
    assert 120 in policy.window_spec.windows_s


def test_a_set_policy_command_carries_the_file_shape() -> None:
    raw = b"""{"command": "set_policy", "ts": "2026-11-01T00:00:00Z",
              "policy": {"rules": {"absolute_usd": {"10": 0.5}}}}"""
    command = validate(AdminCommand, loads(raw))
    assert command.policy is not None
    policy = Policy.from_dict(command.policy)
    assert limits(policy.defaults)[10] == Decimal("0.50")


def test_an_empty_yaml_or_toml_file_is_the_default_policy() -> None:
    assert parse_policy("", "yaml").defaults == RuleSet.defaults()
    assert parse_policy("# nothing\n", "toml").defaults == RuleSet.defaults()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rulez": {}}, r"rulez: extra inputs are not permitted"),
        ({"version": 2}, r"version: input should be 1"),
        ({"lateness_s": -1}, r"lateness_s: input should be greater than or equal"),
        (
            {"rules": {"absolute_usd": {"10": "-1"}}},
            r"rules\.absolute_usd\.10: input should be greater than or equal to 0",
        ),
        ({"rules": {"absolute_usd": {"0": "1"}}}, r"rules\.absolute_usd\.0\.\[key\]"),
        ({"rules": {"absolute_usd": {"10": 1.5}}}, r"binary float 1\.5 is not exact"),
        ({"rules": {"absolute_usd": {"10": True}}}, r"true is not a limit"),
        (
            {"agents": {"bot": {"relative": {"factor": 1}}}},
            r"agents\.bot\.relative\.factor: input should be greater than 1",
        ),
        (
            {"sessions": {"s": {"relative": {"short_window_s": 600}}}},
            r"sessions\.s\.relative: .*short_window_s \(600\) must be below",
        ),
        (
            {"rules": {"frequency": {"max_event": 5}}},
            r"rules\.frequency\.max_event: extra inputs are not permitted",
        ),
        ({"principals": {"hr": {"frequency": {"max_events": 0}}}}, r"max_events"),
        ({"rules": {"relative": {"floor_usd": "abc"}}}, r"floor_usd"),
    ],
)
def test_invalid_policies_name_the_key_and_the_reason(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        Policy.from_dict(data)
    assert str(caught.value).startswith("invalid policy: ")


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("[rules\n", "toml", r"policy is not valid TOML: .*line 1"),
        ("rules: [unclosed", "yaml", r"policy is not valid YAML"),
        ("- 1\n- 2\n", "yaml", r"a policy must be a table of keys, got a list"),
        ("rules: {absolute_usd: {10: .inf}}", "yaml", r"'\.inf' is not a decimal"),
    ],
)
def test_unreadable_policy_text_is_a_policy_error(
    text: str, fmt: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, fmt)  # type: ignore[arg-type]


def test_policy_files_need_a_known_suffix_and_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"must end in \.toml, \.yaml or \.yml"):
        load_policy(tmp_path / "policy.json")
    with pytest.raises(
        PolicyError, match=r"cannot read policy file .*SPENDSTREAM_POLICY"
    ):
        load_policy(tmp_path / "missing.yaml")
    path = tmp_path / "p.yml"
    path.write_text("rules: {frequency: {max_events: 7}}\n")
    assert load_policy(path).defaults.frequency == FrequencyRule(max_events=7)


def windows_with(events: list[tuple[int, str]]) -> SpendWindows:
    w = SpendWindows()
    for ms, cost in events:
        w.add(T0 + ms, Decimal(cost))
    return w


def test_absolute_limit_is_strictly_above() -> None:
    rules = RuleSet.defaults()
    at_limit = windows_with([(0, "0.40"), (9_000, "0.60")])
    assert rules.first_hit(at_limit.velocity()) is None
    at_limit.add(T0 + 9_500, Decimal("0.000000001"))
    hit = rules.first_hit(at_limit.velocity())
    assert hit is not None
    assert (hit.rule, hit.window_s, hit.threshold_usd) == ("absolute", 10, Decimal(1))
    assert hit.spend_usd == Decimal("1.000000001")
    assert hit.rate_usd_per_s == Decimal("0.100000000")


def test_frequency_trips_on_the_fifty_first_event_at_any_cost() -> None:
    rules = RuleSet.defaults()
    w = windows_with([(i * 10, "0") for i in range(50)])
    assert rules.first_hit(w.velocity()) is None
    w.add(T0 + 500, Decimal(0))
    hit = rules.first_hit(w.velocity())
    assert hit is not None
    assert (hit.rule, hit.events, hit.extra["threshold_events"]) == (
        "frequency",
        51,
        50,
    )


def test_relative_compares_with_the_session_s_own_rate() -> None:
    rule = RelativeRule()
    calm = [(s * 10_000, "0.01") for s in range(60)]  # $0.001/s for 10 minutes
    w = windows_with(calm)
    assert rule.check(w.velocity()) is None
    for i in range(6):  # $0.60 within 10 s: below both absolute limits
        w.add(T0 + 600_000 + i * 1_000, Decimal("0.10"))
    hit = rule.check(w.velocity())
    assert hit is not None
    assert (hit.rule, hit.window_s) == ("relative", 10)
    assert hit.spend_usd == Decimal("0.60")
    assert hit.extra["baseline_rate_usd_per_s"] < Decimal("0.002")
    assert hit.threshold_usd < hit.spend_usd


def test_a_young_session_is_compared_with_its_own_short_life() -> None:
    rule = RelativeRule()
    # $0.06/s from the first second: faster than $0.25 per 10 s, but steady.
    w = windows_with([(i * 500, "0.03") for i in range(100)])
    assert w.velocity().spend_usd(10) > Decimal("0.25")
    assert rule.check(w.velocity()) is None
