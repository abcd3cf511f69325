"""The shadow cost model: learn from finished tasks, estimate a task before it runs.

A featuriser turns a task's features into a sparse vector: the prompt's
length (log characters, log words; standardised), its words (a bag of words
over the first `BAG_CHARS` characters, normalised to unit length), and who
runs it (agent, model, user, principal, agent x model). Words and identities
are hashed into `hash_features` buckets, so memory stays bounded however many
words and users come. Three heads, one per target (steps, tokens, cost), each
a linear regression on the log scale (`models.shadow_targets`) with a
standardised target, wrapped in a `RegressionJackknife` whose residual
quantiles over the last `residual_window` tasks give the interval.

`model_version` counts published snapshots (`publish`); `n_learnt` counts the
tasks learnt, so an estimate names the exact state that made it.

Known shortcomings:
- The jackknife interval is marginal: it has the same width on the log scale
  for every task, so it is too wide for routine tasks and too narrow for odd
  ones, and for about `residual_window` tasks after warm-up it still holds the
  early model's large residuals (wider, so more approvals). Replace it with
  quantile-loss heads if coverage per agent in `shadow_predictions` strays
  from the nominal level.
- Fields a task record carries beyond prompt, agent, model, user and
  principal are not learnt from; add them to `river_features` when gateways
  send features worth learning.
- A snapshot is a pickle of River objects: it loads only with a compatible
  River; after an upgrade the learner starts afresh and publishes anew.

>>> from decimal import Decimal
>>> from models.task_features import TaskFeatures
>>> from models.task_tally import TaskActuals
>>> model = ShadowModel(min_tasks=2)
>>> task = TaskFeatures(prompt="Summarise the report", agent="writer")
>>> model.predict_one(task).basis
'no_history'
>>> model.learn_one(task, TaskActuals(steps=3, tokens=1200, cost_usd=Decimal("0.01")))
>>> model.predict_one(task).cost_usd.expected
Decimal('0.010000000')
>>> model.learn_one(task, TaskActuals(steps=3, tokens=1200, cost_usd=Decimal("0.01")))
>>> model.predict_one(task).basis
'model'
"""

import json
import math
import pickle
import statistics
from collections.abc import Hashable
from importlib.metadata import version
from typing import Any

from river import compose, conf, feature_extraction, linear_model, preprocessing

from models.errors import SnapshotError
from models.shadow_baseline import AgentBaseline, Basis, Triple
from models.shadow_estimate import Estimate
from models.shadow_targets import TARGETS, Target, from_log, to_log, values_of
from models.task_features import TaskFeatures
from models.task_tally import TaskActuals

BAG_CHARS = 8_000
"""The bag of words reads the prompt's first 8,000 characters: the words past
them add little, and reading 100 kB would take about 10 ms an estimate."""

SNAPSHOT_FORMAT = 1
"""The layout of `to_bytes`; bump it when the model's structure changes."""

_MAGIC = b"spendstream-shadow "
_RIVER = version("river")


class ShadowModel:
    """Online estimates of a task's steps, tokens and cost, with intervals."""

    def __init__(
        self,
        *,
        confidence_level: float = 0.9,
        min_tasks: int = 30,
        residual_window: int = 500,
        hash_features: int = 4096,
        seed: int = 0,
    ) -> None:
        if not 0 < confidence_level < 1 or min_tasks < 0 or residual_window < 1:
            msg = (
                f"need 0 < confidence_level < 1, min_tasks >= 0, residual_window >= 1; "
                f"got {confidence_level}, {min_tasks}, {residual_window}"
            )
            raise ValueError(msg)
        self.confidence_level = confidence_level
        self.min_tasks = min_tasks
        self.model_version = 0
        self.n_learnt = 0
        self._lengths = _lengths()
        self._hashed = _hashed(hash_features, seed)
        self._heads = {t: _head(confidence_level, residual_window) for t in TARGETS}
        z = statistics.NormalDist().inv_cdf(0.5 + confidence_level / 2)
        self._baseline = AgentBaseline(z)

    @property
    def agents(self) -> frozenset[str]:
        """The agents the model has learnt from."""
        return frozenset(self._baseline.per_agent)

    def learn_one(self, features: TaskFeatures, actuals: TaskActuals) -> None:
        """Learn from one finished task."""
        values = values_of(actuals)
        logs = {t: to_log(t, values[t]) for t in TARGETS}
        x = river_features(features)
        self._lengths.learn_one(x)
        vector = self._vector(x)
        for target, head in self._heads.items():
            head.learn_one(vector, logs[target])
        self._baseline.learn_one(features.agent, values)
        self.n_learnt += 1

    def predict_one(self, features: TaskFeatures) -> Estimate:
        """Estimate a task: the model's, or the fallback until `min_tasks`."""
        if self.n_learnt < self.min_tasks:
            return self.predict_baseline(features)
        vector = self._vector(river_features(features))
        triples = {t: _triple(t, head, vector) for t, head in self._heads.items()}
        return self._estimate("model", triples)

    def predict_baseline(self, features: TaskFeatures) -> Estimate:
        """The fallback estimate (the agent's running mean), whatever the warm-up."""
        basis, triples = self._baseline.predict_one(features.agent)
        return self._estimate(basis, triples)

    def predict_then_learn(
        self, features: TaskFeatures, actuals: TaskActuals
    ) -> Estimate:
        """Progressive validation: the estimate made before learning the task."""
        estimate = self.predict_one(features)
        self.learn_one(features, actuals)
        return estimate

    def publish(self) -> bytes:
        """Take a new model version and return its snapshot."""
        self.model_version += 1
        return self.to_bytes()

    def to_bytes(self) -> bytes:
        """A snapshot: a JSON header line, then the pickled model.

        Snapshots are trusted internal data: unpickling runs code, so load
        only what this project's learner wrote to its own snapshot topic,
        never bytes from a client. A loaded model predicts what the saved one
        did, to float rounding: River's weight maps may sum in another order.
        """
        header = json.dumps(self._about()).encode()
        return _MAGIC + header + b"\n" + pickle.dumps(self, pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ShadowModel":
        """Load a snapshot from `to_bytes`; `SnapshotError` says why not."""
        about = snapshot_header(data)
        try:
            model = pickle.loads(data[data.index(b"\n") + 1 :])
        except Exception as exc:  # unpickling a changed class can raise anything
            msg = (
                f"shadow snapshot written with river {about.get('river')} cannot be "
                f"loaded with river {_RIVER}: {exc!r}; publish a new one"
            )
            raise SnapshotError(msg) from None
        if not isinstance(model, cls):
            raise SnapshotError(f"snapshot holds a {type(model).__name__}, no model")
        return model

    def _vector(self, x: dict[str, Any]) -> dict[Hashable, object]:
        """The scaled lengths next to the hashed words and names (int keys).

        Two parts, not one `TransformerUnion`: the union holds copies of its
        parts, and only the length scaler learns (hashing is stateless), so
        learning it alone spares tokenising the prompt twice more.
        """
        return {**self._lengths.transform_one(x), **self._hashed.transform_one(x)}

    def _about(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "river": _RIVER,
            "model_version": self.model_version,
            "n_learnt": self.n_learnt,
        }

    def _estimate(self, basis: Basis, triples: dict[Target, Triple]) -> Estimate:
        return Estimate.of(
            triples,
            basis=basis,
            confidence_level=self.confidence_level,
            model_version=self.model_version,
            n_learnt=self.n_learnt,
        )


def snapshot_header(data: bytes) -> dict[str, Any]:
    """A snapshot's header (format, river, model_version, n_learnt), unpickled."""
    end = data.find(b"\n")
    if not data.startswith(_MAGIC) or end < 0:
        raise SnapshotError("not a shadow model snapshot; check where it came from")
    try:
        about: dict[str, Any] = json.loads(data[len(_MAGIC) : end])
    except ValueError:
        raise SnapshotError("shadow snapshot header is not JSON") from None
    if about.get("format") != SNAPSHOT_FORMAT:
        msg = (
            f"shadow snapshot format {about.get('format')!r} is not "
            f"{SNAPSHOT_FORMAT}; let the learner publish a new snapshot"
        )
        raise SnapshotError(msg)
    return about


def river_features(features: TaskFeatures) -> dict[str, Any]:
    """The raw feature dict the featuriser reads; `?` stands for a missing name."""
    prompt = features.prompt
    return {
        "prompt": prompt[:BAG_CHARS],
        "log_chars": math.log1p(len(prompt)),
        "log_words": math.log1p(len(prompt.split())),
        "agent": features.agent,
        "model": features.model or "?",
        "user": features.user or "?",
        "principal": features.principal or "?",
        "agent_model": f"{features.agent}|{features.model or '?'}",
    }


def _lengths() -> compose.Pipeline:
    return compose.Pipeline(
        compose.Select("log_chars", "log_words"), preprocessing.StandardScaler()
    )


def _hashed(hash_features: int, seed: int) -> compose.Pipeline:
    names = compose.Select("agent", "model", "user", "principal", "agent_model")
    words = compose.Pipeline(
        feature_extraction.BagOfWords(on="prompt"),
        preprocessing.Normalizer(),
        compose.Prefixer("word="),
    )
    return compose.Pipeline(
        compose.TransformerUnion(names, words),
        preprocessing.FeatureHasher(hash_features, seed=seed),
    )


Head = conf.RegressionJackknife[preprocessing.TargetStandardScaler]


def _triple(target: Target, head: Head, vector: dict[Hashable, object]) -> Triple:
    """A head's estimate, widened to hold its point estimate.

    The jackknife adds residual quantiles to the point estimate; when the
    residuals all fall on one side (a model still catching up), the interval
    would not hold the point. Widening it only raises the upper end, which
    is the side a decision reads.
    """
    expected = from_log(target, head.predict_one(vector))
    interval = head.predict_one(vector, with_interval=True)
    lower = min(from_log(target, interval.lower), expected)
    upper = max(from_log(target, interval.upper), expected)
    return expected, lower, upper


def _head(confidence_level: float, residual_window: int) -> Head:
    regressor = preprocessing.TargetStandardScaler(linear_model.LinearRegression())
    return conf.RegressionJackknife(regressor, confidence_level, residual_window)
