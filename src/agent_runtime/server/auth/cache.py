"""`auth.cache`: what the authenticate handler answered, remembered per credentials (the values
of the configured headers) for a while, least recently used first out. Only successes are
kept: a refused request asks the handler again next time."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers

from agent_runtime.config import AuthCacheConfig
from agent_runtime.user import AuthUser

CacheKey = tuple[str | None, ...]


class AuthCache:
    """A bounded TTL cache of authenticated users keyed by request credentials."""

    def __init__(
        self, config: AuthCacheConfig, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._now = now
        self._entries: OrderedDict[CacheKey, tuple[float, AuthUser]] = OrderedDict()

    def key(self, headers: Headers) -> CacheKey | None:
        """The request's credentials; None when it carries none of the headers (nothing to
        key on, so nothing is cached)."""
        values = tuple(headers.get(name) for name in self.config.cache_keys)
        return values if any(value is not None for value in values) else None

    def get(self, key: CacheKey) -> AuthUser | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, user = found
        if self._now() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return user

    def put(self, key: CacheKey, user: AuthUser) -> None:
        self._entries[key] = (self._now() + self.config.ttl_seconds, user)
        self._entries.move_to_end(key)
        while len(self._entries) > self.config.max_size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
