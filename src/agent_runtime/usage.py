"""Token usage and cost: a price table from langgraph.json applied to the tokens each model
reported, and sums over runs. Pure arithmetic; what records usage lives in `runs`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runtime.schema import ModelUsage, Usage

PER_MILLION = 1_000_000


def model_usage(
    input_tokens: int, output_tokens: int, price: Mapping[str, float] | None
) -> ModelUsage:
    """One model's tokens, priced when `price` (USD per million tokens) is known."""
    cost = None
    if price is not None:
        cost = (
            input_tokens * price.get("input_per_million", 0.0)
            + output_tokens * price.get("output_per_million", 0.0)
        ) / PER_MILLION
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost_usd": cost,
    }


def summarize(by_model: Mapping[str, ModelUsage]) -> Usage:
    """Totals over models; the cost is None as soon as one model has no price."""
    costs = [usage["cost_usd"] for usage in by_model.values()]
    return {
        "input_tokens": sum(u["input_tokens"] for u in by_model.values()),
        "output_tokens": sum(u["output_tokens"] for u in by_model.values()),
        "total_tokens": sum(u["total_tokens"] for u in by_model.values()),
        "cost_usd": None
        if any(c is None for c in costs)
        else round(sum(c or 0.0 for c in costs), 10),
        "by_model": dict(by_model),
    }


def add_usage(first: Usage | None, second: Usage | None) -> Usage | None:
    """The sum of two usages, model by model."""
    if first is None or second is None:
        return second if first is None else first
    merged: dict[str, ModelUsage] = dict(first["by_model"])
    for name, usage in second["by_model"].items():
        if name not in merged:
            merged[name] = usage
            continue
        known = merged[name]
        cost_a, cost_b = known["cost_usd"], usage["cost_usd"]
        merged[name] = {
            "input_tokens": known["input_tokens"] + usage["input_tokens"],
            "output_tokens": known["output_tokens"] + usage["output_tokens"],
            "total_tokens": known["total_tokens"] + usage["total_tokens"],
            "cost_usd": None if cost_a is None or cost_b is None else cost_a + cost_b,
        }
    return summarize(merged)


def stored_usage(usage: Usage) -> dict[str, dict[str, ModelUsage]]:
    """What storage keeps of a usage: the models' figures, from which `summarize` rebuilds the
    totals (which repeated them: 70 bytes a run with one model)."""
    return {"by_model": usage["by_model"]}


def loaded_usage(stored: Mapping[str, Any] | None) -> Usage | None:
    """A usage as `stored_usage` kept it, or in full as releases before it did."""
    return None if stored is None else summarize(stored["by_model"])
