"""Graph specs -> graphs: imports what langgraph.json names, hands out graphs wired to the
runtime's checkpointer and store, and derives each graph's default assistant id.

It is given the checkpointer and store; it never opens storage or runs a graph itself.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
import inspect
import os
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from agent_runtime.config import GraphSpec, RuntimeConfig, is_path_dependency, parse_graph_spec
from agent_runtime.errors import GraphLoadError, InvalidRequestError, NotFoundError
from agent_runtime.schema import Assistant

AnyGraph = Pregel[Any, Any, Any, Any]
"""Any compiled graph, whatever its state, context, input and output types."""

NAMESPACE_GRAPH = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""LangGraph's namespace for default assistant ids, so ids match those of `langgraph dev`."""

# Graph files are imported as submodules of this synthetic package: a stable name per file lets
# dataclasses, typing and the checkpointer's msgpack serializer find their classes again.
_PACKAGE = "agent_runtime_graphs"


@functools.lru_cache(maxsize=256)
def default_assistant_id(graph_id: str) -> str:
    """The id of the assistant every graph gets for free: uuid5 of the graph id (remembered:
    runs name their graph on every request, and a uuid5 is a SHA-1)."""
    return str(uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphSource:
    """What one spec of langgraph.json imported to, before it meets a checkpointer."""

    graph_id: str
    spec: str
    target: Any
    """A compiled graph (Pregel), a StateGraph, or a factory returning either."""


def import_graphs(config: RuntimeConfig) -> dict[str, GraphSource]:
    """Import every graph of the config, in file order.

    Folders among `dependencies` (`.`, `./src`) go on `sys.path` first, once each, and so does
    the `src/` folder inside one: LangChain's templates keep their package there and name `.`.

    Raises:
        GraphLoadError: a spec fails to import, lacks its attribute or names something else.
    """
    add_dependency_paths(config)
    return {
        graph_id: GraphSource(
            graph_id=graph_id, spec=spec, target=_import_target(graph_id, spec, config.base_dir)
        )
        for graph_id, spec in config.graphs.items()
    }


def add_dependency_paths(config: RuntimeConfig) -> None:
    """Put the folders among `dependencies` (and a `src/` inside one) on `sys.path`, once
    each, so graph, auth and custom app files import what the project holds."""
    for dependency in reversed(config.dependencies):
        if is_path_dependency(dependency):
            folder = (config.base_dir / Path(dependency).expanduser()).resolve()
            # `pip install -e .` would make a template's `src/<package>` importable; serving the
            # project as it is checked out must too, without asking for that step.
            for entry in (folder / "src", folder):
                if entry.is_dir() and str(entry) not in sys.path:
                    sys.path.insert(0, str(entry))
    importlib.invalidate_caches()


def import_spec_module(spec: GraphSpec, base_dir: Path) -> types.ModuleType:
    """The module a `./file.py:name` or `module:name` spec names, imported once per process
    (a file as a submodule of a stable synthetic package)."""
    if spec.is_file:
        return _import_file((base_dir / spec.location).resolve(), base_dir)
    return importlib.import_module(spec.location)


async def check_graphs(sources: Mapping[str, GraphSource]) -> list[AnyGraph]:
    """Build every graph once without storage, as start-up does before it opens the database,
    and return them (what they declare decides which types checkpoints may decode to).

    Factories are called with the config a run of the graph's default assistant starts from,
    so a factory that raises stops the server at start-up rather than failing every run.

    Raises:
        GraphLoadError: a StateGraph fails to compile, or a factory raises or returns
            something that is not a graph.
    """
    registry = GraphRegistry(sources, checkpointer=None, store=None)
    built = list(registry._graphs.values())
    for graph_id in registry._factories:
        assistant_id = default_assistant_id(graph_id)
        ids = {"assistant_id": assistant_id, "graph_id": graph_id}
        config: RunnableConfig = {"configurable": dict(ids), "metadata": dict(ids)}
        try:
            built.append(await registry.get_graph(graph_id, config))
        except GraphLoadError:
            raise
        except Exception as exc:
            spec = sources[graph_id].spec
            raise GraphLoadError(
                f'Graph "{graph_id}": factory {spec} raised {_describe(exc)}'
            ) from exc
    return built


class GraphRegistry:
    """The graphs one server runs, each wired to its checkpointer and store."""

    def __init__(
        self,
        sources: Mapping[str, GraphSource],
        *,
        checkpointer: BaseCheckpointSaver[Any] | None,
        store: BaseStore | None,
    ) -> None:
        """Compile static graphs now; factories are called on every `get_graph`.

        Raises:
            GraphLoadError: a StateGraph fails to compile.
        """
        self._sources = dict(sources)
        self._checkpointer = checkpointer
        self._store = store
        self._graphs: dict[str, AnyGraph] = {}
        self._factories: dict[str, tuple[Callable[..., Any], bool]] = {}
        for graph_id, source in self._sources.items():
            if _is_factory(source.target):
                self._factories[graph_id] = (source.target, _takes_config(source))
            else:
                self._graphs[graph_id] = self._wire(source, source.target)

    @property
    def graph_ids(self) -> tuple[str, ...]:
        """Graph ids in langgraph.json order."""
        return tuple(self._sources)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._sources

    def resolve_assistant_id(self, value: str) -> str:
        """An assistant id from a UUID or a graph name (its default assistant).

        Raises:
            NotFoundError: when the value is neither a UUID nor a known graph.
        """
        if _is_uuid(value):
            return value.lower()
        if value in self:
            return default_assistant_id(value)
        raise NotFoundError(
            f'Assistant "{value}" not found; pass an assistant id (a UUID) or a graph name: '
            f"{', '.join(self.graph_ids)}",
            code="assistant_not_found",
        )

    def require_served(self, assistant: Assistant, *, field: str | None = None) -> None:
        """Refuse an assistant whose graph this server does not serve (one a previous config
        registered, say).

        Raises:
            InvalidRequestError: the graph is not served (named after `field` when given).
        """
        graph_id = assistant["graph_id"]
        if graph_id in self:
            return
        who = f'{field}: assistant "' if field else 'Assistant "'
        raise InvalidRequestError(
            f'{who}{assistant["assistant_id"]}" runs graph "{graph_id}", which this server does '
            f"not serve; known graphs: {', '.join(self.graph_ids)}",
            code="graph_not_found",
        )

    async def get_graph(self, graph_id: str, config: RunnableConfig | None = None) -> AnyGraph:
        """The graph to run, built by its factory with `config` when it has one.

        Raises:
            NotFoundError: no graph has this id.
            GraphLoadError: a factory returned something that is not a graph.
        """
        graph = self._graphs.get(graph_id)
        if graph is not None:
            return graph
        if graph_id not in self._factories:
            known = ", ".join(self.graph_ids)
            raise NotFoundError(f'Graph "{graph_id}" not found; known graphs: {known}')
        factory, takes_config = self._factories[graph_id]
        made = factory(ensure_config(config)) if takes_config else factory()
        if inspect.isawaitable(made):
            made = await made
        return self._wire(self._sources[graph_id], made)

    def _wire(self, source: GraphSource, value: Any) -> AnyGraph:
        # A checkpointer compiled into the user's graph is replaced: threads must live in the
        # runtime's database, or history, resume and time travel would miss them.
        if isinstance(value, Pregel):
            return value.copy(update={"checkpointer": self._checkpointer, "store": self._store})
        if isinstance(value, StateGraph):
            try:
                return value.compile(checkpointer=self._checkpointer, store=self._store)
            except Exception as exc:
                raise GraphLoadError(
                    f'Graph "{source.graph_id}" ({source.spec}) failed to compile: {_describe(exc)}'
                ) from exc
        raise GraphLoadError(
            f'Graph "{source.graph_id}": factory {source.spec} returned {_a(value)}, '
            "not a compiled graph or a StateGraph"
        )


def _import_target(graph_id: str, spec: str, base_dir: Path) -> Any:
    parsed = parse_graph_spec(spec)
    if parsed is None:
        raise GraphLoadError(
            f'Graph "{graph_id}": {spec!r} is not "./file.py:attr" or "module:attr"'
        )
    try:
        module = import_spec_module(parsed, base_dir)
    except Exception as exc:
        raise GraphLoadError(
            f'Graph "{graph_id}" ({spec}) failed to import: {_describe(exc)}'
        ) from exc
    if not hasattr(module, parsed.attr):
        public = [name for name in vars(module) if not name.startswith("_")]
        close = difflib.get_close_matches(parsed.attr, public, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise GraphLoadError(
            f'Graph "{graph_id}": {parsed.location} has no attribute "{parsed.attr}"{hint}'
        )
    target = getattr(module, parsed.attr)
    source = GraphSource(graph_id=graph_id, spec=spec, target=target)
    if _is_factory(target):
        _takes_config(source)
    elif not isinstance(target, Pregel | StateGraph):
        raise GraphLoadError(
            f'Graph "{graph_id}": {spec} is {_a(target)}, '
            "not a compiled graph, a StateGraph or a factory"
        )
    return target


def _import_file(path: Path, base_dir: Path) -> types.ModuleType:
    relative = Path(os.path.relpath(path.with_suffix(""), base_dir))
    name = f"{_PACKAGE}." + "__".join(re.sub(r"\W", "_", part) for part in relative.parts)
    loaded = sys.modules.get(name)
    # Importing a file twice in one process must not run it twice, as with any Python import.
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(
            _PACKAGE, "Graph files agent-runtime loaded from langgraph.json."
        )
        package.__path__ = []
        sys.modules[_PACKAGE] = package
    # Registered before it runs, so that dataclasses, pydantic and typing can look the module up.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    setattr(sys.modules[_PACKAGE], name.rpartition(".")[2], module)
    return module


def _is_uuid(value: str) -> bool:
    # Only the standard spelling (8-4-4-4-12 hex digits): braces, `urn:uuid:` or missing
    # dashes are not an id, as everywhere in the API.
    try:
        return str(UUID(value)) == value.lower()
    except ValueError:
        return False


def _is_factory(target: Any) -> bool:
    return (
        callable(target)
        and not inspect.isclass(target)
        and not isinstance(target, Pregel | StateGraph)
    )


def _takes_config(source: GraphSource) -> bool:
    try:
        parameters = list(inspect.signature(source.target).parameters.values())
    except (TypeError, ValueError):
        return True  # no signature to read (a C callable): offer the config
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    keyword_only = [p for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 1 or keyword_only:
        raise GraphLoadError(
            f'Graph "{source.graph_id}": {source.spec} needs more than one argument; '
            "a graph factory takes none or one (the RunnableConfig)"
        )
    return bool(positional) or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"
