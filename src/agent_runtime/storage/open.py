"""Choosing and opening the storage backend a config names. The one place outside a backend's
package that knows the backends exist: everything else sees `storage.base.Storage`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config import RuntimeConfig
from agent_runtime.errors import ConfigError
from agent_runtime.storage.base import Storage
from agent_runtime.storage.serde import TypeKey
from agent_runtime.storage.sqlite import SqliteStorage


async def open_storage(
    config: RuntimeConfig, *, graph_types: Iterable[TypeKey] = (), clock: Clock = SYSTEM_CLOCK
) -> Storage:
    """The config's backend, set up (its tables migrated) and ready; the caller closes it.

    Args:
        graph_types: the types the served graphs declare (`storage.serde.graph_types`), which
            checkpoints may decode to.
        clock: what stamps records and decides expiry and due times.

    Raises:
        ConfigError: the config names a kind of database no backend serves.
        StorageError: the database cannot be opened or migrated; nothing stays open.
    """
    database = config.database
    storage: Storage
    if database.kind == "postgres":
        storage = _postgres_storage(config, graph_types=graph_types, clock=clock)
    elif database.kind != "sqlite":
        # `config` refuses the kinds it does not know; this guards a config built in code.
        raise ConfigError(f"The database kind {database.kind!r} is not supported")
    else:
        storage = _sqlite_storage(config, graph_types=graph_types, clock=clock)
    await storage.setup()
    return storage


def _sqlite_storage(
    config: RuntimeConfig, *, graph_types: Iterable[TypeKey], clock: Clock
) -> Storage:
    database = config.database
    return SqliteStorage(
        Path(database.uri),
        store_config=config.store,
        checkpoint_cache=config.checkpoint_cache,
        serde=config.serde,
        graph_types=graph_types,
        clock=clock,
        synchronous=config.sqlite_synchronous,
    )


def _postgres_storage(
    config: RuntimeConfig, *, graph_types: Iterable[TypeKey], clock: Clock
) -> Storage:
    # Imported only here: psycopg and LangGraph's Postgres packages are the `postgres` extra,
    # which a SQLite-only install does not have.
    try:
        from agent_runtime.storage.postgres import PostgresStorage
    except ImportError as exc:
        raise ConfigError(
            f"The database is PostgreSQL, which needs packages that are not installed ({exc.name}"
            ' is missing); install them with pip install "agent-runtime[postgres]"'
        ) from None
    return PostgresStorage(
        config.database.uri,
        pool_size=config.database.pool_size,
        prepared_statements=config.database.prepared_statements,
        store_config=config.store,
        checkpoint_cache=config.checkpoint_cache,
        serde=config.serde,
        graph_types=graph_types,
        clock=clock,
    )
