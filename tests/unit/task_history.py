"""A generated task history with a known structure, for the shadow model's tests.

Steps grow with the prompt's length and differ by agent; a prompt that asks for
an exhaustive job takes twice the steps; tokens are steps times the prompt's
tokens plus the agent's own output; cost is tokens times the model's price.
Every quantity carries log-normal noise, so no model can be exact.
"""

import math
import random
from decimal import Decimal

from models.task_features import TaskFeatures
from models.task_tally import TaskActuals

AGENTS = {"coder": (8.0, 1500), "researcher": (5.0, 900), "summariser": (1.5, 300)}
"""Per agent: base steps, output tokens per step."""

PRICES_USD_PER_TOKEN = {"large": 10e-6, "medium": 3e-6, "small": 0.5e-6}
VOCABULARY = [f"term{n}" for n in range(200)]


def generate(n: int, seed: int = 7) -> list[tuple[TaskFeatures, TaskActuals]]:
    """`n` tasks, the same for the same seed."""
    rng = random.Random(seed)
    return [_task(rng) for _ in range(n)]


def _task(rng: random.Random) -> tuple[TaskFeatures, TaskActuals]:
    agent = rng.choice(sorted(AGENTS))
    model = rng.choice(sorted(PRICES_USD_PER_TOKEN))
    n_words = round(math.exp(rng.uniform(math.log(5), math.log(400))))
    words = [rng.choice(VOCABULARY) for _ in range(n_words)]
    exhaustive = rng.random() < 0.2
    if exhaustive:
        words.insert(rng.randrange(len(words) + 1), "exhaustive")
    prompt = " ".join(words)

    base_steps, output_per_step = AGENTS[agent]
    steps_mean = base_steps * (1 + n_words / 100) * (2 if exhaustive else 1)
    steps = max(1, round(steps_mean * _noise(rng, 0.25)))
    tokens = round(steps * (len(prompt) / 4 + output_per_step) * _noise(rng, 0.2))
    cost_usd = Decimal(tokens) * Decimal(repr(PRICES_USD_PER_TOKEN[model]))
    features = TaskFeatures(
        prompt=prompt,
        agent=agent,
        model=model,
        user=f"user{rng.randrange(30)}",
        principal=f"dept{rng.randrange(4)}",
    )
    return features, TaskActuals(steps=steps, tokens=tokens, cost_usd=cost_usd)


def _noise(rng: random.Random, sigma: float) -> float:
    return math.exp(rng.gauss(0.0, sigma))
