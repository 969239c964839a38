"""The inspector page's files at /ui: shipped inside the package, served with a strict CSP,
public like /docs while the API behind it stays guarded, and turned off by `http.disable_ui`
and `--no-ui`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runtime import cli
from agent_runtime.cli_options import CONFIG_ENV, NO_UI_ENV, build_parser, read_command
from agent_runtime.config import load_config
from agent_runtime.errors import ConfigError
from agent_runtime.server.inspector import CONTENT_SECURITY_POLICY, load_assets
from tests.conftest import ROOT, RunningServer, example_config

UI_FILES = {
    "index.html", "style.css", "app.js", "api.js", "dom.js", "threads.js", "thread.js",
    "conversation.js", "live.js", "timetravel.js", "tree.js", "assistants.js", "graph.js",
}  # fmt: skip


def test_the_page_files_are_package_resources() -> None:
    folder = files("agent_runtime.server").joinpath("ui")
    assert {entry.name for entry in folder.iterdir()} == UI_FILES
    assert set(load_assets()) == UI_FILES


def test_every_module_the_page_imports_is_shipped() -> None:
    assets = load_assets()
    for name, asset in assets.items():
        if name.endswith(".js"):
            for imported in re.findall(r'from "\./([\w.]+)"', asset.body.decode()):
                assert imported in assets, f"{name} imports {imported}, which is not shipped"


def test_the_wheel_carries_the_page(tmp_path: Path) -> None:
    subprocess.run(
        # With build isolation: the build needs the setuptools pyproject.toml names, not the venv's.
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("agent_runtime-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"agent_runtime/server/ui/{name}" for name in UI_FILES} <= names


async def test_the_page_is_served_with_a_strict_policy(database: Path) -> None:
    server = await RunningServer(example_config(database)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            page = await raw.get("/ui")
            script = await raw.get("/ui/app.js")
            style = await raw.get("/ui/style.css")
            again = await raw.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]})
            slash = await raw.get("/ui/")
            missing = await raw.get("/ui/secret.py")
            escape = await raw.get("/ui/..%2Fapp.py")
    finally:
        await server.stop()

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline script or style the policy would have to allow.
    assert "<script>" not in page.text and "<style" not in page.text and " style=" not in page.text
    assert '<script type="module" src="/ui/app.js">' in page.text
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert again.status_code == 304
    assert (slash.status_code, slash.headers["location"]) == (308, "/ui")
    assert missing.status_code == escape.status_code == 404
    assert missing.json()["code"] == "route_not_found"


def test_the_scripts_never_write_markup() -> None:
    for name, asset in load_assets().items():
        text = asset.body.decode()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{name} uses {sink}"


async def test_the_page_is_public_and_the_api_it_calls_is_not(database: Path) -> None:
    config = load_config(
        ROOT / "langgraph.json", database=database, environ={"AGENT_RUNTIME_API_KEY": "sesame"}
    )
    server = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            page = await raw.get("/ui")
            script = await raw.get("/ui/api.js")
            refused = await raw.post("/threads/search", json={})
            allowed = await raw.post("/threads/search", json={}, headers={"x-api-key": "sesame"})
    finally:
        await server.stop()

    assert (page.status_code, script.status_code) == (200, 200)
    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_disable_ui_removes_the_page(tmp_path: Path) -> None:
    project = json.loads((ROOT / "langgraph.json").read_text())
    project["dependencies"] = [str(ROOT)]
    project["graphs"] = {"chat": str(ROOT / "graphs" / "chat.py") + ":graph"}
    project["http"] = {"disable_ui": True}
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps(project))
    config = load_config(path, database=tmp_path / "db.sqlite", environ={})
    assert config.http.disable_ui is True
    server = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            page = await raw.get("/ui")
            script = await raw.get("/ui/app.js")
            docs = await raw.get("/docs")
    finally:
        await server.stop()
    assert (page.status_code, script.status_code, docs.status_code) == (404, 404, 200)
    assert page.json()["code"] == "route_not_found"


def test_disable_ui_must_be_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "http": {"disable_ui": "yes"}}))
    (tmp_path / "g.py").write_text("graph = None\n")
    with pytest.raises(ConfigError, match=r"http\.disable_ui"):
        load_config(path, database=tmp_path / "db.sqlite", environ={})


def test_no_ui_flag_turns_the_page_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for command in ("dev", "serve"):
        args = build_parser().parse_args([command, "--no-ui"])
        assert read_command(args, {}).ui is False
        args = build_parser().parse_args([command])
        assert read_command(args, {}).ui is True
    config = example_config(Path("unused.sqlite"))
    assert cli.without_ui(config).http.disable_ui is True
    assert replace(config).http.disable_ui is False


def test_reload_children_keep_no_ui(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(ROOT / "langgraph.json"))
    monkeypatch.setenv("AGENT_RUNTIME_DATABASE", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv(NO_UI_ENV, "1")
    paths = _paths(cli._reload_app())
    assert "/ui" not in paths and "/docs" in paths
    monkeypatch.delenv(NO_UI_ENV)
    assert "/ui" in _paths(cli._reload_app())


def _paths(app: Any) -> set[str]:
    # Inside the CLI's wrappers (the access log, the start-up report).
    while not hasattr(app, "routes"):
        app = app.app
    return {getattr(route, "path", "") for route in app.routes}
