"""The breaker policy: built-in defaults, overridden per principal, agent and session.

A policy file (TOML or YAML) and the `policy` object of a `set_policy` command
on `spend.admin` share one shape; every key is optional (`policy.example.toml`):

    version = 1              # the only shape so far
    lateness_s = 30          # an event this far behind the newest still counts
    frozen_ttl_s = 604800    # a frozen session is forgotten after this idle time

    [rules.absolute_usd]     # window_s = limit: trip when the spend is above it
    10 = "1.00"
    60 = "3.00"
    [rules.relative]         # enabled, short_window_s, long_window_s, factor, floor_usd
    [rules.frequency]        # enabled, window_s, max_events

    [principals.NAME]        # the same three tables as [rules], any of them
    [agents.NAME]
    [sessions.ID]

    [tasks]                  # per-task cost limits of POST /v1/estimate, read by
                             # models.estimate.task_limits_of, not by the breaker

Precedence, most specific first: session, agent, principal, `[rules]`, the
built-in defaults. Absolute limits merge per window (`false` switches one off).
A `relative` or `frequency` table replaces the less specific ones as a whole;
its missing keys come from `[rules]`, then the built-ins. Money is a decimal
string or an integer: binary floats are refused. Unknown keys are errors.

>>> policy = parse_policy('[agents.bot.absolute_usd]\\n10 = "2.50"', "toml")
>>> [(r.window_s, r.limit_usd) for r in policy.rules_for("bot", "hr", "s1").absolute]
[(10, Decimal('2.500000000')), (60, Decimal('3.000000000'))]
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from models.errors import PolicyError
from models.rules import (
    DEFAULT_ABSOLUTE_USD,
    AbsoluteRule,
    ExactUsd,
    FrequencyRule,
    RelativeRule,
    RuleSet,
    StrictModel,
    WindowS,
)
from models.validation import Name, explain
from models.windows import DEFAULT_SPEC, WindowSpec

PolicyFormat = Literal["toml", "yaml"]
_FORMATS: dict[str, PolicyFormat] = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_CACHE_MAX = 10_000


def _off_is_none(value: Any) -> Any:
    if value is True:
        raise ValueError(
            "true is not a limit; give an amount, or false to switch it off"
        )
    return None if value is False else value


_Limit = Annotated[ExactUsd | None, BeforeValidator(_off_is_none)]


class _Scope(StrictModel):
    """One `[rules]`, `[principals.X]`, `[agents.X]` or `[sessions.X]` table."""

    absolute_usd: dict[WindowS, _Limit] = Field(default_factory=dict)
    relative: dict[str, Any] | None = None
    frequency: dict[str, Any] | None = None


class _PolicyFile(StrictModel):
    version: Literal[1] = 1
    lateness_s: int = Field(default=DEFAULT_SPEC.lateness_s, ge=0, le=3600)
    frozen_ttl_s: int = Field(default=7 * 86_400, ge=1)
    rules: _Scope = Field(default_factory=_Scope)
    principals: dict[Name, _Scope] = Field(default_factory=dict)
    agents: dict[Name, _Scope] = Field(default_factory=dict)
    sessions: dict[Name, _Scope] = Field(default_factory=dict)
    tasks: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Overrides:
    """What one scope sets; None where it leaves the less specific value."""

    absolute_usd: dict[int, Decimal | None]
    relative: RelativeRule | None = None
    frequency: FrequencyRule | None = None


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        msg = f"invalid policy: {explain(exc, where)}; fix it and load the policy again"
        raise PolicyError(msg) from None


def _overrides(scope: _Scope, rules: _Scope, where: str) -> _Overrides:
    """Validate a scope's tables, filling their missing keys from `[rules]`."""
    found: dict[str, Any] = {}
    for name, model in (("relative", RelativeRule), ("frequency", FrequencyRule)):
        table = getattr(scope, name)
        if table is not None:
            merged = {**(getattr(rules, name) or {}), **table}
            found[name] = _validate(model, merged, f"{where}.{name}")
    return _Overrides(absolute_usd=dict(scope.absolute_usd), **found)


class Policy:
    """A validated policy; `rules_for` answers which rules apply to an event."""

    def __init__(self, parsed: _PolicyFile) -> None:
        self.lateness_s = parsed.lateness_s
        self.frozen_ttl_s = parsed.frozen_ttl_s
        self.tasks = parsed.tasks
        rules = parsed.rules
        self._base = _Overrides(
            absolute_usd={**DEFAULT_ABSOLUTE_USD, **rules.absolute_usd},
            relative=_validate(RelativeRule, rules.relative or {}, "rules.relative"),
            frequency=_validate(
                FrequencyRule, rules.frequency or {}, "rules.frequency"
            ),
        )
        self._scopes = {
            kind: {
                name: _overrides(scope, rules, f"{kind}.{name}")
                for name, scope in getattr(parsed, kind).items()
            }
            for kind in ("principals", "agents", "sessions")
        }
        self._scoped = any(self._scopes.values())
        self.defaults = self._resolve([])
        self._cache: dict[tuple[str | None, ...], RuleSet] = {}
        # The windows and lateness each session's `SpendWindows` needs.
        self.window_spec = WindowSpec(self._windows_s(), lateness_s=self.lateness_s)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Policy":
        """A policy from its dict form, as a `set_policy` command carries it."""
        if not isinstance(data, Mapping):
            kind = type(data).__name__
            raise PolicyError(f"a policy must be a table of keys, got a {kind}")
        return cls(_validate(_PolicyFile, data, ""))

    def rules_for(self, agent: str, principal: str, session_id: str) -> RuleSet:
        """The rules for an event of `agent`, paid by `principal`, in `session_id`."""
        scopes = self._scopes
        if not self._scoped:
            return self.defaults
        key = (
            principal if principal in scopes["principals"] else None,
            agent if agent in scopes["agents"] else None,
            session_id if session_id in scopes["sessions"] else None,
        )
        if key == (None, None, None):
            return self.defaults
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            kinds = ("principals", "agents", "sessions")
            chain = [scopes[k][n] for n, k in zip(key, kinds, strict=True) if n]
            found = self._cache[key] = self._resolve(chain)
        return found

    def _resolve(self, chain: list[_Overrides]) -> RuleSet:
        """Apply `chain`, least specific first, over the policy's defaults."""
        absolute = dict(self._base.absolute_usd)
        relative, frequency = self._base.relative, self._base.frequency
        for scope in chain:
            absolute.update(scope.absolute_usd)
            relative = scope.relative or relative
            frequency = scope.frequency or frequency
        limits = sorted((w, usd) for w, usd in absolute.items() if usd is not None)
        return RuleSet(
            absolute=tuple(AbsoluteRule(w, usd) for w, usd in limits),
            relative=relative if relative and relative.enabled else None,
            frequency=frequency if frequency and frequency.enabled else None,
        )

    def _windows_s(self) -> tuple[int, ...]:
        """Every window any rule of the policy reads, and the built-in ones."""
        found = set(DEFAULT_SPEC.windows_s) | self.defaults.windows_s()
        for scopes in self._scopes.values():
            for scope in scopes.values():
                found |= self._resolve([scope]).windows_s()
        return tuple(sorted(found))


class _DecimalLoader(yaml.SafeLoader):
    """YAML's safe loader with floats read as exact `Decimal`."""


def _yaml_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise PolicyError(f"invalid policy: {text!r} is not a decimal number") from None


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _yaml_decimal)


def _decode(text: str, fmt: PolicyFormat) -> Any:
    if fmt == "toml":
        try:
            return tomllib.loads(text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy is not valid TOML: {exc}") from None
    try:
        return yaml.load(text, Loader=_DecimalLoader) or {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise PolicyError(f"policy is not valid YAML: {reason}") from None


def parse_policy(text: str, fmt: PolicyFormat) -> Policy:
    """A policy from the text of a TOML or YAML file."""
    return Policy.from_dict(_decode(text, fmt))


def _read_table(path: str | Path) -> Any:
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        msg = f"policy file {path} must end in .toml, .yaml or .yml to say its format"
        raise PolicyError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read policy file {path}: {exc}; check SPENDSTREAM_POLICY"
        raise PolicyError(msg) from None
    return _decode(text, fmt)


def load_policy(path: str | Path) -> Policy:
    """A policy from a `.toml`, `.yaml` or `.yml` file (`SPENDSTREAM_POLICY`)."""
    return Policy.from_dict(_read_table(path))


def policy_table(path: str | Path) -> dict[str, Any]:
    """A policy file's table, validated: what a `set_policy` command carries."""
    table = _read_table(path)
    Policy.from_dict(table)
    return dict(table)


DEFAULT_POLICY = Policy.from_dict({})
"""The built-in policy, for a worker started without `SPENDSTREAM_POLICY`."""
