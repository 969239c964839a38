"""Choosing and opening the storage backend a config names. The one place outside a backend's
package that knows the backends exist: everything else sees `storage.base.Storage`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agent_runtime.storage.base import Storage
from agent_runtime.storage.serde import TypeKey
from agent_runtime.storage.sqlite import SqliteStorage

if TYPE_CHECKING:
    from agent_runtime.config import RuntimeConfig


async def open_storage(config: RuntimeConfig, *, graph_types: Iterable[TypeKey] = ()) -> Storage:
    """The config's backend, set up (its tables migrated) and ready; the caller closes it.

    Args:
        graph_types: the types the served graphs declare (`storage.serde.graph_types`), which
            checkpoints may decode to.

    Raises:
        StorageError: the database cannot be opened or migrated; nothing stays open.
    """
    storage = SqliteStorage(
        config.database,
        store_config=config.store,
        checkpoint_cache=config.checkpoint_cache,
        serde=config.serde,
        graph_types=graph_types,
        synchronous=config.sqlite_synchronous,
    )
    await storage.setup()
    return storage
