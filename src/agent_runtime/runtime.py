"""The composition root: one config (and one clock) in, the running parts out (storage, graphs,
event log, run manager, cron scheduler, stream cap, sweeper), started in order and stopped in
reverse. The only place that builds them; the ASGI lifespan starts and stops a `Runtime` and
routes reach it on `app.state`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from agent_runtime.background import stop_tasks
from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config import RuntimeConfig
from agent_runtime.crons.scheduler import CronScheduler
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.registry import GraphRegistry, check_graphs, default_assistant_id, import_graphs
from agent_runtime.runs.create import AssistantCache
from agent_runtime.runs.manager import RunManager
from agent_runtime.runs.observer import NO_OBSERVER
from agent_runtime.runs.signals import LocalSignals, RedisSignals, Signals
from agent_runtime.storage import Storage, open_storage
from agent_runtime.storage.records import NewAssistant, RetentionPolicy
from agent_runtime.storage.serde import graph_types
from agent_runtime.streaming import EventLog, MemoryEventLog, StreamSlots
from agent_runtime.streaming.broker import RedisBroker
from agent_runtime.streaming.redis import RedisEventLog

if TYPE_CHECKING:
    from agent_runtime.observability.observer import Observer

logger = logging.getLogger("agent_runtime")

DEFAULT_SWEEP_SECONDS = 60.0
DEFAULT_STORE_SWEEP_MINUTES = 5.0


class Runtime:
    """Everything one server process runs on; made by `start`, ended by `stop`."""

    def __init__(
        self,
        *,
        config: RuntimeConfig,
        storage: Storage,
        registry: GraphRegistry,
        events: EventLog,
        runs: RunManager,
        streams: StreamSlots,
        clock: Clock,
        broker: RedisBroker | None = None,
        crons: CronScheduler | None = None,
    ) -> None:
        """Use `start`, which builds and starts the parts in order."""
        self.config = config
        self.clock = clock
        self.storage = storage
        self.registry = registry
        self.events = events
        self.runs = runs
        self.streams = streams
        self.broker = broker
        """The connection to Redis, when the config names one."""
        self.crons = crons
        """The cron scheduler; None in a process that executes no runs (`--role api`)."""
        self.assistants = AssistantCache()
        """The assistants of the runs this process made (`runs.create`)."""
        self._sweeper: asyncio.Task[None] | None = None
        self._store_sweeper: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        config: RuntimeConfig,
        *,
        storage: Storage | None = None,
        clock: Clock = SYSTEM_CLOCK,
        observer: Observer | None = None,
    ) -> Runtime:
        """Import and build every graph, open the storage (the config's backend unless one is
        given), create the default assistants, and resume the runs a previous process left.

        `clock` is the one clock of every part: what storage stamps and expires by, when
        delayed runs fall due, tool-call times, event-log retention and the sweeper's pace
        (a storage passed in brings its own, which should be the same one).

        `observer` hears of every run and stream (metrics, traces, run log lines).

        Every graph is built before the database is opened, so a graph that fails stops
        start-up with the database untouched; whatever fails later, nothing stays open.

        With `config.redis`, run events, wake-ups and cancels go through Redis (reached
        before the database is opened), so that any process can stream, join or cancel any run.

        Raises:
            ConfigError: a graph cannot be imported or built (`GraphLoadError`), the
                config names a database no backend serves, or Redis is named and the redis
                package is missing.
            StorageError: the database cannot be opened, or Redis does not answer.
        """
        sources = import_graphs(config)
        built = await check_graphs(sources)
        broker = None
        if config.redis is not None:
            broker = await RedisBroker.connect(config.redis.uri, prefix=config.redis.key_prefix)
        try:
            if storage is None:
                storage = await open_storage(config, graph_types=graph_types(built), clock=clock)
            else:
                await storage.setup()
        except BaseException:
            if broker is not None:
                await broker.aclose()
            raise
        try:
            registry = GraphRegistry(
                sources, checkpointer=storage.checkpointer, store=storage.store
            )
            await _ensure_default_assistants(storage, registry)
            limits = config.limits
            events: EventLog
            signals: Signals
            if broker is not None:
                events = RedisEventLog(broker, max_bytes_per_run=limits.max_event_bytes_per_run)
                signals = RedisSignals(broker)
            else:
                events = MemoryEventLog(
                    max_bytes_per_run=limits.max_event_bytes_per_run, clock=clock
                )
                signals = LocalSignals()
            runs = RunManager(
                storage,
                registry,
                events,
                pricing=config.pricing,
                max_messages=limits.max_messages_per_thread,
                lease_seconds=limits.run_lease_seconds,
                clock=clock,
                signals=signals,
                execute=config.role != "api",
                jobs=limits.n_jobs_per_worker,
                observer=observer or NO_OBSERVER,
            )
            crons = None
            if config.role != "api":
                crons = CronScheduler(storage, registry, runs, config=config, clock=clock)
            streams = StreamSlots(
                limits.max_open_streams,
                send_timeout=limits.stream_send_timeout_seconds,
                on_count=None if observer is None else observer.stream_count,
                on_event=None if observer is None else observer.stream_event,
            )
            runtime = cls(
                config=config,
                storage=storage,
                registry=registry,
                events=events,
                runs=runs,
                streams=streams,
                clock=clock,
                broker=broker,
                crons=crons,
            )
            try:
                await runs.start()
            except BaseException:
                await runs.stop()
                raise
            if crons is not None:
                crons.start()
        except BaseException:
            await storage.close()
            if broker is not None:
                await broker.aclose()
            raise
        runtime._sweeper = asyncio.create_task(
            _sweep_forever(storage, config, clock), name="sweeper"
        )
        if (config.store.get("ttl") or {}) and storage.store.supports_ttl:
            runtime._store_sweeper = asyncio.create_task(
                _sweep_store_forever(storage, config, clock), name="store-sweeper"
            )
        return runtime

    async def drain(self, grace: float) -> bool:
        """Stop taking runs and give those executing here up to `grace` seconds to end (the
        API keeps answering meanwhile); say whether they all did. `stop` hands back the
        rest. No cron fires from here on."""
        if self.crons is not None:
            await self.crons.stop()
        return await self.runs.drain(grace)

    async def stop(self) -> None:
        """Stop the sweeper and the cron scheduler, let the streams' follow-ups (a disconnected
        client's cancel) finish, stop the run workers, then close the storage. Runs still in
        flight go back to `pending` (not charged) for another process or the next start."""
        try:
            if self.crons is not None:
                await self.crons.stop()
            await self.streams.drain()
            await stop_tasks(self._sweeper, self._store_sweeper)
            self._sweeper = self._store_sweeper = None
        finally:
            try:
                await self.runs.stop()
            finally:
                try:
                    await self.storage.close()
                finally:
                    await self.events.aclose()
                    if self.broker is not None:
                        await self.broker.aclose()


async def _ensure_default_assistants(storage: Storage, registry: GraphRegistry) -> None:
    for graph_id in registry.graph_ids:
        await storage.create_assistant(
            NewAssistant(
                assistant_id=default_assistant_id(graph_id),
                graph_id=graph_id,
                name=graph_id,
                metadata={"created_by": "system"},
            ),
            if_exists="do_nothing",
        )


def retention_policy(config: RuntimeConfig) -> RetentionPolicy:
    """What the sweeper removes, from `agent_runtime.limits`."""
    limits = config.limits
    return RetentionPolicy(
        inactivity=None
        if limits.inactivity_ttl_days is None
        else timedelta(days=limits.inactivity_ttl_days),
        max_age=None if limits.max_age_days is None else timedelta(days=limits.max_age_days),
        strategy=limits.strategy,
    )


def sweep_interval(config: RuntimeConfig) -> float:
    """`limits.sweep_interval_seconds`, else `checkpointer.ttl.sweep_interval_minutes`."""
    if config.limits.sweep_interval_seconds is not None:
        return config.limits.sweep_interval_seconds
    minutes = (config.checkpointer.get("ttl") or {}).get("sweep_interval_minutes")
    return float(minutes) * 60 if minutes else DEFAULT_SWEEP_SECONDS


async def _sweep_forever(storage: Storage, config: RuntimeConfig, clock: Clock) -> None:
    policy = retention_policy(config)
    while True:
        try:
            swept = await storage.sweep_expired_threads(policy)
            if swept:
                logger.info("Swept %d expired threads (%s)", swept, policy.strategy)
        except AgentRuntimeError as exc:
            logger.warning("Thread sweep failed: %s", exc.detail)
        await clock.sleep(sweep_interval(config))


def store_sweep_interval(config: RuntimeConfig) -> float:
    """`store.ttl.sweep_interval_minutes`, in seconds (LangGraph's default: 5 minutes)."""
    minutes = (config.store.get("ttl") or {}).get("sweep_interval_minutes")
    return float(minutes or DEFAULT_STORE_SWEEP_MINUTES) * 60


async def _sweep_store_forever(storage: Storage, config: RuntimeConfig, clock: Clock) -> None:
    # Expired store items stay readable until swept (the store compares expiry when it
    # deletes, not when it reads), so every process sweeps them, as LangGraph's server does.
    while True:
        await clock.sleep(store_sweep_interval(config))
        try:
            swept = await storage.store.sweep_ttl()  # type: ignore[attr-defined]
            if swept:
                logger.info("Swept %d expired store items", swept)
        except Exception:
            logger.exception("Store TTL sweep failed")
