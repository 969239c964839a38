from __future__ import annotations

import pickle
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.pregel import Pregel
from langgraph.store.memory import InMemoryStore

from agent_runtime.config import RuntimeConfig, config_from_dict
from agent_runtime.errors import GraphLoadError, NotFoundError
from agent_runtime.registry import (
    NAMESPACE_GRAPH,
    GraphRegistry,
    GraphSource,
    check_graphs,
    default_assistant_id,
    import_graphs,
)

# A graph file in every shape the registry accepts.
GRAPHS = """
from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

CALLS: list[object] = []


@dataclass
class Settings:
    greeting: str = "hello"


class State(TypedDict):
    text: str


def shout(state: State) -> State:
    return {"text": state["text"].upper()}


builder = StateGraph(State)
builder.add_node("shout", shout)
builder.add_edge(START, "shout")
builder.add_edge("shout", END)
graph = builder.compile()
number = 42
broken = StateGraph(State)


def make_graph(config):
    CALLS.append(config)
    return builder.compile()


def make_plain():
    return builder


async def make_async(config):
    CALLS.append(config)
    return builder.compile()


def make_nothing():
    return {"not": "a graph"}


def make_two(config, extra):
    return graph


def make_failing(config):
    raise RuntimeError("no model configured")
"""


@pytest.fixture(autouse=True)
def _isolated_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


def _config(folder: Path, graphs: dict[str, str], **data: Any) -> RuntimeConfig:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "graphs.py").write_text(GRAPHS)
    return config_from_dict({"graphs": graphs, **data}, base_dir=folder, environ={})


def _registry(
    folder: Path, graphs: dict[str, str], checkpointer: Any = None, store: Any = None
) -> GraphRegistry:
    return GraphRegistry(
        import_graphs(_config(folder, graphs)), checkpointer=checkpointer, store=store
    )


def _load_error(folder: Path, graphs: dict[str, str], **data: Any) -> str:
    with pytest.raises(GraphLoadError) as caught:
        import_graphs(_config(folder, graphs, **data))
    return caught.value.detail


def test_default_assistant_id_is_uuid5_of_the_graph_id() -> None:
    assert default_assistant_id("agent") == str(uuid.uuid5(NAMESPACE_GRAPH, "agent"))
    # The id `langgraph dev` gives the assistant of a graph named "agent".
    assert default_assistant_id("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


def test_import_graphs_loads_a_file_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(
        tmp_path / "project", {"agent": "./graphs.py:graph", "n": "graphs.py:make_graph"}
    )
    monkeypatch.chdir(tmp_path)

    sources = import_graphs(config)

    assert list(sources) == ["agent", "n"]
    assert sources["agent"].graph_id == "agent"
    assert sources["agent"].spec == "./graphs.py:graph"
    assert isinstance(sources["agent"].target, Pregel)
    assert callable(sources["n"].target)


def test_import_graphs_runs_each_file_once_per_process(tmp_path: Path) -> None:
    (tmp_path / "counted.py").write_text(
        GRAPHS + "from pathlib import Path\n"
        "log = Path(__file__).with_suffix('.log')\n"
        "log.write_text(log.read_text() + 'x' if log.exists() else 'x')\n"
    )
    config = _config(tmp_path, {"a": "./counted.py:graph", "b": "counted.py:graph"})

    first = import_graphs(config)
    second = import_graphs(config)

    assert (tmp_path / "counted.log").read_text() == "x"
    assert first["a"].target is second["b"].target


def test_import_graphs_registers_each_file_under_a_stable_module_name(tmp_path: Path) -> None:
    (tmp_path / "src" / "my-agent").mkdir(parents=True)
    (tmp_path / "src" / "my-agent" / "graph.py").write_text(GRAPHS)
    config = _config(tmp_path, {"agent": "./src/my-agent/graph.py:make_plain"})

    factory = import_graphs(config)["agent"].target

    module = sys.modules[factory.__module__]
    assert module.__name__ == "agent_runtime_graphs.src__my_agent__graph"
    assert module.__file__ == str(tmp_path / "src" / "my-agent" / "graph.py")
    # The file ran as a registered module: its dataclass resolved and pickle finds it by name.
    settings = module.Settings(greeting="hi")
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_import_graphs_loads_a_module_from_a_path_dependency(tmp_path: Path) -> None:
    package = f"pkg_{uuid.uuid4().hex}"
    (tmp_path / "src" / package).mkdir(parents=True)
    (tmp_path / "src" / package / "__init__.py").touch()
    (tmp_path / "src" / package / "agent.py").write_text(GRAPHS)

    config = _config(
        tmp_path, {"agent": f"{package}.agent:graph"}, dependencies=["./src", "requests"]
    )
    sources = import_graphs(config)
    import_graphs(config)

    assert isinstance(sources["agent"].target, Pregel)
    assert sys.path.count(str(tmp_path / "src")) == 1
    assert sys.path[0] == str(tmp_path / "src")


def test_import_graphs_finds_a_template_package_under_src(tmp_path: Path) -> None:
    # LangChain's templates name "." and keep their package in src/, imported absolutely.
    package = f"pkg_{uuid.uuid4().hex}"
    (tmp_path / "src" / package).mkdir(parents=True)
    (tmp_path / "src" / package / "__init__.py").touch()
    (tmp_path / "src" / package / "nodes.py").write_text("GREETING = 'hello'\n")
    (tmp_path / "src" / package / "graph.py").write_text(
        GRAPHS + f"\nfrom {package}.nodes import GREETING\n"
    )

    config = _config(tmp_path, {"agent": f"./src/{package}/graph.py:graph"}, dependencies=["."])
    sources = import_graphs(config)

    assert isinstance(sources["agent"].target, Pregel)
    assert sys.path.index(str(tmp_path)) < sys.path.index(str(tmp_path / "src"))


async def test_graph_registry_attaches_checkpointer_and_store_to_a_compiled_graph(
    tmp_path: Path,
) -> None:
    store = InMemoryStore()
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "state.sqlite")) as saver:
        registry = _registry(tmp_path, {"agent": "./graphs.py:graph"}, saver, store)

        graph = await registry.get_graph("agent")

        assert graph is await registry.get_graph("agent")
        assert graph.checkpointer is saver
        assert graph.store is store
        thread: RunnableConfig = {"configurable": {"thread_id": "t1"}}
        assert await graph.ainvoke({"text": "hi"}, thread) == {"text": "HI"}

    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "state.sqlite")) as reopened:
        registry = _registry(tmp_path, {"agent": "./graphs.py:graph"}, reopened)
        state = await (await registry.get_graph("agent")).aget_state(thread)

    assert state.values == {"text": "HI"}


async def test_graph_registry_leaves_the_imported_graph_untouched(tmp_path: Path) -> None:
    sources = import_graphs(_config(tmp_path, {"agent": "./graphs.py:graph"}))
    store = InMemoryStore()

    graph = await GraphRegistry(sources, checkpointer=None, store=store).get_graph("agent")

    assert graph is not sources["agent"].target
    assert sources["agent"].target.store is None


async def test_graph_registry_compiles_a_state_graph_once(tmp_path: Path) -> None:
    store = InMemoryStore()
    registry = _registry(tmp_path, {"agent": "./graphs.py:builder"}, store=store)

    graph = await registry.get_graph("agent")

    assert isinstance(graph, Pregel)
    assert graph is await registry.get_graph("agent")
    assert graph.store is store
    assert await graph.ainvoke({"text": "a"}) == {"text": "A"}


async def test_graph_registry_calls_a_sync_factory_with_the_run_config(tmp_path: Path) -> None:
    sources = import_graphs(_config(tmp_path, {"agent": "./graphs.py:make_graph"}))
    store = InMemoryStore()
    registry = GraphRegistry(sources, checkpointer=None, store=store)

    first = await registry.get_graph("agent", {"configurable": {"model": "small"}})
    second = await registry.get_graph("agent")

    calls = sys.modules[sources["agent"].target.__module__].CALLS
    assert [call["configurable"] for call in calls] == [{"model": "small"}, {}]
    assert first is not second
    assert first.store is store


async def test_graph_registry_calls_a_factory_without_parameters(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {"agent": "./graphs.py:make_plain"})

    graph = await registry.get_graph("agent")

    assert await graph.ainvoke({"text": "b"}) == {"text": "B"}


async def test_graph_registry_awaits_an_async_factory(tmp_path: Path) -> None:
    store = InMemoryStore()
    registry = _registry(tmp_path, {"agent": "./graphs.py:make_async"}, store=store)

    graph = await registry.get_graph("agent", {"configurable": {"thread_id": "x"}})

    assert graph.store is store
    assert await graph.ainvoke({"text": "c"}) == {"text": "C"}


async def test_graph_registry_reports_a_factory_that_returns_something_else(
    tmp_path: Path,
) -> None:
    registry = _registry(tmp_path, {"agent": "./graphs.py:make_nothing"})

    with pytest.raises(GraphLoadError) as caught:
        await registry.get_graph("agent")

    assert caught.value.detail == (
        'Graph "agent": factory ./graphs.py:make_nothing returned a dict, '
        "not a compiled graph or a StateGraph"
    )


def test_graph_registry_reports_a_state_graph_that_does_not_compile(tmp_path: Path) -> None:
    sources = import_graphs(_config(tmp_path, {"agent": "./graphs.py:broken"}))

    with pytest.raises(GraphLoadError) as caught:
        GraphRegistry(sources, checkpointer=None, store=None)

    assert caught.value.detail.startswith(
        'Graph "agent" (./graphs.py:broken) failed to compile: ValueError: '
    )


async def test_check_graphs_calls_each_factory_as_its_default_assistant_would(
    tmp_path: Path,
) -> None:
    sources = import_graphs(
        _config(tmp_path, {"agent": "./graphs.py:make_graph", "static": "./graphs.py:graph"})
    )

    built = await check_graphs(sources)

    assert len(built) == 2
    assert all(isinstance(graph, Pregel) for graph in built)
    calls = sys.modules[sources["agent"].target.__module__].CALLS
    ids = {"assistant_id": default_assistant_id("agent"), "graph_id": "agent"}
    assert [(call["configurable"], call["metadata"]) for call in calls] == [(ids, ids)]


async def test_check_graphs_names_a_factory_that_raises(tmp_path: Path) -> None:
    sources = import_graphs(_config(tmp_path, {"agent": "./graphs.py:make_failing"}))

    with pytest.raises(GraphLoadError) as caught:
        await check_graphs(sources)

    assert caught.value.detail == (
        'Graph "agent": factory ./graphs.py:make_failing raised RuntimeError: no model configured'
    )


async def test_check_graphs_reports_what_registry_would(tmp_path: Path) -> None:
    for attr, problem in (
        ("make_nothing", "factory ./graphs.py:make_nothing returned a dict"),
        ("broken", "(./graphs.py:broken) failed to compile"),
    ):
        sources = import_graphs(_config(tmp_path / attr, {"agent": f"./graphs.py:{attr}"}))

        with pytest.raises(GraphLoadError) as caught:
            await check_graphs(sources)

        assert problem in caught.value.detail


async def test_graph_registry_names_known_graphs_for_an_unknown_id(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {"agent": "./graphs.py:graph", "chat": "./graphs.py:make_plain"})

    with pytest.raises(NotFoundError) as caught:
        await registry.get_graph("agnet")

    assert caught.value.detail == 'Graph "agnet" not found; known graphs: agent, chat'
    assert registry.graph_ids == ("agent", "chat")
    assert "chat" in registry
    assert "agnet" not in registry


def test_import_graphs_names_the_file_and_exception_of_a_failed_import(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("import not_installed_dependency\n")

    message = _load_error(tmp_path, {"agent": "./agent.py:graph"})

    assert message == (
        'Graph "agent" (./agent.py:graph) failed to import: '
        "ModuleNotFoundError: No module named 'not_installed_dependency'"
    )


def test_import_graphs_names_the_line_of_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("graph = (\n")

    message = _load_error(tmp_path, {"agent": "./agent.py:graph"})

    assert message == (
        'Graph "agent" (./agent.py:graph) failed to import: '
        "SyntaxError: '(' was never closed (agent.py, line 1)"
    )


def test_import_graphs_names_a_module_that_is_missing(tmp_path: Path) -> None:
    message = _load_error(tmp_path, {"agent": "no_such_package.graph:graph"})

    assert message == (
        'Graph "agent" (no_such_package.graph:graph) failed to import: '
        "ModuleNotFoundError: No module named 'no_such_package'"
    )


def test_import_graphs_suggests_a_close_attribute(tmp_path: Path) -> None:
    assert _load_error(tmp_path, {"agent": "./graphs.py:grpah"}) == (
        'Graph "agent": ./graphs.py has no attribute "grpah"; did you mean graph?'
    )
    assert _load_error(tmp_path, {"agent": "./graphs.py:zzz"}) == (
        'Graph "agent": ./graphs.py has no attribute "zzz"'
    )


@pytest.mark.parametrize(
    ("attr", "kind"), [("number", "an int"), ("CALLS", "a list"), ("State", "a _TypedDictMeta")]
)
def test_import_graphs_rejects_what_is_not_a_graph(tmp_path: Path, attr: str, kind: str) -> None:
    assert _load_error(tmp_path, {"agent": f"./graphs.py:{attr}"}) == (
        f'Graph "agent": ./graphs.py:{attr} is {kind}, '
        "not a compiled graph, a StateGraph or a factory"
    )


def test_import_graphs_rejects_a_factory_with_two_parameters(tmp_path: Path) -> None:
    assert _load_error(tmp_path, {"agent": "./graphs.py:make_two"}) == (
        'Graph "agent": ./graphs.py:make_two needs more than one argument; '
        "a graph factory takes none or one (the RunnableConfig)"
    )


def test_graph_source_is_a_frozen_record() -> None:
    source = GraphSource(graph_id="a", spec="m:g", target=None)

    with pytest.raises(AttributeError):
        source.graph_id = "b"  # type: ignore[misc]
