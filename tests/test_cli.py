from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

import agent_runtime
from agent_runtime.cli import _studio_line, dev_defaults
from agent_runtime.cli_options import build_parser, read_command
from agent_runtime.config import CheckpointCacheConfig, CorsConfig, HttpConfig, load_config
from agent_runtime.errors import ConfigError

ECHO = Path(__file__).parent / "fixtures" / "echo"
SRC = Path(agent_runtime.__file__).resolve().parents[1]


def _environ(**extra: str) -> dict[str, str]:
    # The package's own folder on the path, so the tests pass from any working directory and
    # without an install; no AGENT_RUNTIME_* leaking in from the shell running the tests.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environ.get("PYTHONPATH")]))
    return {**environ, **extra}


def _cli(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime.cli", *args],
        cwd=cwd,
        env=_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _project(folder: Path, graph_source: str, **data: object) -> Path:
    (folder / "agent.py").write_text(graph_source)
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"agent": "./agent.py:graph"}, **data}))
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other process already serves on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def _wait_ok(url: str, process: subprocess.Popen[str], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited before it answered"
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url}/ok did not answer 200 within {seconds} s")


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_cli_prints_its_version(tmp_path: Path) -> None:
    result = _cli("--version", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout == f"agent-runtime {agent_runtime.__version__}\n"


def test_cli_reports_a_missing_config_in_one_line(tmp_path: Path) -> None:
    result = _cli("dev", "--no-reload", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == f"agent-runtime: {tmp_path}/langgraph.json: file not found\n"
    assert result.stdout == ""


def test_cli_reports_an_invalid_config_value_in_one_line(tmp_path: Path) -> None:
    config = _project(tmp_path, "graph = None\n", agent_runtime={"max_body_bytes": -1})

    result = _cli("serve", "--config", str(config), cwd=Path.cwd())

    assert result.returncode == 2
    assert result.stderr == (
        "agent-runtime: langgraph.json: agent_runtime.max_body_bytes: "
        "expected a positive integer, got -1\n"
    )


def test_cli_stops_on_a_graph_that_fails_to_import(tmp_path: Path) -> None:
    _project(tmp_path, "import not_installed_dependency\n", agnet_runtime={})

    result = _cli("dev", "--no-reload", "--no-browser", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "agent-runtime: warning: langgraph.json: agnet_runtime is not a known key; "
        "did you mean agent_runtime?",
        'agent-runtime: Graph "agent" (./agent.py:graph) failed to import: '
        "ModuleNotFoundError: No module named 'not_installed_dependency'",
    ]
    assert result.stdout == ""


def test_cli_reports_a_busy_port_and_does_not_move(tmp_path: Path, listening: int) -> None:
    result = _cli(
        "dev",
        "--no-reload",
        "--config",
        str(ECHO / "langgraph.json"),
        "--port",
        str(listening),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"agent-runtime: port {listening} on 127.0.0.1 is already in use; "
        "stop the other server or pass --port\n"
    )


def test_cli_takes_the_port_from_the_environment(tmp_path: Path, listening: int) -> None:
    config = str(ECHO / "langgraph.json")

    busy = _cli(
        "serve",
        "--host",
        "127.0.0.1",
        cwd=tmp_path,
        AGENT_RUNTIME_PORT=str(listening),
        AGENT_RUNTIME_CONFIG=config,
    )
    invalid = _cli("serve", "--config", config, cwd=tmp_path, AGENT_RUNTIME_PORT="http")

    assert busy.returncode == 1
    assert f"port {listening} on 127.0.0.1 is already in use" in busy.stderr
    assert invalid.returncode == 2
    assert invalid.stderr == (
        'agent-runtime: AGENT_RUNTIME_PORT: expected a port number (0-65535), got "http"\n'
    )


def test_cli_dev_serves_the_config_until_stopped(tmp_path: Path) -> None:
    port = _free_port()
    database = tmp_path / "data" / "runtime.sqlite"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent_runtime.cli",
            "dev",
            "--no-reload",
            "--port",
            str(port),
            "--config",
            str(ECHO / "langgraph.json"),
            "--database",
            str(database),
        ],
        cwd=tmp_path,
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_ok(f"http://127.0.0.1:{port}", process)
        assert database.exists()
    finally:
        returncode = _stop(process)
    assert process.stdout is not None
    stdout = process.stdout.read()
    process.stdout.close()

    assert returncode == 0
    assert stdout.splitlines()[:7] == [
        f"agent-runtime dev: serving {ECHO / 'langgraph.json'}",
        "  graph echo: ./graph.py:graph",
        f"  database: {database}",
        f"  API: http://127.0.0.1:{port}  docs: http://127.0.0.1:{port}/docs",
        f"  UI: http://127.0.0.1:{port}/ui",
        f"  Studio: https://smith.langchain.com/studio/?baseUrl=http://127.0.0.1:{port}",
        "  checkpoint cache: every reuse checked against storage (a development default;"
        ' "checkpoint_cache": {"verify": false} turns it off)',
    ]


def test_dev_checks_the_checkpoint_cache_unless_the_config_says(tmp_path: Path) -> None:
    unset = load_config(ECHO / "langgraph.json", environ={})
    assert unset.checkpoint_cache.verify is None
    assert dev_defaults(unset).checkpoint_cache.verify is True
    for said in (False, True):
        configured = replace(unset, checkpoint_cache=CheckpointCacheConfig(verify=said))
        assert dev_defaults(configured).checkpoint_cache.verify is said


def test_dev_allows_local_pages_and_studio_unless_the_config_says(tmp_path: Path) -> None:
    unset = load_config(ECHO / "langgraph.json", environ={})
    configured = replace(unset, http=HttpConfig(cors=CorsConfig(allow_origins=("https://a.b",))))

    assert unset.http.cors is None
    assert dev_defaults(unset).http.cors == CorsConfig(
        allow_origins=("https://smith.langchain.com",),
        allow_origin_regex=r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?",
    )
    assert dev_defaults(configured).http == configured.http


def test_dev_names_the_studio_link_or_how_to_allow_studio() -> None:
    config = dev_defaults(load_config(ECHO / "langgraph.json", environ={}))
    elsewhere = replace(config, http=HttpConfig(cors=CorsConfig(allow_origins=("https://a.b",))))

    assert _studio_line(config, "http://[::1]:2024") == (
        "Studio: https://smith.langchain.com/studio/?baseUrl=http://[::1]:2024"
    )
    assert _studio_line(elsewhere, "http://127.0.0.1:2024") == (
        "Studio: add https://smith.langchain.com to http.cors.allow_origins in langgraph.json "
        "to use it"
    )


def test_cli_dev_reloads_on_project_edits_but_not_in_a_virtualenv(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ECHO, project)
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "site.py").write_text("x = 1\n")
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_runtime.cli", "dev", "--no-browser", "--port", str(port)],
            cwd=project,
            env=_environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        _wait_ok(f"http://127.0.0.1:{port}", process)
        time.sleep(1)  # the reloader records modification times on its first pass
        (project / ".venv" / "lib" / "site.py").write_text("x = 2\n")
        time.sleep(1.5)
        assert "Reloading" not in log.read_text()

        (project / "graph.py").write_text((project / "graph.py").read_text() + "\n# edited\n")
        deadline = time.monotonic() + 20
        while "detected changes in 'graph.py'" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        _wait_ok(f"http://127.0.0.1:{port}", process)
    finally:
        returncode = _stop(process)

    assert returncode == 0
    assert "Stopping reloader process" in log.read_text()


def _echo(url: str) -> str:
    response = httpx.post(
        f"{url}/runs/wait", json={"assistant_id": "echo", "input": {"text": "hi"}}, timeout=10
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["text"]
    return text


def test_cli_dev_starts_without_its_env_file_and_loads_it_once_created(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ECHO, project)
    config = json.loads((project / "langgraph.json").read_text())
    (project / "langgraph.json").write_text(json.dumps({**config, "env": ".env"}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent_runtime.cli", "dev", "--no-browser", "--port", str(port)],
            cwd=project,
            env=_environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        _wait_ok(url, process)
        assert _echo(url) == "hi"
        time.sleep(1)  # the reloader's first pass records what exists

        (project / ".env").write_text('ECHO_PREFIX="from env: "\n')
        deadline = time.monotonic() + 20
        while "detected changes in '.env'" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        # The old server may answer until the new one has taken over: ask until it says so.
        answer = ""
        while answer != "from env: hi":
            assert time.monotonic() < deadline, (answer, log.read_text())
            with contextlib.suppress(httpx.TransportError, AssertionError):
                answer = _echo(url)
            time.sleep(0.1)
    finally:
        returncode = _stop(process)

    assert returncode == 0
    assert log.read_text().splitlines()[0] == (
        f"agent-runtime: warning: langgraph.json: env: .env does not exist "
        f"(resolved to {project}/.env); no variables are loaded from it"
    )


FAILING_GRAPH = """
from typing import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict):
    text: str


def explode(state: State) -> State:
    raise ValueError("the graph failed on purpose")


graph = StateGraph(State).add_node(explode).add_edge(START, "explode").compile()
"""


def test_cli_log_flags_and_environment_map_onto_the_command() -> None:
    def command(*args: str, **environ: str) -> tuple[str, str, bool]:
        parsed = read_command(build_parser().parse_args(["serve", *args]), environ)
        return parsed.log_level, parsed.server_log_level, parsed.access_log

    assert command() == ("info", "info", True)
    assert command(LOG_LEVEL="DEBUG") == ("debug", "debug", True)
    assert command("--log-level", "warning", LOG_LEVEL="debug") == ("warning", "warning", True)
    assert command("--server-log-level", "ERROR", "--no-access-log") == ("info", "error", False)
    with pytest.raises(ConfigError) as caught:
        command(LOG_LEVEL="loud")
    assert caught.value.detail == (
        "LOG_LEVEL: expected one of critical, error, warning, info, debug, got 'loud'"
    )


def test_cli_reports_an_unknown_log_level(tmp_path: Path) -> None:
    config = str(ECHO / "langgraph.json")

    flag = _cli("serve", "--config", config, "--log-level", "loud", cwd=tmp_path)
    variable = _cli("serve", "--config", config, cwd=tmp_path, LOG_LEVEL="loud")

    assert flag.returncode == 2
    assert "argument --log-level: expected one of critical, error, warning, info, debug" in (
        flag.stderr
    )
    assert variable.returncode == 2
    assert variable.stderr == (
        "agent-runtime: LOG_LEVEL: expected one of critical, error, warning, info, debug, "
        "got 'loud'\n"
    )


@pytest.mark.parametrize(
    ("args", "environ", "shown"),
    [
        (("serve",), {}, {"run": True, "server": True, "access": True}),
        (
            ("serve", "--server-log-level", "warning", "--no-access-log"),
            {"LOG_LEVEL": "info"},
            {"run": True, "server": False, "access": False},
        ),
        (("serve",), {"LOG_LEVEL": "critical"}, {"run": False, "server": False, "access": False}),
        (
            ("dev", "--no-browser", "--no-access-log"),
            {},
            {"run": True, "server": True, "access": False},
        ),
        (("dev", "--no-browser"), {}, {"run": True, "server": True, "access": True}),
    ],
    ids=["defaults", "server-warning-no-access", "env-critical", "dev-reload", "dev-reload-access"],
)
def test_cli_logs_a_failed_run_at_the_levels_asked(
    tmp_path: Path, args: tuple[str, ...], environ: dict[str, str], shown: dict[str, bool]
) -> None:
    config = _project(tmp_path, FAILING_GRAPH)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "agent_runtime.cli", *args),
                *("--config", str(config), "--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=tmp_path,
            env=_environ(**environ),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    try:
        _wait_ok(url, process)
        response = httpx.post(
            f"{url}/runs/wait", json={"assistant_id": "agent", "input": {"text": "x"}}, timeout=10
        )
        assert response.json() == {
            "__error__": {"error": "ValueError", "message": "the graph failed on purpose"}
        }
    finally:
        returncode = _stop(process)

    assert returncode == 0
    logged = err.read_text()
    failure = re.search(
        r"^ERROR: +Run [0-9a-f-]{36} on thread [0-9a-f-]{36} \(graph agent\) failed: "
        r"ValueError: the graph failed on purpose\nTraceback \(most recent call last\):\n",
        logged,
        re.MULTILINE,
    )
    assert (failure is not None) is shown["run"], logged
    assert ('raise ValueError("the graph failed on purpose")' in logged) is shown["run"]
    assert ("INFO:     Started server process" in logged) is shown["server"], logged
    # One line a request: ours, written as the response ends; uvicorn's own is off.
    assert out.read_text().count('"POST /runs/wait HTTP/1.1" 200') == int(shown["access"])


def test_listen_socket_is_tcp_so_nagle_gets_disabled() -> None:
    import socket

    from agent_runtime.cli import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_cli_warns_when_nothing_guards_a_server_beyond_loopback(tmp_path: Path) -> None:
    from dataclasses import replace

    from agent_runtime.cli import exposure_warning

    config = load_config(_project(tmp_path, "graph = None\n"), environ={})

    assert exposure_warning(config, "0.0.0.0") == (
        "warning: listening on 0.0.0.0 with no authentication: anyone who reaches this port "
        'can use every thread; set AGENT_RUNTIME_API_KEY or "auth" in langgraph.json'
    )
    assert exposure_warning(config, "127.0.0.1") is None
    assert exposure_warning(config, "::1") is None
    assert exposure_warning(replace(config, api_key="k"), "0.0.0.0") is None


def test_cli_stops_on_an_auth_file_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("auth = 42\n")
    _project(tmp_path, (ECHO / "graph.py").read_text(), auth={"path": "./auth.py:auth"})

    result = _cli("serve", "--port", "0", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "agent-runtime: auth.path: ./auth.py:auth is an int, not a langgraph_sdk.Auth object; "
        "create one with `auth = Auth()` and name it here\n"
    )


@pytest.mark.parametrize(
    ("args", "allowed", "refused"),
    [
        (("dev", "--no-browser"), None, True),
        (("serve",), None, False),
        (("serve",), ["api.example.com"], True),
    ],
    ids=["dev-reload", "serve", "serve-listed"],
)
def test_cli_answers_only_to_its_names_against_dns_rebinding(
    tmp_path: Path, args: tuple[str, ...], allowed: list[str] | None, refused: bool
) -> None:
    own = {} if allowed is None else {"agent_runtime": {"allowed_hosts": allowed}}
    config = _project(tmp_path, FAILING_GRAPH, **own)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "agent_runtime.cli", *args),
            *("--config", str(config), "--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=tmp_path,
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_ok(url, process)
        rebound = httpx.get(f"{url}/ok", headers={"Host": f"rebind.evil.example:{port}"})
        own_name = httpx.get(f"{url}/ok", headers={"Host": f"localhost:{port}"})
    finally:
        _stop(process)

    assert own_name.status_code == 200
    if refused:
        assert rebound.status_code == 403
        assert rebound.json()["code"] == "host_not_allowed"
    else:
        assert rebound.status_code == 200
