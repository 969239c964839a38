"""The run manager: queues runs durably, runs at most one per thread (in order), cancels them,
lets callers wait for them, and resumes the runs a dead process left behind.

Several processes may share one database: each claims runs under its own owner id with a lease,
renews the leases of the runs it executes (the heartbeat), and re-queues the runs of owners whose
leases lapsed (the reaper), so a process never takes a live process's runs (`Leases`). An
executing process runs each thread's runs in order on one worker (`ThreadWorkers`), at most `jobs`
runs at once (`RunSlots`), and looks for queued work it was not told about (`Dispatcher`); an
API-only one (`execute=False`) queues runs and never claims them.

It owns the asyncio tasks that execute runs; it never builds HTTP responses."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from agent_runtime.background import stop_tasks
from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config.model import ModelPrice
from agent_runtime.encoding import dumps
from agent_runtime.errors import NotFoundError
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.cancels import (
    REQUEST_POLL_SECONDS,
    SIGNALLED_REQUEST_POLL_SECONDS,
    CancelRequests,
    Cancels,
)
from agent_runtime.runs.dispatcher import DISPATCH_SECONDS, Dispatcher
from agent_runtime.runs.ends import FINAL_STATUSES as FINAL_STATUSES  # routes import it here
from agent_runtime.runs.ends import POLL_SECONDS, SIGNALLED_POLL_SECONDS, RunEnds
from agent_runtime.runs.executor import RunExecutor, latest_outcome
from agent_runtime.runs.leases import LEASE_SECONDS, Leases
from agent_runtime.runs.observer import NO_OBSERVER, RunObserver
from agent_runtime.runs.options import RunOptions
from agent_runtime.runs.signals import CancelAction, LocalSignals, SignalHandlers, Signals
from agent_runtime.runs.slots import DEFAULT_JOBS, RunSlots
from agent_runtime.runs.webhook import send_webhook
from agent_runtime.runs.workers import ThreadWorkers
from agent_runtime.schema import Assistant, Run, Usage
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import Claim, NewRun, RunOutcome, ThreadBrief
from agent_runtime.streaming import EventLog
from agent_runtime.streaming.eventlog import first_event_id

logger = logging.getLogger("agent_runtime.runs")

MAX_ATTEMPTS = 3


class RunManager:
    """Every run of this process passes through here; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        registry: GraphRegistry,
        events: EventLog,
        *,
        pricing: Mapping[str, ModelPrice] | None = None,
        max_messages: int = 10_000,
        max_attempts: int = MAX_ATTEMPTS,
        lease_seconds: float = LEASE_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
        signals: Signals | None = None,
        execute: bool = True,
        jobs: int = DEFAULT_JOBS,
        dispatch_seconds: float = DISPATCH_SECONDS,
        observer: RunObserver = NO_OBSERVER,
    ) -> None:
        """One per process.

        Args:
            max_attempts: a run blamed for this many deaths of its process
                (`Storage.charged_attempts`) ends `error` at its next claim.
            lease_seconds: how long a claim holds without renewal; renewed every third of it,
                and a process silent for longer loses its runs to the others.
            clock: the storage's clock, on which delayed runs fall due (and tool calls are
                stamped); a worker sleeps on it until a run's due time.
            signals: how this process hears of runs queued, cancelled and ended by others
                (and tells them); in-process only by default.
            execute: False for an API-only process: it queues runs and never claims one.
            jobs: the most runs this process executes at once; the others wait `pending`.
            dispatch_seconds: how often to look for queued runs this process was not told
                about (it also looks whenever a slot frees).
            observer: told of each run's creation, start and end (metrics, traces, logs).
        """
        self._observer = observer
        self._storage = storage
        self._registry = registry
        self._events = events
        self._clock = clock
        self._executor = RunExecutor(
            storage,
            registry,
            events,
            pricing=pricing or {},
            max_messages=max_messages,
            clock=clock,
            observer=observer,
        )
        self._max_attempts = max_attempts
        self.owner = uuid.uuid4().hex
        """This process's id on the runs it claims."""
        self._held: set[str] = set()
        # Threads with a claim in flight, counted: a create may claim while a worker does.
        self._claiming: collections.Counter[str] = collections.Counter()
        self._leases = Leases(
            storage,
            owner=self.owner,
            held=self._held,
            seconds=lease_seconds,
            clock=clock,
            resume=self._wake,
            lost=self._leases_lost,
            reaped=observer.leases_reaped,
        )
        self._upkeep: list[asyncio.Task[None]] = []
        self._cancels = Cancels()
        self._draining = False
        self._execute = execute
        self._slots = RunSlots(jobs, on_change=observer.slots_changed)
        self._workers = ThreadWorkers(
            self._slots,
            clock,
            claim_and_run=self._claim_and_run,
            next_due=self._next_due,
            accepting=lambda: not self._draining,
        )
        self._dispatcher = Dispatcher(storage, self._slots, self._wake, interval=dispatch_seconds)
        self._background: set[asyncio.Task[None]] = set()
        self._assistants: dict[str, Assistant] = {}
        self._briefs: dict[str, ThreadBrief] = {}
        # When each thread's next queued run falls due, as its last run's finish read it.
        self._due_after_finish: dict[str, datetime | None] = {}
        self._signals = signals or LocalSignals()
        across = self._signals.reaches_other_processes
        self._ends = RunEnds(
            storage,
            running_here=self._running_here,
            poll_seconds=SIGNALLED_POLL_SECONDS if across else POLL_SECONDS,
        )
        self._requests = CancelRequests(
            storage,
            owner=self.owner,
            held=self._held,
            deliver=self._cancel_signalled,
            interval=SIGNALLED_REQUEST_POLL_SECONDS if across else REQUEST_POLL_SECONDS,
        )
        self._signals.bind(
            SignalHandlers(
                queued=self._wake, cancel=self._cancel_signalled, ended=self._ends.notify
            )
        )

    async def start(self) -> None:
        """Re-queue what dead processes left running (never a live one's runs) and start the
        reaper; an executing process also starts the heartbeat and the dispatcher, and resumes
        the queued runs as its slots allow."""
        threads = await self._storage.requeue_interrupted_work()
        self._upkeep = [asyncio.create_task(self._leases.reap(), name="runs:reaper")]
        if not self._execute:
            return
        for thread_id in threads:
            self._wake(thread_id)
        self._upkeep += [
            asyncio.create_task(self._leases.heartbeat(), name="runs:heartbeat"),
            asyncio.create_task(self._dispatcher.run(), name="runs:dispatcher"),
            asyncio.create_task(self._requests.watch(), name="runs:cancel-requests"),
        ]

    @property
    def executing(self) -> int:
        """How many runs this process is claiming, executing or finishing now."""
        return self._slots.busy

    async def drain(self, grace: float) -> bool:
        """Stop taking work (no more claims: the runs still queued are left to other processes
        or the next start) and wait up to `grace` seconds for the runs executing here to end.
        Return whether they all did; `stop` hands back the rest."""
        self._draining = True
        try:
            async with asyncio.timeout(grace):
                await self._slots.wait_idle()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop every worker and hand the runs in flight back (`pending`, no attempt charged)
        for this or another process to resume."""
        self._draining = True
        workers = self._workers.tasks()
        await stop_tasks(*workers, *self._upkeep)
        self._upkeep = []
        await self._ends.stop()
        try:
            await self._storage.release(self.owner)
        except Exception:
            # The leases lapse on their own; another process (or the next start) reaps them.
            logger.exception("Handing back the runs of %s failed", self.owner)

    async def create(
        self, new: NewRun, *, assistant: Assistant | None = None, attended: bool = False
    ) -> Run:
        """Queue a run (committed before this returns) and apply its multitask strategy.
        `attended`: the caller streams the run or waits for it (`Claim.durable`).

        Raises:
            ConflictError: the thread is busy and the strategy is `reject`.
            NotFoundError: the thread does not exist and `if_not_exists` is `reject`.
        """
        claim = self._claim_at_creation(new, attended)
        try:
            run, active, brief = await self._storage.create_run(
                self._observer.run_creating(new), claim=claim
            )
        except BaseException:
            if claim is not None:
                self._slots.give_back()
            raise
        finally:
            if claim is not None:
                self._claimed(new.thread_id)
        opened: asyncio.Future[None] | None = None
        if run["status"] == "running":
            # Claimed with its creation, as `_claim_and_run` would have claimed it next.
            self._held.add(run["run_id"])
            opened = asyncio.get_running_loop().create_future()
            self._workers.start_claimed(
                new.thread_id, functools.partial(self._run_claimed, run, opened)
            )
            # The caller sees the run as queued, as it would without the claim.
            run = {**run, "status": "pending", "attempt": 0}
        elif claim is not None:
            self._slots.give_back()
        self._observer.run_created(run, new.graph_id)
        if assistant is not None:
            # Handed to the executor so it need not read the assistant again.
            self._assistants[run["run_id"]] = assistant
        if brief is not None:
            # Likewise the thread, read as the claim was taken (nothing else runs on it).
            self._briefs[run["run_id"]] = brief
        try:
            if self._execute or self._events.reaches_other_processes:
                # Open now, so a stream subscribing before the claim waits for the events. A
                # process's own log that will never carry them would stay open for nothing.
                await self._events.open(run["run_id"])
        finally:
            if opened is not None:
                opened.set_result(None)
        if opened is not None:
            # Nothing else was active on the thread, and nothing is left queued for anyone.
            return run
        strategy = new.multitask_strategy
        for other in active:
            action: CancelAction = "rollback" if strategy == "rollback" else "interrupt"
            await self.cancel(other, action=action)
        await self._signals.run_queued(run["thread_id"])
        return run

    async def cancel(self, run: Run, *, action: CancelAction = "interrupt") -> None:
        """Stop a run now: a running one is cancelled mid-step, a pending one never starts.

        `interrupt` keeps what the run finished; `rollback` deletes the run and its checkpoints.
        """
        run_id = run["run_id"]
        if self._cancels.cancel_here(run_id, action):
            return
        if run["status"] == "running":
            # Claimed but maybe not registered yet: the registration honours this. Or claimed
            # by another process: the signal reaches it at once, else (no Redis, or the signal
            # lost) the request in the database at its next look (`CancelRequests`).
            self._cancels.remember(run_id, action)
            await self._storage.request_cancel(run_id, action)
            await self._signals.cancel(run_id, action)
            return
        if run["status"] != "pending":
            return
        state = await self._thread_state(run["thread_id"])
        cancelled = await self._storage.finish_run(
            run_id,
            replace(state, status="interrupted", error="The run was cancelled before it started"),
            only_if_pending=True,
        )
        if cancelled is None:
            # A worker claimed it meanwhile: cancel its execution instead.
            await self.cancel({**run, "status": "running"}, action=action)
            return
        final: Run | None = cancelled.run
        if action == "rollback":
            await self._storage.delete_run(run["thread_id"], run_id, checkpoints=True)
            await self._settle(run["thread_id"])
            final = None
        await self._end_stream(run_id, None, final)

    async def wait(self, run: Run) -> tuple[Run | None, RunOutcome | None]:
        """Wait until the run has ended; return its final row (None when it is gone: rolled
        back, or a stateless run's thread deleted) and, when this process ran it, its outcome."""
        return await self._ends.wait(run)

    def may_execute(self, run: Run) -> bool:
        """Whether this process executes the run, or may be claiming it this moment; when
        not, and the run is `running` or has ended, another process executed it."""
        return run["run_id"] in self._held or run["thread_id"] in self._claiming

    def _running_here(self, run_id: str) -> bool:
        return run_id in self._held

    def _cancel_signalled(self, run_id: str, action: CancelAction) -> None:
        # Another process was asked to cancel a run; only the one executing it acts.
        if not self._cancels.cancel_here(run_id, action) and run_id in self._held:
            self._cancels.remember(run_id, action)

    # Workers

    def _wake(self, thread_id: str) -> None:
        if self._draining or not self._execute:
            return
        self._workers.wake(thread_id)

    def _claim_at_creation(self, new: NewRun, attended: bool) -> Claim | None:
        # A run this process could claim the moment it is queued is created claimed (one write
        # transaction, not two), holding a slot taken now; storage claims it only if nothing
        # else is pending or running on the thread.
        if (
            not self._execute
            or self._draining
            or new.not_before is not None
            or self._workers.active(new.thread_id)
            or not self._slots.try_take()
        ):
            return None
        self._claiming[new.thread_id] += 1
        return Claim(owner=self.owner, lease=self._leases.lease, durable=not attended)

    async def _run_claimed(self, run: Run, opened: asyncio.Future[None]) -> None:
        # `_claim_and_run` after its claim, for a run claimed at its creation (already held).
        try:
            await opened
            with self._observer.run_claimed(run):
                await self._run(run)
        finally:
            self._held.discard(run["run_id"])

    def _claimed(self, thread_id: str) -> None:
        self._claiming[thread_id] -= 1
        if self._claiming[thread_id] <= 0:
            del self._claiming[thread_id]

    async def _claim_and_run(self, thread_id: str) -> bool:
        self._claiming[thread_id] += 1
        try:
            run = await self._storage.claim_next_run(
                thread_id, owner=self.owner, lease=self._leases.lease
            )
        finally:
            self._claimed(thread_id)
        if run is None:
            return False
        self._held.add(run["run_id"])
        try:
            with self._observer.run_claimed(run):
                await self._run(run)
        finally:
            self._held.discard(run["run_id"])
        return True

    async def _run(self, run: Run) -> None:
        run_id = run["run_id"]
        # Read once, here where the run is claimed; everything after works on the typed options.
        options = RunOptions.from_json(run["kwargs"])
        self._ends.expect(run_id)
        # Only a run claimed more often than allowed can have been blamed that often.
        if (
            run["attempt"] > self._max_attempts
            and await self._storage.charged_attempts(run_id) >= self._max_attempts
        ):
            await self._events.open(run_id, first_id=first_event_id(run["attempt"]))
            state = await self._thread_state(run["thread_id"])
            outcome = replace(
                state,
                status="error",
                # "Type: message", like every run error, so wait and join can split it.
                error=f"RunAttemptsExhausted: The run did not finish in {self._max_attempts} "
                "attempts; the server stopped during each of them",
                thread_status="error",
            )
            await self._finish(run, options, outcome)
            return
        # Registered before any await, so a cancel right after the claim finds the execution.
        execution = asyncio.create_task(self._open_and_execute(run, options), name=f"run:{run_id}")
        self._cancels.register(run_id, execution)
        try:
            outcome = await asyncio.shield(execution)
        except Exception as exc:
            # The executor reports graph failures as outcomes; this is a failure of ours.
            # Ending the run here keeps it from staying `running` with the thread blocked.
            logger.exception('Run "%s" on thread "%s" failed', run_id, run["thread_id"])
            error = {"error": type(exc).__name__, "message": str(exc)}
            with contextlib.suppress(RuntimeError):
                await self._events.publish(run_id, "error", dumps(error))
            outcome = RunOutcome(
                status="error", error=f"{error['error']}: {error['message']}", thread_status="error"
            )
        except asyncio.CancelledError:
            if not execution.done():
                # The worker itself is being stopped (shutdown): leave the run `running` so the
                # next start resumes it, and stop its execution too.
                execution.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await execution
                raise
            action = self._cancels.action(run_id)
            if action == "lost":
                self._executor.release(run_id)
                await self._lost(run)
                return
            await self._after_cancel(run, options, action, self._executor.release(run_id))
            return
        finally:
            self._cancels.unregister(run_id)
            usage = self._executor.release(run_id)
        await self._finish(run, options, replace(outcome, usage=outcome.usage or usage))

    async def _open_and_execute(self, run: Run, options: RunOptions) -> RunOutcome:
        await self._events.open(run["run_id"], first_id=first_event_id(run["attempt"]))
        assistant = self._assistants.pop(run["run_id"], None)
        brief = self._briefs.pop(run["run_id"], None)
        return await self._executor.execute(run, options, assistant=assistant, brief=brief)

    async def _after_cancel(
        self, run: Run, options: RunOptions, action: CancelAction, usage: Usage | None
    ) -> None:
        run_id = run["run_id"]
        # A run cancelled before its execution started has not opened its log yet.
        await self._events.open(run_id, first_id=first_event_id(run["attempt"]))
        error = {"error": "CancelledError", "message": f"The run was cancelled ({action})"}
        await self._events.publish(run_id, "error", dumps(error))
        if action == "rollback":
            await self._storage.delete_run(run["thread_id"], run_id, checkpoints=True)
            await self._settle(run["thread_id"])
            self._observer.run_finished(run, RunOutcome(status="interrupted", usage=usage))
            await self._end_stream(run_id)
            return
        state = await self._thread_state(run["thread_id"])
        await self._finish(
            run, options, replace(state, status="interrupted", error=error["message"], usage=usage)
        )

    async def _finish(self, run: Run, options: RunOptions, outcome: RunOutcome) -> None:
        # Only ever on the run's worker, which asks `_next_due` next.
        run_id = run["run_id"]
        self._cancels.forget(run_id)
        ended = await self._storage.finish_run(run_id, outcome, held_by=self.owner)
        if ended is None:
            # Its lease lapsed and another process took it over before the heartbeat here
            # could see it (`_leases_lost`).
            logger.warning(
                'Run "%s" on thread "%s" ended here after its lease lapsed and another process '
                "took it over; this end is not recorded",
                run_id,
                run["thread_id"],
            )
            await self._lost(run)
            return
        finished = ended.run
        self._due_after_finish[run["thread_id"]] = ended.next_due
        self._observer.run_finished(run, outcome)
        await self._end_stream(run["run_id"], outcome, finished)
        if options.stateless and options.on_completion == "delete":
            with contextlib.suppress(NotFoundError):
                await self._storage.delete_thread(run["thread_id"])
        if options.webhook and finished is not None:
            task = asyncio.create_task(send_webhook(options.webhook, finished))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _leases_lost(self, run_ids: list[str]) -> None:
        # This process went silent past these runs' lease (its event loop stalled, say), and
        # another process's reaper re-queued them: it may be executing them again. Their
        # executions here stop at once, before they write more to the threads' checkpoints. A
        # run with no execution going on is ending here (its end is what the renewal missed)
        # or about to start, and then its end is refused (`_finish`).
        for run_id in run_ids:
            if self._cancels.lose(run_id):
                logger.warning(
                    'Run "%s": its lease lapsed and another process took it over; stopping its '
                    "execution here",
                    run_id,
                )

    async def _lost(self, run: Run) -> None:
        # The run is no longer this process's: the execution that took it over ends it, and
        # waiters here read that end from the database once the run is no longer held here.
        self._assistants.pop(run["run_id"], None)
        self._briefs.pop(run["run_id"], None)
        self._ends.forget(run["run_id"])
        await self._events.close(run["run_id"])

    async def _next_due(self, thread_id: str, *, after_run: bool) -> datetime | None:
        """When the thread's next queued run falls due, for its worker: right after a run,
        as that run's finish read it; else (or if it did not) read now."""
        if after_run and thread_id in self._due_after_finish:
            return self._due_after_finish.pop(thread_id)
        self._due_after_finish.pop(thread_id, None)
        return await self._storage.next_due_time(thread_id)

    async def _end_stream(
        self, run_id: str, outcome: RunOutcome | None = None, final: Run | None = None
    ) -> None:
        self._assistants.pop(run_id, None)
        self._briefs.pop(run_id, None)
        await self._events.publish(run_id, "end", b"null")
        await self._events.close(run_id)
        self._ends.resolve(run_id, final, outcome)
        await self._signals.run_ended(run_id)

    async def _settle(self, thread_id: str) -> None:
        await self._storage.settle_thread(thread_id, await self._thread_state(thread_id))

    async def _thread_state(self, thread_id: str) -> RunOutcome:
        return await latest_outcome(self._storage, self._registry, thread_id)
