"""The shadow cost model on a worker: how its parts are wired together.

- the events path sums task usage into the learner's log (`task_usage`);
- a Faust agent forwards valid `spend.tasks` records there (`task_router`);
- one worker of the group learns from the log and publishes snapshots
  (`shadow_learner`);
- every worker follows the snapshots (`shadow_reader`) and answers
  `POST /v1/estimate` against the policy's per-task limits (`estimate_view`).
"""

import faust

from models.estimate import TaskLimits, task_limits_of
from models.policy import load_policy
from streams.estimate_view import install_shadow_views
from streams.ingest import EventIngest
from streams.settings import Settings
from streams.shadow_learner import ShadowLearnerService
from streams.shadow_reader import ShadowReader
from streams.store import Store
from streams.task_router import install_task_router
from streams.task_usage import TaskUsageProcessor
from streams.topics import Topics


def install_shadow(
    app: faust.App, ingest: EventIngest, settings: Settings, store: Store
) -> None:
    """Add the shadow model's processor, agent, services and views to a worker.

    The reader and the learner are hosted by the ingest, so the worker stops
    them right after the events path, while Kafka clients are still up.
    """
    ingest.processors.append(TaskUsageProcessor(ingest, settings))
    install_task_router(app, Topics(settings.topic_prefix))
    reader = ShadowReader(settings)
    learner = ShadowLearnerService(settings, store)
    ingest.add_dependency(reader)
    ingest.add_dependency(learner)
    install_shadow_views(
        app,
        reader,
        learner,
        load_task_limits(settings),
        settings.estimate_max_body_bytes,
        settings.shadow_agent_names,
    )


def load_task_limits(settings: Settings) -> TaskLimits:
    """The `[tasks]` limits of the `SPENDSTREAM_POLICY` file; none without one."""
    if settings.policy is None:
        return TaskLimits()
    return task_limits_of(load_policy(settings.policy))
