"""One conformance suite that every store backend passes (memory, and Redis on a real server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from gateway.errors import ServiceUnavailable
from gateway.store import Generation, Store

StoreFactory = Callable[[], Awaitable[Store]]  # the store_factory fixture (see conftest.py)

# Short TTLs keep the suite fast, yet long enough for a few round trips to a loaded Redis Cluster
# before the first check (0.05 s was not, under xdist); the sleeps are generous so expiry is certain.
SHORT = 0.3
PAST_SHORT = 0.8


async def test_get_set_delete(store: Store) -> None:
    assert await store.get("k") is None
    await store.set("k", b"v1")
    assert await store.get("k") == b"v1"
    await store.set("k", b"\x00\xffbinary")
    assert await store.get("k") == b"\x00\xffbinary"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # deleting an absent key is fine
    assert await store.get("k") is None


async def test_keys_are_independent(store: Store) -> None:
    await store.set("a", b"1")
    await store.set("b", b"2")
    await store.delete("a")
    assert await store.get("a") is None
    assert await store.get("b") == b"2"


async def test_set_ttl_expires(store: Store) -> None:
    await store.set("short", b"x", ttl=SHORT)
    await store.set("long", b"y", ttl=60)
    await store.set("forever", b"z")
    assert await store.get("short") == b"x"
    await asyncio.sleep(PAST_SHORT)
    assert await store.get("short") is None
    assert await store.get("long") == b"y"
    assert await store.get("forever") == b"z"


async def test_set_without_ttl_clears_previous_ttl(store: Store) -> None:
    await store.set("k", b"old", ttl=SHORT)
    await store.set("k", b"new")
    await asyncio.sleep(PAST_SHORT)
    assert await store.get("k") == b"new"


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_bad_ttl_refused(store: Store, ttl: float) -> None:
    generation = await store.generation()
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.add_once_in("k", ttl, generation)
    with pytest.raises(ValueError, match="ttl"):
        await store.incr("k", ttl)
    assert await store.get("k") is None


async def test_generation_is_stable_and_shared(store_factory: StoreFactory) -> None:
    first, second = await store_factory(), await store_factory()
    generation = await first.generation()
    assert isinstance(generation, Generation)
    assert generation.id and 0 < generation.started < time.time()
    # Asked again, or by another replica: the same generation, not a new one.
    assert await first.generation() == generation
    assert await second.generation() == generation


async def test_generations_started_at_once_agree(store_factory: StoreFactory) -> None:
    # Replicas racing to find (or start) the generation all end up with one and the same.
    stores = [await store_factory() for _ in range(4)]
    found = await asyncio.gather(*(s.generation() for s in stores for _ in range(5)))
    assert len(set(found)) == 1


async def test_add_once_in_only_once_until_expiry(store: Store) -> None:
    generation = await store.generation()
    assert await store.add_once_in("replay:1", SHORT, generation) is True
    assert await store.add_once_in("replay:1", SHORT, generation) is False
    assert await store.add_once_in("replay:2", 60, generation) is True
    await asyncio.sleep(PAST_SHORT)
    assert await store.add_once_in("replay:1", 60, generation) is True
    assert await store.add_once_in("replay:1", 60, generation) is False
    assert await store.add_once_in("replay:2", 60, generation) is False


async def test_add_once_in_another_generation_marks_nothing(store: Store) -> None:
    current = await store.generation()
    other = Generation(id="0123456789abcdef:1000000000000", started=1_000_000_000.0)
    assert await store.add_once_in("replay:x", 60, other) is None
    assert await store.add_once_in("replay:x", 60, other) is None
    # Nothing was marked: in the store's own generation the item is still new.
    assert await store.add_once_in("replay:x", 60, current) is True
    assert await store.add_once_in("replay:x", 60, other) is None


async def test_add_once_in_concurrent_exactly_one_winner(store_factory: StoreFactory) -> None:
    # Two replicas (two Redis connections pools) racing on the same key, many calls each.
    first, second = await store_factory(), await store_factory()
    generation = await first.generation()
    calls = [s.add_once_in("replay:race", 60, generation) for _ in range(50) for s in (first, second)]
    results = await asyncio.gather(*calls)
    assert results.count(True) == 1
    assert results.count(False) == 99


async def test_set_members_expire_one_by_one(store: Store) -> None:
    assert await store.members("subject") == []
    await store.add_member("subject", "session-a", SHORT)
    await store.add_member("subject", "session-b", 60)
    await store.add_member("subject", "session-b", SHORT)  # a shorter ttl never shortens a member
    assert sorted(await store.members("subject")) == ["session-a", "session-b"]
    await asyncio.sleep(PAST_SHORT)
    assert await store.members("subject") == ["session-b"]
    await store.delete("subject")
    assert await store.members("subject") == []


async def test_set_lives_as_long_as_its_last_member(store: Store) -> None:
    await store.add_member("subject", "a", SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert await store.members("subject") == []
    await store.add_member("subject", "b", SHORT)
    assert await store.members("subject") == ["b"]


async def test_add_member_concurrent_keeps_every_member(store_factory: StoreFactory) -> None:
    # Two replicas adding to one set at once: none of the 100 members may be lost.
    first, second = await store_factory(), await store_factory()
    calls = [
        s.add_member("subject", f"{i}-{n}", 60) for i in range(50) for n, s in enumerate((first, second))
    ]
    await asyncio.gather(*calls)
    assert len(await first.members("subject")) == 100
    assert sorted(await first.members("subject")) == sorted(await second.members("subject"))


@pytest.mark.parametrize("ttl", [0, -1, float("nan")])
async def test_add_member_refuses_bad_ttl(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.add_member("subject", "m", ttl)


async def test_incr_counts_within_window_then_resets(store: Store) -> None:
    assert [await store.incr("rate", SHORT * 2) for _ in range(3)] == [1, 2, 3]
    assert await store.incr("other", 60) == 1
    await asyncio.sleep(PAST_SHORT)
    assert await store.incr("rate", 60) == 1
    assert await store.incr("other", 60) == 2


async def test_incr_window_starts_at_first_increment(store: Store) -> None:
    # Later increments must not push the reset back (a fixed window, not a sliding one). The margins
    # (a quarter of a second each way) leave room for a loaded machine and a cluster's round trips.
    assert await store.incr("rate", 0.6) == 1
    await asyncio.sleep(0.35)
    assert await store.incr("rate", 0.6) == 2
    await asyncio.sleep(0.35)
    assert await store.incr("rate", 0.6) == 1


async def test_incr_concurrent_counts_every_call(store_factory: StoreFactory) -> None:
    first, second = await store_factory(), await store_factory()
    results = await asyncio.gather(*(s.incr("rate", 60) for _ in range(20) for s in (first, second)))
    assert sorted(results) == list(range(1, 41))


async def test_set_max_only_moves_forward(store: Store) -> None:
    assert await store.get_number("rev") is None
    assert await store.set_max("rev", 100.5) == 100.5
    assert await store.get_number("rev") == 100.5
    assert await store.set_max("rev", 50) == 100.5
    assert await store.get_number("rev") == 100.5
    assert await store.set_max("rev", 1_700_000_000.123) == 1_700_000_000.123
    assert await store.get_number("rev") == 1_700_000_000.123
    assert await store.set_max("rev", 1_700_000_000.123) == 1_700_000_000.123


async def test_set_max_concurrent_keeps_the_maximum(store_factory: StoreFactory) -> None:
    first, second = await store_factory(), await store_factory()
    values = [float(v) for v in range(1, 41)]
    await asyncio.gather(*(s.set_max("rev", v) for v, s in zip(values, [first, second] * 20, strict=True)))
    assert await first.get_number("rev") == 40.0
    assert await second.get_number("rev") == 40.0


async def test_set_max_refuses_non_finite(store: Store) -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            await store.set_max("rev", bad)
    assert await store.get_number("rev") is None


async def test_get_number_of_non_number_is_none(store: Store) -> None:
    await store.set("text", b"not a number")
    assert await store.get_number("text") is None
    assert await store.set_max("text", 3) == 3.0


async def test_events_in_order_with_after_and_count(store: Store) -> None:
    ids = [await store.append_event("audit", {"n": str(i), "action": "sts:Assume"}) for i in range(5)]
    assert len(set(ids)) == 5
    events = await store.read_events("audit")
    assert [e for e, _ in events] == ids
    assert [f["n"] for _, f in events] == ["0", "1", "2", "3", "4"]
    assert events[0][1] == {"n": "0", "action": "sts:Assume"}
    assert [e for e, _ in await store.read_events("audit", after=ids[1])] == ids[2:]
    assert [e for e, _ in await store.read_events("audit", after=ids[1], count=2)] == ids[2:4]
    assert await store.read_events("audit", after=ids[-1]) == []
    assert await store.read_events("nothing-here") == []


async def test_events_paging_reads_everything_once(store: Store) -> None:
    ids = [await store.append_event("audit", {"n": str(i)}) for i in range(25)]
    seen: list[str] = []
    cursor = "0"
    while page := await store.read_events("audit", after=cursor, count=10):
        seen.extend(e for e, _ in page)
        cursor = page[-1][0]
    assert seen == ids


async def test_events_trimmed_to_about_maxlen(store: Store) -> None:
    ids = [await store.append_event("audit", {"n": str(i)}, maxlen=10) for i in range(300)]
    events = await store.read_events("audit", count=1000)
    # Redis trims approximately (whole nodes of ~100 entries); memory exactly. Either way the
    # stream is bounded, keeps at least maxlen, and keeps the newest.
    assert 10 <= len(events) <= 200
    assert [e for e, _ in events] == ids[-len(events) :]


async def test_events_streams_are_independent(store: Store) -> None:
    await store.append_event("a", {"x": "1"})
    await store.append_event("b", {"x": "2"})
    assert [f for _, f in await store.read_events("a")] == [{"x": "1"}]
    assert [f for _, f in await store.read_events("b")] == [{"x": "2"}]


async def test_events_bad_arguments_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="at least one field"):
        await store.append_event("audit", {})
    with pytest.raises(ValueError, match="maxlen"):
        await store.append_event("audit", {"x": "1"}, maxlen=0)
    with pytest.raises(ValueError, match="event ids"):
        await store.read_events("audit", after="+")
    with pytest.raises(ValueError, match="count"):
        await store.read_events("audit", count=0)
    assert await store.read_events("audit") == []


async def test_ping_and_close(store: Store) -> None:
    assert await store.ping() is True
    await store.set("k", b"v")
    generation = await store.generation()
    await store.close()
    await store.close()  # idempotent
    assert await store.ping() is False
    with pytest.raises(ServiceUnavailable):
        await store.get("k")
    with pytest.raises(ServiceUnavailable):
        await store.add_once_in("k", 1, generation)
    with pytest.raises(ServiceUnavailable):
        await store.generation()


async def test_replicas_share_state(store_factory: StoreFactory) -> None:
    first, second = await store_factory(), await store_factory()
    await first.set("shared", b"v")
    assert await second.get("shared") == b"v"
    generation = await first.generation()
    assert await first.add_once_in("once", 60, generation) is True
    assert await second.add_once_in("once", 60, generation) is False
    await first.set_max("rev", 7)
    assert await second.get_number("rev") == 7.0
    event_id = await first.append_event("audit", {"x": "1"})
    assert await second.read_events("audit") == [(event_id, {"x": "1"})]


async def test_event_batch_in_order(store: Store) -> None:
    before = await store.append_event("audit", {"n": "single"})
    last = await store.append_events("audit", [{"n": str(i), "action": "sts:Assume"} for i in range(5)])
    events = await store.read_events("audit")
    assert events[0][0] == before
    assert events[-1][0] == last
    assert len({e for e, _ in events}) == 6
    assert [f["n"] for _, f in events[1:]] == ["0", "1", "2", "3", "4"]
    assert events[1][1] == {"n": "0", "action": "sts:Assume"}
    after = await store.append_event("audit", {"n": "later", "second": "field"})
    assert await store.read_events("audit", after=last) == [(after, {"n": "later", "second": "field"})]


async def test_event_batch_empty_appends_nothing(store: Store) -> None:
    assert await store.append_events("audit", []) is None
    assert await store.read_events("audit") == []


async def test_event_batch_keeps_every_field(store: Store) -> None:
    batch = [{"a": "1"}, {"a": "2", "b": "x y", "c": ""}, {"event": '{"json": "line"}'}]
    last = await store.append_events("audit", batch)
    events = await store.read_events("audit")
    assert [f for _, f in events] == batch
    assert events[-1][0] == last


async def test_event_batch_refused_whole(store: Store) -> None:
    # One bad event refuses the batch before anything is written: no partial batch in the stream.
    with pytest.raises(ValueError, match="at least one field"):
        await store.append_events("audit", [{"x": "1"}, {}])
    with pytest.raises(TypeError, match="strings"):
        await store.append_events("audit", [{"x": "1"}, {"x": 2}])  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="maxlen"):
        await store.append_events("audit", [{"x": "1"}], maxlen=0)
    with pytest.raises(ValueError, match="maxlen"):
        await store.append_events("audit", [], maxlen=0)
    assert await store.read_events("audit") == []


async def test_event_batch_trimmed_to_about_maxlen(store: Store) -> None:
    last = await store.append_events("audit", [{"n": str(i)} for i in range(300)], maxlen=10)
    events = await store.read_events("audit", count=1000)
    # As for single appends: bounded, at least maxlen kept, the newest kept.
    assert 10 <= len(events) <= 200
    assert [f["n"] for _, f in events] == [str(i) for i in range(300 - len(events), 300)]
    assert events[-1][0] == last


async def test_event_batches_from_replicas_stay_contiguous(store_factory: StoreFactory) -> None:
    # Two replicas appending batches at once: every batch lands whole, none interleaved.
    first, second = await store_factory(), await store_factory()
    batches = [
        s.append_events("audit", [{"batch": f"{b}-{n}", "i": str(i)} for i in range(50)])
        for b in range(4)
        for n, s in enumerate((first, second))
    ]
    lasts = await asyncio.gather(*batches)
    events = await first.read_events("audit", count=1000)
    order = [f["batch"] for _, f in events]
    assert len(order) == 400
    runs = [order[i : i + 50] for i in range(0, 400, 50)]
    assert all(len(set(run)) == 1 for run in runs)
    assert sorted(run[0] for run in runs) == sorted(f"{b}-{n}" for b in range(4) for n in range(2))
    assert {events[i + 49][0] for i in range(0, 400, 50)} == set(lasts)


async def test_event_batch_on_closed_store_unavailable(store: Store) -> None:
    await store.close()
    with pytest.raises(ServiceUnavailable):
        await store.append_events("audit", [{"x": "1"}])
