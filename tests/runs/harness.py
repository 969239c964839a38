"""The run manager and executor wired as `Runtime.start` wires them, without HTTP: real SQLite
storage under `tmp_path`, real compiled graphs (tests/fixtures/manager/langgraph.json), a real
`MemoryEventLog`. Only the model is fake (the offline model of the example chat graph)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runtime.config import RuntimeConfig, load_config
from agent_runtime.encoding import loads
from agent_runtime.registry import GraphRegistry, check_graphs, default_assistant_id, import_graphs
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.runs.manager import RunManager
from agent_runtime.runs.options import RunOptions
from agent_runtime.schema import Assistant, Json
from agent_runtime.storage import Storage, open_storage
from agent_runtime.storage.records import NewAssistant, NewRun, NewThread
from agent_runtime.storage.serde import graph_types
from agent_runtime.streaming import MemoryEventLog
from tests.conftest import ROOT

MANAGER_CONFIG = ROOT / "tests" / "fixtures" / "manager" / "langgraph.json"


@dataclass(slots=True, kw_only=True)
class Harness:
    """The parts a run passes through, and shortcuts to queue runs and read what they left."""

    config: RuntimeConfig
    storage: Storage
    registry: GraphRegistry
    events: MemoryEventLog
    manager: RunManager

    async def thread(self, **metadata: Any) -> str:
        thread_id = str(uuid.uuid4())
        await self.storage.create_thread(
            NewThread(thread_id=thread_id, metadata=metadata), if_exists="raise"
        )
        return thread_id

    async def assistant(
        self, graph_id: str, *, config: Json | None = None, context: Json | None = None
    ) -> Assistant:
        return await self.storage.create_assistant(
            NewAssistant(
                assistant_id=str(uuid.uuid4()),
                graph_id=graph_id,
                config=config or {},
                context=context or {},
            ),
            if_exists="raise",
        )

    def new_run(
        self,
        thread_id: str,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        metadata: Json | None = None,
        **options: Any,
    ) -> NewRun:
        """A run of `graph_id` (its default assistant unless one is named) on the thread."""
        parsed = RunOptions.from_json(options)
        return NewRun(
            run_id=str(uuid.uuid4()),
            thread_id=thread_id,
            assistant_id=assistant_id or default_assistant_id(graph_id),
            graph_id=graph_id,
            metadata=metadata or {},
            options=parsed,
            multitask_strategy=parsed.multitask_strategy,
            if_not_exists="create" if parsed.stateless else parsed.if_not_exists,
            thread_visible=not parsed.stateless,
        )

    async def graph(self, graph_id: str) -> AnyGraph:
        return await self.registry.get_graph(graph_id)

    async def values(self, thread_id: str, graph_id: str = "slow") -> Json:
        """The thread's latest checkpoint values, read through the graph."""
        graph = await self.graph(graph_id)
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        found: Json = state.values
        return found

    async def checkpoint_run_ids(self, thread_id: str) -> list[str | None]:
        """The run id in the metadata of every checkpoint the thread holds, oldest first (None
        where a checkpoint has none)."""
        summaries = await self.storage.list_checkpoint_summaries(thread_id)
        return [s.metadata.get("run_id") for s in summaries]

    async def run_status(self, thread_id: str, run_id: str) -> str:
        return (await self.storage.get_run(thread_id, run_id))["status"]

    async def published(self, run_id: str) -> list[tuple[str, Any]]:
        """Every event the run's log holds, decoded; the log must be closed (the run ended)."""
        return [
            (event.event, loads(event.data))
            async for event in self.events.subscribe(run_id, after=-1)
        ]


async def build_harness(database: Path | str, **manager_options: Any) -> Harness:
    """The parts in `Runtime.start`'s order: graphs built first, then storage, registry,
    default assistants, event log and the run manager (started)."""
    config = load_config(MANAGER_CONFIG, database=database, environ={})
    sources = import_graphs(config)
    built = await check_graphs(sources)
    storage = await open_storage(config, graph_types=graph_types(built))
    registry = GraphRegistry(sources, checkpointer=storage.checkpointer, store=storage.store)
    for graph_id in registry.graph_ids:
        await storage.create_assistant(
            NewAssistant(
                assistant_id=default_assistant_id(graph_id), graph_id=graph_id, name=graph_id
            ),
            if_exists="do_nothing",
        )
    events = MemoryEventLog()
    manager = RunManager(storage, registry, events, **manager_options)
    await manager.start()
    return Harness(
        config=config, storage=storage, registry=registry, events=events, manager=manager
    )
