"""How metrics and the log format are switched on (flags, variables, langgraph.json keys, the
command's default), the JSON line format itself, and the multiprocess folder of
`serve --workers`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from agent_runtime.cli import _with_process_options, dev_defaults
from agent_runtime.cli_options import build_parser, read_command
from agent_runtime.config import METRICS_ENV, config_from_dict
from agent_runtime.errors import ConfigError
from agent_runtime.log_config import log_config
from agent_runtime.observability.context import add_run_id, run_ids_context
from agent_runtime.observability.log_format import JsonFormatter, RunContextFilter
from agent_runtime.observability.metrics import MULTIPROCESS_ENV, multiprocess_metrics

GRAPHS = {"graphs": {"g": "json:loads"}}


def _config(tmp_path: Path, own: Mapping[str, object] | None = None, **environ: str):
    data = {**GRAPHS, "agent_runtime": own or {}}
    return config_from_dict(data, base_dir=tmp_path, environ=environ)


def test_metrics_are_on_for_serve_and_off_for_dev_unless_asked(tmp_path: Path) -> None:
    def metrics(name: str, *flags: str, own: Mapping[str, object] | None = None, **env: str):
        command = read_command(build_parser().parse_args([name, *flags]), env)
        config = _with_process_options(_config(tmp_path, own, **env), command)
        return (dev_defaults(config) if name == "dev" else config).metrics

    assert metrics("serve") is True
    assert metrics("dev") is False
    assert metrics("dev", "--metrics") is True
    assert metrics("serve", "--no-metrics") is False
    assert metrics("serve", own={"metrics": False}) is False
    assert metrics("dev", own={"metrics": True}) is True
    assert metrics("dev", AGENT_RUNTIME_METRICS="true") is True
    assert metrics("serve", "--metrics", AGENT_RUNTIME_METRICS="false") is True


def test_metrics_settings_name_the_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as variable:
        _config(tmp_path, AGENT_RUNTIME_METRICS="maybe")
    assert variable.value.detail == f'{METRICS_ENV}: expected true or false, got "maybe"'
    with pytest.raises(ConfigError) as key:
        _config(tmp_path, {"metrics": "yes"})
    assert "agent_runtime.metrics" in key.value.detail


def test_log_format_comes_from_the_flag_then_the_variable(tmp_path: Path) -> None:
    def log_format(*flags: str, **env: str) -> str | None:
        return read_command(build_parser().parse_args(["serve", *flags]), env).log_format

    assert log_format() is None
    assert log_format(LOG_FORMAT="JSON") == "json"
    assert log_format("--log-format", "text", LOG_FORMAT="json") == "text"
    with pytest.raises(ConfigError) as caught:
        log_format(LOG_FORMAT="xml")
    assert caught.value.detail == "LOG_FORMAT: expected one of text, json, got 'xml'"
    assert _config(tmp_path, {"log_format": "json"}).log_format == "json"
    with pytest.raises(ConfigError):
        _config(tmp_path, {"log_format": "yaml"})


def test_json_lines_carry_the_run_ids_and_the_error() -> None:
    config = log_config("info", "json")
    assert config["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert config["handlers"]["default"]["filters"] == ["run"]
    assert log_config("info")["formatters"]["default"]["()"] == "uvicorn.logging.DefaultFormatter"
    formatter, context = JsonFormatter(), RunContextFilter()
    with run_ids_context(run_id="r1", thread_id="t1", assistant_id="a1"):
        add_run_id("graph_id", "agent")
        try:
            raise ValueError("boom")
        except ValueError as exc:
            record = logging.makeLogRecord(
                {
                    "name": "agent_runtime.runs",
                    "levelno": logging.ERROR,
                    "levelname": "ERROR",
                    "msg": "Run %s failed",
                    "args": ("r1",),
                    "exc_info": (type(exc), exc, exc.__traceback__),
                    "status": "error",
                }
            )
        assert context.filter(record)
    line = json.loads(formatter.format(record))
    assert line["message"] == "Run r1 failed"
    assert line["level"] == "error"
    assert (line["run_id"], line["thread_id"], line["assistant_id"], line["graph_id"]) == (
        "r1",
        "t1",
        "a1",
        "agent",
    )
    assert line["status"] == "error"
    assert line["error"]["type"] == "ValueError" and line["error"]["message"] == "boom"
    outside = logging.makeLogRecord({"msg": "no run here"})
    assert context.filter(outside)
    assert "run_id" not in json.loads(formatter.format(outside))


def test_serve_workers_get_a_metrics_folder_for_the_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)
    with multiprocess_metrics(False) as off:
        assert off is None
        assert MULTIPROCESS_ENV not in os.environ
    with multiprocess_metrics(True) as process_died:
        folder = Path(os.environ[MULTIPROCESS_ENV])
        assert folder.is_dir()
        # A dead process's live gauges go; its counters stay (nothing here to remove).
        (folder / "gauge_liveall_4242.db").write_bytes(b"")
        assert process_died is not None
        process_died(4242)
        assert not (folder / "gauge_liveall_4242.db").exists()
    assert not folder.exists()
    assert MULTIPROCESS_ENV not in os.environ


def test_a_given_metrics_folder_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MULTIPROCESS_ENV, str(tmp_path))
    with multiprocess_metrics(True):
        assert os.environ[MULTIPROCESS_ENV] == str(tmp_path)
    assert tmp_path.is_dir()
    assert os.environ[MULTIPROCESS_ENV] == str(tmp_path)
