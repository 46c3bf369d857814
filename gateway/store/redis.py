"""The Redis store: shared state for several workers and replicas.

Every method is one atomic Redis operation (a single command or a Lua script), so replicas sharing a
server agree: ``add_once`` is ``SET NX PX``, ``incr``, ``set_max`` and the set operations are
scripts, events are a stream trimmed with ``XADD MAXLEN ~``. Every key gets the configured prefix.

Redis failures are translated at this boundary into :class:`~gateway.errors.ServiceUnavailable`
(the cause chained), with messages that name the operation but never the URL, which may carry a
password.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast, final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import ServiceUnavailable
from gateway.store._common import check_event, check_number, event_id_key, parse_number, ttl_ms

__all__ = ["RedisStore"]

# The window starts at the first increment: a counter left without expiry (PTTL -1) gets one too.
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""

# Numbers travel as strings both ways: Lua would truncate a returned number to an integer. The key's
# TTL, if any, is kept.
_SET_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current ~= nil and current >= tonumber(ARGV[1]) then
  return redis.call('GET', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return ARGV[1]
"""

# A set with expiring members is a hash member -> deadline (ms, the server's clock, so every replica
# agrees); adding prunes expired members and stretches the key's life to its longest member.
_ADD_MEMBER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if old == nil or old < deadline then
  redis.call('HSET', KEYS[1], ARGV[1], deadline)
end
local latest = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local d = tonumber(all[i + 1])
  if d <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif d > latest then
    latest = d
  end
end
redis.call('PEXPIREAT', KEYS[1], latest)
return 1
"""

_MEMBERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then
    table.insert(out, all[i])
  end
end
return out
"""

_CONNECT_TIMEOUT = 5.0
_SOCKET_TIMEOUT = 5.0


@final
class RedisStore:
    """A :class:`~gateway.store.base.Store` on a Redis server (``redis.asyncio``).

    The store owns ``client`` and closes it in :meth:`close`. Build one from a URL with
    :meth:`from_url`.
    """

    # The ignores cover the stale types-redis stubs (generic Redis, no aclose); redis>=5 ships
    # accurate inline types, under which they are unused.
    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:  # type: ignore[type-arg, unused-ignore]
        if not prefix:
            raise ValueError("prefix must not be empty")
        self._redis = client
        self._prefix = prefix
        self._incr = client.register_script(_INCR)
        self._set_max = client.register_script(_SET_MAX)
        self._add_member = client.register_script(_ADD_MEMBER)
        self._members = client.register_script(_MEMBERS)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str, **options: Any) -> RedisStore:
        """Connect lazily to ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``options`` go to :meth:`redis.asyncio.Redis.from_url`; timeouts default to a few seconds so
        a dead server fails requests instead of hanging them.
        """
        options.setdefault("socket_connect_timeout", _CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", _SOCKET_TIMEOUT)
        options.setdefault("health_check_interval", 30)
        try:
            client = aioredis.Redis.from_url(url, decode_responses=False, **options)
        except ValueError:
            # redis-py's message quotes the URL, password included.
            raise ValueError("not a valid Redis URL (redis://, rediss:// or unix://)") from None
        return cls(client, prefix=prefix)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._prefix!r})"

    def _key(self, key: str) -> str:
        return self._prefix + key

    @asynccontextmanager
    async def _boundary(self, operation: str) -> AsyncIterator[None]:
        if self._closed:
            raise ServiceUnavailable("The store is closed.")
        try:
            yield
        except (RedisError, OSError) as exc:
            # The type names the failure (ConnectionError, TimeoutError...); str(exc) could carry
            # the server address or, from some paths, parts of the URL.
            message = f"The store is unavailable ({operation}: {type(exc).__name__})."
            raise ServiceUnavailable(message) from exc

    # -- Store -------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """Return the value stored at ``key``, or ``None`` if absent or expired."""
        async with self._boundary("get"):
            value = await self._redis.get(self._key(key))
        # The client is built without decode_responses, so values are bytes.
        return cast("bytes | None", value)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` at ``key``, expiring after ``ttl`` seconds (never, if ``None``)."""
        px = None if ttl is None else ttl_ms(ttl)
        async with self._boundary("set"):
            await self._redis.set(self._key(key), bytes(value), px=px)

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        async with self._boundary("delete"):
            await self._redis.delete(self._key(key))

    async def add_once(self, key: str, ttl: float) -> bool:
        """Atomically mark ``key`` as used for ``ttl`` seconds (``SET NX PX``); ``True`` the first time."""
        px = ttl_ms(ttl)
        async with self._boundary("add_once"):
            created = await self._redis.set(self._key(key), b"1", nx=True, px=px)
        return bool(created)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Atomically add ``member`` to the set at ``key`` for ``ttl`` seconds (a Lua script)."""
        px = ttl_ms(ttl)
        async with self._boundary("add_member"):
            await self._add_member(keys=[self._key(key)], args=[member, px])

    async def members(self, key: str) -> list[str]:
        """The unexpired members of the set at ``key``."""
        async with self._boundary("members"):
            found = await self._members(keys=[self._key(key)])
        return [_text(m) for m in found or ()]

    async def incr(self, key: str, window: float) -> int:
        """Increment a counter that resets ``window`` seconds after its first increment."""
        px = ttl_ms(window)
        async with self._boundary("incr"):
            count = await self._incr(keys=[self._key(key)], args=[px])
        return int(count)

    async def set_max(self, key: str, value: float) -> float:
        """Atomically raise the number at ``key`` to ``value`` if it is lower; return the result."""
        value = check_number(value)
        async with self._boundary("set_max"):
            result = await self._set_max(keys=[self._key(key)], args=[repr(value)])
        number = parse_number(result)
        if number is None:
            raise ServiceUnavailable("The store returned an unexpected value (set_max).")
        return number

    async def get_number(self, key: str) -> float | None:
        """Return the number stored by :meth:`set_max`, or ``None``."""
        async with self._boundary("get_number"):
            raw = await self._redis.get(self._key(key))
        return parse_number(cast("bytes | None", raw))

    async def append_event(self, stream: str, event: Mapping[str, str], maxlen: int = 10_000) -> str:
        """Append ``event`` to ``stream`` (``XADD MAXLEN ~``: about ``maxlen`` kept); return its id."""
        fields: dict[Any, Any] = check_event(event, maxlen)
        async with self._boundary("append_event"):
            event_id = await self._redis.xadd(self._key(stream), fields, maxlen=maxlen, approximate=True)
        return _text(event_id)

    async def read_events(
        self, stream: str, after: str = "0", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        """Return up to ``count`` events with ids after ``after``, oldest first (``XRANGE``)."""
        ms, seq = event_id_key(after)
        if count < 1:
            raise ValueError("count must be at least 1")
        async with self._boundary("read_events"):
            entries = await self._redis.xrange(self._key(stream), min=f"({ms}-{seq}", max="+", count=count)
        return [
            (_text(event_id or b""), {_text(name): _text(value) for name, value in (fields or {}).items()})
            for event_id, fields in entries or ()
        ]

    async def ping(self) -> bool:
        """Return ``True`` when the server answers; ``False`` (never an exception) otherwise."""
        if self._closed:
            return False
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the connection pool; later calls raise :class:`~gateway.errors.ServiceUnavailable`."""
        if self._closed:
            return
        self._closed = True
        await self._redis.aclose()  # type: ignore[attr-defined, unused-ignore]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
