"""A policy file's table, as a `set_policy` command carries it through JSON."""

from pathlib import Path

import pytest

from models.codec import dumps, loads
from models.errors import PolicyError
from models.policy import Policy, load_policy, policy_table

EXAMPLE = Path(__file__).resolve().parents[2] / "policy.example.toml"


def test_the_example_s_table_through_json_is_the_same_policy() -> None:
    table = policy_table(EXAMPLE)
    sent = Policy.from_dict(loads(dumps(table)))
    loaded = load_policy(EXAMPLE)
    for agent, principal in [("web-crawler", "ops"), ("bot", "research"), ("x", "y")]:
        got = sent.rules_for(agent, principal, "loadtest-2026-11")
        assert got == loaded.rules_for(agent, principal, "loadtest-2026-11")
    assert sent.window_spec == loaded.window_spec


def test_a_bad_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules:\n  absolute:\n    10: '0.5'\n")  # absolute_usd, mistyped
    with pytest.raises(PolicyError, match=r"rules\.absolute"):
        policy_table(bad)
