"""Usage arithmetic, and the form storage keeps it in."""

from __future__ import annotations

from agent_runtime.usage import loaded_usage, model_usage, stored_usage, summarize


def test_stored_usage_keeps_the_models_and_loads_back_whole() -> None:
    usage = summarize(
        {
            "gpt": model_usage(1000, 200, {"input_per_million": 3.0, "output_per_million": 15.0}),
            "mini": model_usage(7, 9, {"input_per_million": 0.15}),
        }
    )
    stored = stored_usage(usage)
    assert stored == {"by_model": usage["by_model"]}
    assert loaded_usage(stored) == usage
    assert loaded_usage(None) is None


def test_a_usage_stored_whole_by_an_earlier_release_loads_the_same() -> None:
    usage = summarize({"echo": model_usage(16, 16, None)})
    assert loaded_usage(dict(usage)) == usage
    assert usage["cost_usd"] is None and usage["total_tokens"] == 32
