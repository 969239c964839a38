from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.config import (
    DEFAULT_MAX_BODY_BYTES,
    AuthCacheConfig,
    AuthConfig,
    CheckpointCacheConfig,
    CorsConfig,
    DatabaseConfig,
    GraphSpec,
    HttpConfig,
    RouteConfig,
    RuntimeConfig,
    apply_env,
    config_from_dict,
    load_config,
    parse_graph_spec,
    redact_uri,
)
from agent_runtime.errors import ConfigError

GRAPH = {"agent": "./agent.py:graph"}


def _project(folder: Path, data: dict[str, Any], *files: str) -> Path:
    """A langgraph.json in `folder` with empty files beside it; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("agent.py", *files):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
    path = folder / "langgraph.json"
    path.write_text(json.dumps(data))
    return path


def _error(folder: Path, data: dict[str, Any], *files: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_project(folder, data, *files), environ={})
    return caught.value.detail


def _config(folder: Path, **data: Any) -> RuntimeConfig:
    return load_config(_project(folder, {"graphs": GRAPH, **data}), environ={})


def _warnings(folder: Path, data: dict[str, Any]) -> tuple[str, ...]:
    return load_config(_project(folder, {"graphs": GRAPH, **data}), environ={}).warnings


def test_load_config_reads_a_minimal_file(tmp_path: Path) -> None:
    path = _project(tmp_path, {"graphs": {"chat": "chat.graph:graph", **GRAPH}})

    config = load_config(path, environ={})

    assert config.path == path
    assert config.base_dir == tmp_path
    assert list(config.graphs.items()) == [
        ("chat", "chat.graph:graph"),
        ("agent", "./agent.py:graph"),
    ]
    assert config.graph_descriptions == {}
    assert config.dependencies == ()
    assert config.env == {}
    assert config.env_file is None
    assert config.store == {}
    assert config.checkpointer == {}
    assert config.http == HttpConfig(cors=None, max_body_bytes=DEFAULT_MAX_BODY_BYTES)
    assert config.database == _sqlite(tmp_path / ".agent-runtime" / "runtime.sqlite")
    assert config.webhooks_allow_private is False
    assert config.warnings == ()


def test_load_config_resolves_paths_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "elsewhere" / "project"
    path = _project(
        project,
        {
            "graphs": {"agent": "./src/agent.py:graph"},
            "dependencies": [".", "./src", "langchain-openai"],
            "env": "config/.env",
            "agent_runtime": {"database": "data/app.sqlite"},
        },
        "src/agent.py",
        "config/.env",
    )
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("elsewhere/project/langgraph.json"), environ={})

    assert config.path == path
    assert config.base_dir == project
    assert config.dependencies == (".", "./src", "langchain-openai")
    assert config.env_file == project / "config" / ".env"
    assert config.database == _sqlite(project / "data" / "app.sqlite")


def test_load_config_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "langgraph.json")

    assert caught.value.detail == f"{tmp_path}/langgraph.json: file not found"


def test_load_config_reports_invalid_json_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text('{\n  "graphs": {\n    "agent": "./agent.py:graph"\n  \n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.detail == (
        f"{path}: invalid JSON at line 5, column 1: Expecting ',' delimiter"
    )


def test_load_config_rejects_a_top_level_array(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text("[]")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.detail == "langgraph.json: expected a JSON object at the top level, got []"


@pytest.mark.parametrize(
    ("graphs", "message"),
    [
        (None, 'graphs: required; map each graph id to "./file.py:attr"'),
        ({}, "graphs: expected a non-empty object, got {}"),
        (["./agent.py:graph"], 'graphs: expected a non-empty object, got ["./agent.py:graph"]'),
        (
            {"agent": "./agent.py"},
            'graphs.agent: expected "./file.py:attr" or "module:attr", got "./agent.py"',
        ),
        (
            {"agent": "pkg.graph"},
            'graphs.agent: expected "./file.py:attr" or "module:attr", got "pkg.graph"',
        ),
        (
            {"agent": "pkg-name.graph:graph"},
            'graphs.agent: expected "./file.py:attr" or "module:attr", got "pkg-name.graph:graph"',
        ),
        ({"agent": 3}, 'graphs.agent: expected "./file.py:attr" or "module:attr", got 3'),
        ({"agent": {"description": "x"}}, "graphs.agent.path: required in the object form"),
        (
            {"agent": {"path": "./agent.py:graph", "description": 3}},
            "graphs.agent.description: expected a non-empty string, got 3",
        ),
        ({"": "./agent.py:graph"}, "graphs: a graph id is empty"),
        (
            {"agent": "./agent.ts:graph"},
            "graphs.agent: ./agent.ts is not a Python file; agent-runtime serves Python graphs",
        ),
    ],
)
def test_load_config_rejects_invalid_graphs(tmp_path: Path, graphs: Any, message: str) -> None:
    data = {} if graphs is None else {"graphs": graphs}

    assert _error(tmp_path, data) == f"langgraph.json: {message}"


def test_load_config_names_the_graph_and_resolved_path_of_a_missing_file(tmp_path: Path) -> None:
    message = _error(tmp_path, {"graphs": {"agent": "./agnt.py:graph"}})

    assert message == (
        f"langgraph.json: graphs.agent: ./agnt.py does not exist (resolved to {tmp_path}/agnt.py)"
    )


def test_load_config_accepts_the_object_form_of_a_graph(tmp_path: Path) -> None:
    graphs = {
        "agent": {"path": "./agent.py:graph", "description": "Answers questions"},
        "plain": {"path": "pkg.graph:make"},
    }

    config = load_config(_project(tmp_path, {"graphs": graphs}), environ={})

    assert config.graphs == {"agent": "./agent.py:graph", "plain": "pkg.graph:make"}
    assert config.graph_descriptions == {"agent": "Answers questions"}


def test_load_config_warns_about_unknown_keys_with_a_suggestion(tmp_path: Path) -> None:
    warnings = _warnings(
        tmp_path,
        {
            "agnet_runtime": {},
            "frobnicate": 1,
            "store": {"indx": {}},
            "http": {"cors": {"allow_origin": ["*"]}},
            "agent_runtime": {"databse": "x.sqlite"},
        },
    )

    assert warnings == (
        "langgraph.json: agnet_runtime is not a known key; did you mean agent_runtime?",
        "langgraph.json: frobnicate is not a known key; it is ignored",
        "langgraph.json: store.indx is not a known key; did you mean index?",
        "langgraph.json: http.cors.allow_origin is not a known key; did you mean allow_origins?",
        "langgraph.json: agent_runtime.databse is not a known key; did you mean database?",
    )


def test_load_config_warns_about_graph_object_keys(tmp_path: Path) -> None:
    graphs = {"agent": {"path": "./agent.py:graph", "descripton": "x"}}

    warnings = load_config(_project(tmp_path, {"graphs": graphs}), environ={}).warnings

    assert warnings == (
        "langgraph.json: graphs.agent.descripton is not a known key; did you mean description?",
    )


def test_load_config_accepts_build_keys_silently(tmp_path: Path) -> None:
    build = {
        "$schema": "https://langgra.ph/schema.json",
        "python_version": "3.11",
        "node_version": "20",
        "pip_config_file": "pip.conf",
        "pip_installer": "uv",
        "dockerfile_lines": ["RUN true"],
        "image_distro": "wolfi",
        "base_image": "langchain/langgraph-api",
        "keep_pkg_tools": True,
        "api_version": "0.4",
        "ui_config": {"shared": []},
    }

    assert _warnings(tmp_path, build) == ()


def test_load_config_warns_about_langgraph_features_it_ignores(tmp_path: Path) -> None:
    warnings = _warnings(
        tmp_path,
        {
            "webhooks": {"env_prefix": "LG_"},
            "ui": {"agent": "./ui.tsx"},
            "checkpointer": {
                "path": "./cp.py:make",
                "ttl": {"default_ttl": 60},
                "serde": {"pickle_fallback": False},
            },
        },
    )

    assert warnings == (
        "langgraph.json: ui is not supported by agent-runtime; UI components are not served",
        "langgraph.json: webhooks is not supported by agent-runtime; "
        "its URL policy and headers are not applied",
        "langgraph.json: checkpointer.path is not supported by agent-runtime; its own one is used",
    )


def test_load_config_reads_the_types_checkpoints_may_decode_to(tmp_path: Path) -> None:
    modules = [["my_agent", "plans", "Plan"], ["my_agent", "Step"]]
    config = _config(tmp_path, checkpointer={"serde": {"allowed_json_modules": modules}})

    assert config.serde.allowed_json_modules == {
        ("my_agent", "plans", "Plan"),
        ("my_agent", "Step"),
    }
    assert config.serde.msgpack_types() == {("my_agent.plans", "Plan"), ("my_agent", "Step")}


@pytest.mark.parametrize(
    ("serde", "message"),
    [
        (
            {"pickle_fallback": True},
            "langgraph.json: checkpointer.serde.pickle_fallback: agent-runtime never unpickles "
            "checkpoints (pickled bytes can run any code); remove the key or set it to false",
        ),
        (
            {"allowed_json_modules": True},
            "langgraph.json: checkpointer.serde.allowed_json_modules: true would let stored bytes "
            'construct any type; list each type instead, as ["my_package", "my_module", "MyType"]',
        ),
        (
            {"allowed_json_modules": [["Plan"]]},
            "langgraph.json: checkpointer.serde.allowed_json_modules[0]: expected a module path "
            'and a type name, as ["my_module", "MyType"], got ["Plan"]',
        ),
    ],
)
def test_load_config_refuses_serde_settings_that_run_stored_code(
    tmp_path: Path, serde: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, checkpointer={"serde": serde})

    assert caught.value.detail == message


def test_load_config_warns_about_http_keys_it_ignores(tmp_path: Path) -> None:
    http = {
        "mount_prefix": "/api",
        "disable_threads": True,
        "disable_runs": False,
        "disable_mcp": True,
        "middleware_order": "auth_first",
    }

    assert _warnings(tmp_path, {"http": http}) == (
        "langgraph.json: http.mount_prefix is not supported by agent-runtime; "
        "routes are served from /",
    )


def test_load_config_reads_the_http_route_keys(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("app = None\n")
    http = {
        "app": "./app.py:app",
        "disable_threads": True,
        "disable_meta": True,
        "disable_runs": False,
        "middleware_order": "auth_first",
        "enable_custom_route_auth": True,
    }

    routes = _config(tmp_path, http=http).http.routes

    assert routes == RouteConfig(
        app="./app.py:app",
        custom_route_auth=True,
        middleware_order="auth_first",
        disabled=frozenset({"threads", "meta"}),
    )


def test_load_config_reads_the_auth_section(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("auth = None\n")
    openapi = {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}

    config = _config(
        tmp_path,
        auth={"path": "./auth.py:auth", "disable_studio_auth": True, "openapi": openapi},
        agent_runtime={"auth": {"default": "deny"}},
    )

    assert config.auth == AuthConfig(
        path="./auth.py:auth", disable_studio_auth=True, openapi=openapi, default="deny"
    )


def test_load_config_reads_auth_cache_as_langgraph_defines_it(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text("auth = None\n")
    cache = {"cache_keys": ["Authorization", "X-Tenant"], "ttl_seconds": 30, "max_size": 5}

    config = _config(tmp_path, auth={"path": "./auth.py:auth", "cache": cache})
    defaults = _config(tmp_path, auth={"path": "./auth.py:auth", "cache": {}})

    assert config.auth is not None and defaults.auth is not None
    assert config.auth.cache == AuthCacheConfig(
        cache_keys=("authorization", "x-tenant"), ttl_seconds=30.0, max_size=5
    )
    assert defaults.auth.cache == AuthCacheConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"auth": {"path": "./missing.py:auth"}}, "auth.path: ./missing.py does not exist"),
        ({"auth": {"path": "auth"}}, 'auth.path: expected "./file.py:name" or "module:name"'),
        (
            {"agent_runtime": {"auth": {"default": "deny"}}},
            'agent_runtime.auth.default: "deny" needs an auth file',
        ),
        (
            {"auth": {"path": "m:auth"}, "agent_runtime": {"auth": {"default": "no"}}},
            'agent_runtime.auth.default: expected "allow" or "deny", got "no"',
        ),
        ({"http": {"middleware_order": "first"}}, "http.middleware_order: expected"),
        (
            {"auth": {"path": "m:auth", "cache": {"ttl_seconds": 0}}},
            "auth.cache.ttl_seconds: expected a positive number, got 0",
        ),
        (
            {"auth": {"path": "m:auth", "cache": {"cache_keys": []}}},
            "auth.cache.cache_keys: name at least one header",
        ),
        (
            {"http": {"disable_store": "yes"}},
            'http.disable_store: expected true or false, got "yes"',
        ),
    ],
)
def test_load_config_refuses_bad_auth_and_route_keys(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, **data)

    assert message in caught.value.detail


def test_load_config_reads_the_api_key_from_the_environment(tmp_path: Path) -> None:
    folder = _project(tmp_path, {"graphs": GRAPH})

    assert (
        load_config(folder, environ={"AGENT_RUNTIME_API_KEY": "s3cret-key"}).api_key == "s3cret-key"
    )
    assert load_config(folder, environ={}).api_key is None
    assert "s3cret" not in repr(load_config(folder, environ={"AGENT_RUNTIME_API_KEY": "s3cret"}))


def test_load_config_reads_cors_over_defaults(tmp_path: Path) -> None:
    cors = {
        "allow_origins": ["https://app.example.com"],
        "allow_credentials": True,
        "allow_origin_regex": r"^https://.*\.example\.com$",
        "max_age": 0,
    }

    config = load_config(_project(tmp_path, {"graphs": GRAPH, "http": {"cors": cors}}), environ={})

    assert config.http.cors == CorsConfig(
        allow_origins=("https://app.example.com",),
        allow_methods=("*",),
        allow_headers=("*",),
        allow_credentials=True,
        allow_origin_regex=r"^https://.*\.example\.com$",
        expose_headers=("Content-Location", "Location"),
        max_age=0,
    )


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ([], "http: expected an object, got []"),
        ({"cors": True}, "http.cors: expected an object, got true"),
        (
            {"cors": {"allow_origins": "*"}},
            'http.cors.allow_origins: expected a list of strings, got "*"',
        ),
        (
            {"cors": {"allow_credentials": "yes"}},
            'http.cors.allow_credentials: expected true or false, got "yes"',
        ),
        ({"cors": {"max_age": -1}}, "http.cors.max_age: expected a non-negative integer, got -1"),
        (
            {"cors": {"allow_origins": ["https://a.example", "*"], "allow_credentials": True}},
            "http.cors.allow_credentials: cannot be true while http.cors.allow_origins "
            'contains "*"; list the origins',
        ),
        (
            {"cors": {"allow_origin_regex": "("}},
            "http.cors.allow_origin_regex: invalid regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
    ],
)
def test_load_config_rejects_invalid_http(tmp_path: Path, http: Any, message: str) -> None:
    assert _error(tmp_path, {"graphs": GRAPH, "http": http}) == f"langgraph.json: {message}"


def test_load_config_reads_our_own_section(tmp_path: Path) -> None:
    own = {
        "max_body_bytes": 1024,
        "database": "runtime.db",
        "webhooks_allow_private": True,
        "checkpoint_cache": {"max_mb": 0, "verify": True},
    }

    config = load_config(_project(tmp_path, {"graphs": GRAPH, "agent_runtime": own}), environ={})

    assert config.http.max_body_bytes == 1024
    assert config.database == _sqlite(tmp_path / "runtime.db")
    assert config.webhooks_allow_private is True
    assert config.checkpoint_cache == CheckpointCacheConfig(max_mb=0, verify=True)


def test_load_config_defaults_the_checkpoint_cache(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, {"graphs": GRAPH}), environ={})

    assert config.checkpoint_cache == CheckpointCacheConfig(max_mb=32, verify=None)


@pytest.mark.parametrize(
    ("own", "message"),
    [
        (
            {"max_body_bytes": -1},
            "agent_runtime.max_body_bytes: expected a positive integer, got -1",
        ),
        ({"max_body_bytes": 0}, "agent_runtime.max_body_bytes: expected a positive integer, got 0"),
        (
            {"max_body_bytes": "1mb"},
            'agent_runtime.max_body_bytes: expected a positive integer, got "1mb"',
        ),
        (
            {"max_body_bytes": True},
            "agent_runtime.max_body_bytes: expected a positive integer, got true",
        ),
        ({"database": ""}, 'agent_runtime.database: expected a non-empty string, got ""'),
        (
            {"webhooks_allow_private": "yes"},
            'agent_runtime.webhooks_allow_private: expected true or false, got "yes"',
        ),
        (
            {"checkpoint_cache": {"max_mb": -1}},
            "agent_runtime.checkpoint_cache.max_mb: expected a non-negative integer, got -1",
        ),
        (
            {"checkpoint_cache": {"verify": "on"}},
            'agent_runtime.checkpoint_cache.verify: expected true or false, got "on"',
        ),
        (
            {"checkpoint_cache": 64},
            "agent_runtime.checkpoint_cache: expected an object, got 64",
        ),
    ],
)
def test_load_config_rejects_invalid_own_values(
    tmp_path: Path, own: dict[str, Any], message: str
) -> None:
    assert _error(tmp_path, {"graphs": GRAPH, "agent_runtime": own}) == f"langgraph.json: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dependencies": "."}, 'dependencies: expected a list of strings, got "."'),
        ({"dependencies": [".", 3]}, 'dependencies: expected a list of strings, got [".", 3]'),
        ({"store": 3}, "store: expected an object, got 3"),
        ({"checkpointer": "sqlite"}, 'checkpointer: expected an object, got "sqlite"'),
        ({"env": 3}, "env: expected a path to a .env file or an object of strings, got 3"),
        ({"env": {"PORT": 8000}}, "env.PORT: expected a string, got 8000"),
    ],
)
def test_load_config_rejects_invalid_sections(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    assert _error(tmp_path, {"graphs": GRAPH, **data}) == f"langgraph.json: {message}"


def test_load_config_names_a_missing_dependency_folder(tmp_path: Path) -> None:
    message = _error(tmp_path, {"graphs": GRAPH, "dependencies": [".", "./src"]})

    assert message == (
        f"langgraph.json: dependencies[1]: ./src does not exist (resolved to {tmp_path}/src)"
    )


def test_load_config_warns_of_a_missing_env_file(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, {"graphs": GRAPH, "env": ".env"}), environ={})

    assert config.env == {}
    assert config.env_file == tmp_path / ".env"
    assert config.warnings == (
        f"langgraph.json: env: .env does not exist (resolved to {tmp_path}/.env); "
        "no variables are loaded from it",
    )


def test_load_config_points_a_missing_env_file_at_its_example(tmp_path: Path) -> None:
    # LangChain's templates ship `.env.example` and name `.env` in langgraph.json.
    (tmp_path / ".env.example").write_text("OPENAI_API_KEY=\n")

    config = load_config(_project(tmp_path, {"graphs": GRAPH, "env": ".env"}), environ={})

    assert config.env == {}
    assert config.warnings == (
        f"langgraph.json: env: .env does not exist (resolved to {tmp_path}/.env); "
        "copy .env.example to .env to set its variables",
    )


def test_load_config_keeps_store_and_checkpointer_sections_raw(tmp_path: Path) -> None:
    store = {"index": {"dims": 3, "embed": "fake:embed"}, "ttl": {"default_ttl": 5}}
    checkpointer = {"ttl": {"strategy": "delete", "default_ttl": 60}}

    config = load_config(
        _project(tmp_path, {"graphs": GRAPH, "store": store, "checkpointer": checkpointer}),
        environ={},
    )

    assert config.store == store
    assert config.checkpointer == checkpointer
    assert config.warnings == ()


def test_load_config_resolves_a_store_embed_file_beside_it(tmp_path: Path) -> None:
    index = {"dims": 8, "embed": "./src/embed.py:embeddings", "fields": ["text"]}

    config = load_config(
        _project(tmp_path, {"graphs": GRAPH, "store": {"index": index}}, "src/embed.py"),
        environ={},
    )

    assert config.store == {
        "index": {"dims": 8, "embed": f"{tmp_path}/src/embed.py:embeddings", "fields": ["text"]}
    }


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (
            {"embed": "openai:x"},
            "store.index.dims: is required for semantic search, e.g. "
            '"index": {"dims": 1536, "embed": "openai:text-embedding-3-small"}',
        ),
        (
            {"dims": 8},
            "store.index.embed: is required for semantic search, e.g. "
            '"index": {"dims": 1536, "embed": "openai:text-embedding-3-small"}',
        ),
        ({"dims": 0, "embed": "openai:x"}, "store.index.dims: expected a positive integer, got 0"),
        (
            {"dims": "1536", "embed": "openai:x"},
            'store.index.dims: expected a positive integer, got "1536"',
        ),
        ({"dims": 8, "embed": 3}, "store.index.embed: expected a non-empty string, got 3"),
        (
            {"dims": 8, "embed": "./embed.py:embeddings"},
            "store.index.embed: ./embed.py does not exist (resolved to {tmp}/embed.py)",
        ),
        (
            {"dims": 8, "embed": "openai:x", "fields": [3]},
            'store.index.fields: expected a list of field paths such as ["$"], got [3]',
        ),
        (
            {"dims": 8, "embed": "openai:x", "distance_type": "l2"},
            'store.index.distance_type: expected "cosine", the only one supported, got "l2"',
        ),
        ("openai", 'store.index: expected an object, got "openai"'),
    ],
)
def test_load_config_rejects_an_unusable_store_index(
    tmp_path: Path, index: Any, message: str
) -> None:
    data = {"graphs": GRAPH, "store": {"index": index}}
    expected = message.replace("{tmp}", str(tmp_path))
    assert _error(tmp_path, data) == f"langgraph.json: {expected}"


def test_load_config_reads_an_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "SPACED = spaced value  \n"
        "export EXPORTED=yes\n"
        "INLINE=kept # dropped\n"
        "HASH=a#b\n"
        "EMPTY=\n"
        "SINGLE='single # $literal \\n'\n"
        'DOUBLE="line\\none \\"quoted\\""\n'
        'MULTI="first\n'
        'second"\n'
        "CRLF=windows\r\n"
        "not a variable\n"
        "LAST=last"
    )

    config = load_config(_project(tmp_path, {"graphs": GRAPH, "env": ".env"}), environ={})

    assert config.env == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "EXPORTED": "yes",
        "INLINE": "kept",
        "HASH": "a#b",
        "EMPTY": "",
        "SINGLE": "single # $literal \\n",
        "DOUBLE": 'line\none "quoted"',
        "MULTI": "first\nsecond",
        "CRLF": "windows",
        "LAST": "last",
    }
    assert config.env_file == tmp_path / ".env"
    assert config.warnings == (
        'langgraph.json: env: .env line 14: expected KEY=VALUE, got "not a variable"; '
        "the line is ignored",
    )


def test_load_config_takes_env_as_an_object(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "sk-test", "DEBUG": "1"}

    config = load_config(_project(tmp_path, {"graphs": GRAPH, "env": env}), environ={})

    assert config.env == env
    assert config.env_file is None


def test_apply_env_keeps_variables_already_set() -> None:
    config = config_from_dict(
        {"graphs": {"agent": "pkg.graph:graph"}, "env": {"A": "from file", "B": "from file"}},
        base_dir=Path.cwd(),
        environ={},
    )
    environ = {"A": "explicit"}

    apply_env(config, environ)

    assert environ == {"A": "explicit", "B": "from file"}


def test_load_config_takes_the_database_flag_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _project(tmp_path / "project", {"graphs": GRAPH, "agent_runtime": {"database": "f.db"}})
    monkeypatch.chdir(tmp_path)
    environ = {"AGENT_RUNTIME_DATABASE": "env.db"}

    flagged = load_config(path, environ=environ, database="flag.db")
    assert flagged.database == _sqlite(tmp_path / "flag.db")
    assert load_config(path, environ=environ).database == _sqlite(tmp_path / "env.db")
    assert load_config(path, environ={}).database == _sqlite(tmp_path / "project" / "f.db")
    absolute = load_config(path, environ={"AGENT_RUNTIME_DATABASE": "/abs/x.db"})
    assert absolute.database == _sqlite(Path("/abs/x.db"))


@pytest.mark.parametrize("where", ["flag", "env", "database_uri", "file"])
def test_a_postgres_uri_names_the_postgres_backend_from_anywhere(
    tmp_path: Path, where: str
) -> None:
    uri = "postgresql://user:secret@db.example/agents"
    own = {"database": uri} if where == "file" else {}
    path = _project(tmp_path, {"graphs": GRAPH, "agent_runtime": own})
    environ = {"env": {"AGENT_RUNTIME_DATABASE": uri}, "database_uri": {"DATABASE_URI": uri}}

    config = load_config(
        path, environ=environ.get(where, {}), database=uri if where == "flag" else None
    )

    assert config.database == DatabaseConfig(kind="postgres", uri=uri, pool_size=10)


def test_a_postgres_uri_is_recognised_by_either_scheme(tmp_path: Path) -> None:
    path = _project(tmp_path, {"graphs": GRAPH})

    config = load_config(path, environ={}, database="postgres://localhost/agents")

    assert config.database.kind == "postgres"


def test_database_precedence_is_flag_then_env_then_database_uri_then_file(
    tmp_path: Path,
) -> None:
    path = _project(tmp_path, {"graphs": GRAPH, "agent_runtime": {"database": "file.sqlite"}})
    environ = {
        "AGENT_RUNTIME_DATABASE": "postgresql://h/env",
        "DATABASE_URI": "postgresql://h/platform",
    }

    assert load_config(path, environ=environ, database="postgresql://h/flag").database.uri == (
        "postgresql://h/flag"
    )
    assert load_config(path, environ=environ).database.uri == "postgresql://h/env"
    del environ["AGENT_RUNTIME_DATABASE"]
    assert load_config(path, environ=environ).database.uri == "postgresql://h/platform"
    assert load_config(path, environ={}).database == _sqlite(tmp_path / "file.sqlite")


def test_database_uri_must_be_a_postgres_uri(tmp_path: Path) -> None:
    path = _project(tmp_path, {"graphs": GRAPH})

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"DATABASE_URI": "mysql://u:secret@h/db"})

    assert caught.value.detail == (
        "DATABASE_URI: expected a postgresql:// URI; name a SQLite file with --database or "
        "AGENT_RUNTIME_DATABASE instead"
    )


def test_the_pool_size_comes_from_the_environment_then_the_file(tmp_path: Path) -> None:
    own = {"database": "postgresql://h/db", "postgres_pool_size": 3}
    path = _project(tmp_path, {"graphs": GRAPH, "agent_runtime": own})

    assert load_config(path, environ={}).database.pool_size == 3
    sized = load_config(path, environ={"AGENT_RUNTIME_POOL_SIZE": "7"})
    assert sized.database.pool_size == 7
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"AGENT_RUNTIME_POOL_SIZE": "many"})
    assert caught.value.detail == 'AGENT_RUNTIME_POOL_SIZE: expected a positive integer, got "many"'


def test_prepared_statements_are_on_unless_the_environment_or_the_file_says_off(
    tmp_path: Path,
) -> None:
    path = _project(tmp_path, {"graphs": GRAPH, "agent_runtime": {"database": "postgresql://h/d"}})
    assert load_config(path, environ={}).database.prepared_statements is True
    env = "AGENT_RUNTIME_POSTGRES_PREPARED_STATEMENTS"
    assert load_config(path, environ={env: "false"}).database.prepared_statements is False
    own = {"database": "postgresql://h/d", "postgres_prepared_statements": False}
    off = _project(tmp_path, {"graphs": GRAPH, "agent_runtime": own})
    assert load_config(off, environ={}).database.prepared_statements is False
    assert load_config(off, environ={env: "TRUE"}).database.prepared_statements is True
    with pytest.raises(ConfigError) as caught:
        load_config(off, environ={env: "sometimes"})
    assert caught.value.detail == f'{env}: expected true or false, got "sometimes"'


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://user:secret@db:5432/agents", "postgresql://user:***@db:5432/agents"),
        ("postgres://user@db/agents", "postgres://user@db/agents"),
        ("postgresql://db/agents?password=secret&sslmode=require",
         "postgresql://db/agents?password=***&sslmode=require"),
        ("postgresql://u:p%40ss@db/x", "postgresql://u:***@db/x"),
        ("/var/lib/runtime.sqlite", "/var/lib/runtime.sqlite"),
    ],
)  # fmt: skip
def test_redact_uri_hides_passwords(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_load_config_defaults_the_database_beside_the_config(tmp_path: Path) -> None:
    path = _project(tmp_path, {"graphs": GRAPH})

    config = load_config(path, environ={"AGENT_RUNTIME_DATABASE": ""})

    assert config.database == _sqlite(tmp_path / ".agent-runtime" / "runtime.sqlite")
    assert not (tmp_path / ".agent-runtime").exists()


def test_config_from_dict_validates_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "agent.py").touch()

    config = config_from_dict({"graphs": GRAPH, "extra": 1}, base_dir=tmp_path, environ={})

    assert config.path is None
    assert config.base_dir == tmp_path
    assert config.graphs == GRAPH
    assert config.warnings == ("langgraph.json: extra is not a known key; it is ignored",)
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"graphs": {"a": "./missing.py:g"}}, base_dir=tmp_path, environ={})
    assert caught.value.detail == (
        f"langgraph.json: graphs.a: ./missing.py does not exist (resolved to {tmp_path}/missing.py)"
    )


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("./agent.py:graph", GraphSpec(location="./agent.py", attr="graph", is_file=True)),
        ("src/agent.py:make", GraphSpec(location="src/agent.py", attr="make", is_file=True)),
        ("agent.py:graph", GraphSpec(location="agent.py", attr="graph", is_file=True)),
        ("pkg.sub.graph:graph", GraphSpec(location="pkg.sub.graph", attr="graph", is_file=False)),
        ("pkg:graph", GraphSpec(location="pkg", attr="graph", is_file=False)),
        ("./agent.py", None),
        ("pkg.graph:", None),
        (":graph", None),
        ("pkg.graph:not-an-identifier", None),
    ],
)
def test_parse_graph_spec_splits_files_and_modules(spec: str, parsed: GraphSpec | None) -> None:
    assert parse_graph_spec(spec) == parsed


def _sqlite(path: Path) -> DatabaseConfig:
    return DatabaseConfig(kind="sqlite", uri=str(path))
