"""Run options: parsed from a request, stored as the run's `kwargs` and read back; rows written
by earlier releases read back too, and `kwargs` shows what the client sent."""

from __future__ import annotations

from agent_runtime.runs.options import RunOptions


def test_run_options_defaults() -> None:
    options = RunOptions()
    assert options.stream_mode == ("values",)
    assert options.config == {}
    assert options.context == {}
    assert options.on_disconnect == "continue"
    assert options.on_completion == "delete"
    assert options.multitask_strategy == "enqueue"
    assert options.if_not_exists == "reject"
    assert options.durability is None
    assert options.stateless is False
    assert options.to_json() == {"stream_mode": ["values"], "stateless": False}


def test_run_options_from_request_keeps_what_the_client_sent() -> None:
    body = {
        "assistant_id": "agent",
        "metadata": {"m": 1},
        "tags": ["t"],
        "input": {"messages": "hi"},
        "stream_mode": ["updates", "values", "updates"],
        "stream_subgraphs": False,
        "stream_resumable": False,
        "interrupt_before": ["tools"],
        "on_disconnect": "continue",
        "after_seconds": 1.5,
    }
    options = RunOptions.from_request(body, stateless=True)
    assert options.stream_mode == ("updates", "values")
    assert options.interrupt_before == ("tools",)
    assert options.stateless is True
    # Defaults the client named stay in `kwargs`, as they always did.
    assert options.to_json() == {
        "input": {"messages": "hi"},
        "stream_mode": ["updates", "values"],
        "stream_subgraphs": False,
        "stream_resumable": False,
        "interrupt_before": ["tools"],
        "on_disconnect": "continue",
        "after_seconds": 1.5,
        "stateless": True,
    }


def test_run_options_from_request_one_mode_as_a_string() -> None:
    options = RunOptions.from_request({"assistant_id": "a", "stream_mode": "messages-tuple"})
    assert options.stream_mode == ("messages-tuple",)
    assert options.to_json()["stream_mode"] == ["messages-tuple"]


def test_run_options_from_request_command_drops_the_input() -> None:
    body = {"assistant_id": "a", "input": {}, "command": {"resume": "yes"}}
    options = RunOptions.from_request(body)
    assert options.input is None
    assert options.command == {"resume": "yes"}
    assert options.to_json() == {
        "command": {"resume": "yes"},
        "stream_mode": ["values"],
        "stateless": False,
    }


def test_run_options_from_request_checkpoint_during_becomes_durability() -> None:
    assert RunOptions.from_request({"checkpoint_during": True}).durability == "async"
    off = RunOptions.from_request({"checkpoint_during": False})
    assert off.durability == "exit"
    assert "checkpoint_during" not in off.to_json()
    both = RunOptions.from_request({"checkpoint_during": False, "durability": "sync"})
    assert both.durability == "sync"


def test_run_options_round_trip() -> None:
    options = RunOptions(
        input={"n": 1},
        config={"configurable": {"user": "u"}},
        context={"delay": 0},
        checkpoint={"checkpoint_id": "c1", "checkpoint_ns": ""},
        interrupt_after="*",
        stream_mode=("values", "messages-tuple"),
        stream_subgraphs=True,
        on_disconnect="cancel",
        multitask_strategy="rollback",
        on_completion="keep",
        durability="exit",
        webhook="http://localhost:9/hook",
        strict_resume=True,
        stateless=True,
    )
    assert RunOptions.from_json(options.to_json()) == options
    assert RunOptions.from_json(options.to_json()).to_json() == options.to_json()


def test_run_options_read_rows_of_the_previous_release() -> None:
    # What 0.x stored: the request's keys as sent, plus `stream_mode` and `stateless`.
    stored = {
        "input": {"steps": []},
        "context": {"delay": 0},
        "stream_mode": ["values"],
        "stream_resumable": False,
        "feedback_keys": ["ignored"],
        "a_key_from_a_later_release": 1,
        "stateless": False,
    }
    options = RunOptions.from_json(stored)
    assert options.input == {"steps": []}
    assert options.context == {"delay": 0}
    assert options.stream_mode == ("values",)
    assert options.to_json() == {
        "input": {"steps": []},
        "context": {"delay": 0},
        "stream_mode": ["values"],
        "stream_resumable": False,
        "stateless": False,
    }


def test_run_options_tolerate_missing_and_odd_keys() -> None:
    assert RunOptions.from_json({}) == RunOptions()
    odd = RunOptions.from_json({"stream_mode": [], "config": None, "context": None})
    assert odd == RunOptions()
    assert RunOptions.from_json({"stream_mode": "updates"}).stream_mode == ("updates",)
