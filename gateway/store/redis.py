"""The Redis store: shared state for several workers and replicas.

Every method is one atomic Redis operation (a single command or a Lua script), so replicas sharing a
server agree: ``add_once_in`` is one script comparing the generation marker and then ``SET NX PX``,
the generation marker is created by a script (get, or set if missing, with the server's ``TIME``),
``incr``, ``set_max`` and the set operations are scripts, events are a stream trimmed with
``XADD MAXLEN ~`` (a batch of them is one script).

Every key is ``{PREFIX}:NAME`` (:func:`redis_key`): the configured prefix is a hash tag, so every key
of one deployment lives in one Redis Cluster slot and the script touching two keys (the generation
marker and a replay mark) runs on one node. The same layout on every topology: one server
(:meth:`RedisStore.from_url`), a primary found through Redis Sentinel (:meth:`RedisStore.from_sentinel`,
found again after a failover) or a Redis Cluster (:meth:`RedisStore.from_cluster`), all through
redis-py's own clients.

Every operation has a short deadline (``timeout``, 250 ms by default) and goes through a
:class:`~gateway.store.breaker.CircuitBreaker`, so a hung server (a paused process, a lost network)
costs requests milliseconds and then nothing, instead of a socket timeout each. Redis failures are
translated at this boundary into :class:`~gateway.errors.ServiceUnavailable` (the cause chained),
with messages that name the operation but never the URL, which may carry a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast, final

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import MaxConnectionsError, ReadOnlyError, RedisError, ResponseError

from gateway.errors import ServiceUnavailable
from gateway.store._common import (
    check_event,
    check_events,
    check_number,
    event_id_key,
    parse_number,
    ttl_ms,
)
from gateway.store.base import GENERATION_KEY, Generation
from gateway.store.breaker import CircuitBreaker

__all__ = ["RedisStore", "StoreObserver", "key_pattern", "redis_key"]

#: What :attr:`RedisStore.observer` is told of each operation: its name, the seconds it took, and
#: what it failed with (the Redis or OS error behind the ServiceUnavailable), or ``None``.
StoreObserver = Callable[[str, float, BaseException | None], None]

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

# The generation marker is "RANDOM:MILLISECONDS" (the server's clock). It has no expiry: it goes only
# when the data does. The whole text is the generation's id, so comparing ids is one GET.
_GENERATION = """
local current = redis.call('GET', KEYS[1])
if current then
  return current
end
local t = redis.call('TIME')
local value = ARGV[1] .. ':' .. t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], value)
return value
"""

# One script, so no reset can fall between the generation check and the mark.
_ADD_ONCE_IN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

_GENERATION_TEXT = re.compile(r"^[0-9a-f]{16}:(\d{10,16})\Z")

# ARGV: maxlen, then per event its field count and its fields and values. Returns the last id.
_APPEND_EVENTS = """
local i, last = 2, false
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, i + 1, i + 2 * n))
  i = i + 1 + 2 * n
end
return last
"""


def redis_key(prefix: str, name: str) -> str:
    """The Redis key of the store key ``name`` under ``prefix``: ``{PREFIX}:NAME``, the prefix (less a
    trailing colon) being the hash tag that keeps every key of one deployment in one cluster slot."""
    return "{" + prefix.rstrip(":") + "}:" + name


def key_pattern(prefix: str) -> str:
    """A ``SCAN MATCH`` pattern for every key under ``prefix`` and under longer prefixes starting
    with it (Redis patterns treat braces literally)."""
    return "{" + prefix.rstrip(":") + "*"


# The client types RedisStore drives: one server or a sentinel-managed primary (Redis), or a cluster.
Client = aioredis.Redis | RedisCluster  # type: ignore[type-arg, unused-ignore]


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool (it asks the sentinels for the primary before each new connection) with the
    bounded, waiting behaviour of :class:`~redis.asyncio.BlockingConnectionPool` that
    :meth:`RedisStore.from_url` uses: a burst waits for a free connection, within the deadline."""


_CONNECT_TIMEOUT = 5.0
_SOCKET_TIMEOUT = 5.0
#: The default deadline of one store operation, in seconds.
DEFAULT_TIMEOUT = 0.25
#: The default size of the connection pool (per process).
DEFAULT_MAX_CONNECTIONS = 16


@final
class RedisStore:
    """A :class:`~gateway.store.base.Store` on a Redis server (``redis.asyncio``).

    The store owns ``client`` and closes it in :meth:`close`. Build one with :meth:`from_url`,
    :meth:`from_sentinel` or :meth:`from_cluster`. ``timeout`` bounds each operation (seconds);
    ``breaker`` defaults to a :class:`CircuitBreaker` with its default settings; ``concurrency``,
    if given, is how many operations may run at once (the others wait, within their deadline);
    ``owned`` are other clients the store closes with ``client`` (a sentinel manager's).
    """

    # The ignores cover the stale types-redis stubs (generic Redis, no aclose); redis>=5 ships
    # accurate inline types, under which they are unused.
    def __init__(
        self,
        client: Client,
        *,
        prefix: str,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        concurrency: int | None = None,
        owned: Sequence[aioredis.Redis] = (),  # type: ignore[type-arg, unused-ignore]
    ) -> None:
        if not prefix.strip(":") or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must hold more than colons and no { or } (it becomes the hash tag)")
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout
        self._breaker = breaker or CircuitBreaker()
        self._generation = client.register_script(_GENERATION)
        self._add_once_in = client.register_script(_ADD_ONCE_IN)
        self._incr = client.register_script(_INCR)
        self._set_max = client.register_script(_SET_MAX)
        self._add_member = client.register_script(_ADD_MEMBER)
        self._members = client.register_script(_MEMBERS)
        self._append_events = client.register_script(_APPEND_EVENTS)
        # At most this many operations at once, the others waiting (within their deadline): what a
        # blocking pool gives the other clients, which redis-py's cluster client lacks (it raises
        # MaxConnectionsError, and loading a script takes a connection on every node).
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._owned = list(owned)
        self._initializing: asyncio.Future[Any] | None = None
        self._cluster_known = False
        self._closed = False
        self.observer: StoreObserver | None = None
        """Told of every operation: its name, seconds taken, and the failure (or ``None``)."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        **options: Any,
    ) -> RedisStore:
        """Connect lazily to ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``options`` go to :meth:`redis.asyncio.BlockingConnectionPool.from_url` (a pool of at most
        ``max_connections``). Socket timeouts default to a few seconds, a backstop only: ``timeout``
        is the deadline every operation really has.
        """
        options.setdefault("socket_connect_timeout", _CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", _SOCKET_TIMEOUT)
        options.setdefault("health_check_interval", 30)
        try:
            # A bounded pool: a burst reuses a few connections instead of opening one per request
            # (each costs a handshake, and the burst its deadline); waiting for one is bounded by
            # the operation's deadline, so the pool itself never times out.
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=None, decode_responses=False, **options
            )
        except ValueError:
            # redis-py's message quotes the URL, password included.
            raise ValueError("not a valid Redis URL (redis://, rediss:// or unix://)") from None
        return cls(aioredis.Redis.from_pool(pool), prefix=prefix, timeout=timeout, breaker=breaker)

    @classmethod
    def from_sentinel(
        cls,
        sentinels: Sequence[tuple[str, int]],
        service: str,
        *,
        prefix: str,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        sentinel_password: str | None = None,
        **options: Any,
    ) -> RedisStore:
        """Use the primary the ``sentinels`` (host, port) name for ``service`` (lazily).

        Each new connection asks a sentinel where the primary is, so after a failover the store
        reconnects to the promoted replica on its own: operations fail (fail closed) until then.
        ``options`` (``password``, ``username``, ``db``) are the primary's.
        """
        options.setdefault("socket_connect_timeout", _CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", _SOCKET_TIMEOUT)
        options.setdefault("health_check_interval", 30)
        sentinel_kwargs: dict[str, Any] = {
            "socket_connect_timeout": options["socket_connect_timeout"],
            "socket_timeout": options["socket_timeout"],
        }
        if sentinel_password is not None:
            sentinel_kwargs["password"] = sentinel_password
        # Sentinel is untyped in redis-py.
        manager = Sentinel(list(sentinels), sentinel_kwargs=sentinel_kwargs, **options)  # type: ignore[no-untyped-call]
        client = manager.master_for(
            service,
            connection_pool_class=_BlockingSentinelPool,
            max_connections=max_connections,
            timeout=None,
            decode_responses=False,
        )
        return cls(client, prefix=prefix, timeout=timeout, breaker=breaker, owned=manager.sentinels)

    @classmethod
    def from_cluster(
        cls,
        nodes: Sequence[tuple[str, int]],
        *,
        prefix: str,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        **options: Any,
    ) -> RedisStore:
        """Use the Redis Cluster that the startup ``nodes`` (host, port) belong to (lazily).

        The client learns the slot map from them and follows ``MOVED`` redirections after a
        failover or a resharding. Every key is hash-tagged with ``prefix``, so every operation of
        this store goes to the one node serving that slot. ``max_connections`` is per node.
        ``options`` (``password``, ``username``) are the nodes'.
        """
        options.setdefault("socket_connect_timeout", _CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", _SOCKET_TIMEOUT)
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            max_connections=max_connections,
            decode_responses=False,
            **options,
        )
        return cls(client, prefix=prefix, timeout=timeout, breaker=breaker, concurrency=max_connections)

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker this store's operations go through."""
        return self._breaker

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._prefix!r})"

    def _key(self, key: str) -> str:
        return redis_key(self._prefix, key)

    async def _cluster_ready(self, cluster: RedisCluster) -> None:
        """Learn the cluster's slot map before the first command.

        redis-py initialises lazily, and commands racing that can meet connections it drops. It
        takes a few hundred milliseconds (``COMMAND`` is long), more than one operation's
        deadline: so it runs once, as a task of its own that every waiting operation shares
        (within a connect timeout) without cancelling it; a failed one is started again by the next
        operation. After it, redis-py follows a changed topology (MOVED, a failover) by itself.
        """
        task = self._initializing
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._initializing = asyncio.ensure_future(cluster.initialize())
            # Retrieved here, so a failure nobody waited for is not reported as never retrieved.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.shield(task)
        self._cluster_known = True

    @asynccontextmanager
    async def _boundary(self, operation: str) -> AsyncIterator[None]:
        observer = self.observer
        if observer is None:
            async with self._guarded(operation):
                yield
            return
        started = time.perf_counter()
        try:
            async with self._guarded(operation):
                yield
        except ServiceUnavailable as exc:
            observer(operation, time.perf_counter() - started, exc.__cause__ or exc)
            raise
        observer(operation, time.perf_counter() - started, None)

    @asynccontextmanager
    async def _guarded(self, operation: str) -> AsyncIterator[None]:
        if self._closed:
            raise ServiceUnavailable("The store is closed.")
        self._breaker.before(operation)
        try:
            # A deadline for the whole operation: connecting, waiting for a pooled connection, the
            # client's retries and the reply. On expiry redis-py drops the connection it was using.
            if isinstance(self._redis, RedisCluster) and not self._cluster_known:
                # Once per store, the slot map first: longer than one operation's deadline.
                async with asyncio.timeout(max(self._timeout, _CONNECT_TIMEOUT)):
                    await self._cluster_ready(self._redis)
            async with asyncio.timeout(self._timeout), self._slots or contextlib.nullcontext():
                yield
        except ResponseError as exc:
            # The server answered, with an error: it is up (but a read-only replica cannot serve).
            if isinstance(exc, ReadOnlyError):
                self._breaker.failed(operation, exc)
            else:
                self._breaker.succeeded()
            raise ServiceUnavailable(f"The store refused the operation ({operation}).") from exc
        except MaxConnectionsError as exc:
            # A cluster node's connections all in use (should not happen below the concurrency
            # bound): this process is busy, which says nothing about the server.
            self._breaker.abandoned()
            raise ServiceUnavailable(f"The store is busy ({operation}: {type(exc).__name__}).") from exc
        except (RedisError, OSError) as exc:
            # TimeoutError (ours or the socket's) is an OSError. The type names the failure;
            # str(exc) could carry the server address or, from some paths, parts of the URL.
            self._breaker.failed(operation, exc)
            message = f"The store is unavailable ({operation}: {type(exc).__name__})."
            raise ServiceUnavailable(message) from exc
        except BaseException:
            # Cancelled from outside (the client went away) or a caller's bug: nothing learnt
            # about the server, but a probe must not stay taken.
            self._breaker.abandoned()
            raise
        self._breaker.succeeded()

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

    async def generation(self) -> Generation:
        """The server's generation marker, created (with the server's clock) if missing."""
        async with self._boundary("generation"):
            raw = await self._generation(keys=[self._key(GENERATION_KEY)], args=[secrets.token_hex(8)])
        text = _text(raw) if isinstance(raw, bytes | str) else ""
        match = _GENERATION_TEXT.match(text)
        if match is None:
            # Fail closed: without a readable generation no replay mark can be trusted. Deleting
            # the key starts a new generation (and refuses everything issued before it).
            raise ServiceUnavailable(f"The store's generation marker is unreadable ({GENERATION_KEY}).")
        return Generation(id=text, started=int(match.group(1)) / 1000)

    async def add_once_in(self, key: str, ttl: float, generation: Generation) -> bool | None:
        """Mark ``key`` as used for ``ttl`` seconds if the server is still in ``generation`` (one
        script: compare the marker, then ``SET NX PX``); ``None`` when it is not."""
        px = ttl_ms(ttl)
        async with self._boundary("add_once_in"):
            result = await self._add_once_in(
                keys=[self._key(GENERATION_KEY), self._key(key)], args=[generation.id, px]
            )
        if result == -1:
            return None
        return bool(result == 1)

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

    async def append_events(
        self, stream: str, events: Sequence[Mapping[str, str]], maxlen: int = 10_000
    ) -> str | None:
        """Append ``events`` in one round trip: a script running ``XADD MAXLEN ~`` for each.

        One command carrying every event costs the client a third of what a pipeline of ``XADD``
        commands does (one command to encode, one short reply instead of one per event: see
        bench/audit_bench.py), and a script runs with no other command in between, so the batch
        is contiguous. Like every operation it has the store's deadline and goes through the
        circuit breaker, so a batch must be small enough to travel within the deadline. If the
        connection drops after the script was sent, redis-py's retry may append the batch twice:
        callers get at-least-once, never a silent loss.
        """
        batch = check_events(events, maxlen)
        if not batch:
            return None
        args: list[Any] = [maxlen]
        for fields in batch:
            args.append(len(fields))
            for name, value in fields.items():
                args += (name, value)
        async with self._boundary("append_events"):
            last_id = await self._append_events(keys=[self._key(stream)], args=args)
        return _text(last_id)

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
        """Return ``True`` when the server answers in time; ``False`` (never an exception) otherwise,
        at once while the circuit breaker is open."""
        if self._closed:
            return False
        try:
            async with self._boundary("ping"):
                return bool(await self._redis.ping())
        except ServiceUnavailable:
            return False

    async def close(self) -> None:
        """Close the connection pool; later calls raise :class:`~gateway.errors.ServiceUnavailable`.

        Bounded too: a hung server does not hold up shutdown.
        """
        if self._closed:
            return
        self._closed = True
        if self._initializing is not None:
            self._initializing.cancel()
        try:
            async with asyncio.timeout(max(self._timeout, 1.0)):
                for client in (self._redis, *self._owned):
                    await client.aclose()  # type: ignore[attr-defined, unused-ignore]
        except (RedisError, OSError):
            pass  # the connections are being dropped either way


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
