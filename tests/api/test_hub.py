"""SkeletonHub without a server: drop-oldest queues, counters, publishing from many threads."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import msgpack
import numpy as np

from crosspose.api.hub import SkeletonHub, encode


def test_a_full_queue_drops_its_oldest_and_counts_them() -> None:
    hub = SkeletonHub(queue_size=4)

    async def main() -> list[int]:
        sub = hub.subscribe("json")
        assert sub is not None
        for seq in range(10):
            hub.publish({"type": "skeleton", "seq": seq})
        assert sub.queued == 4
        got = [json.loads(await sub.next())["seq"] for _ in range(4)]
        assert (sub.dropped, hub.dropped_total) == (6, 6)
        hub.unsubscribe(sub)
        return got

    assert asyncio.run(main()) == [6, 7, 8, 9]  # the newest survive, in order
    assert hub.client_count == 0


def test_publishing_from_many_threads_loses_nothing_it_does_not_count() -> None:
    hub = SkeletonHub(queue_size=8)
    threads, per_thread = 8, 500

    async def main() -> tuple[int, int, int]:
        sub = hub.subscribe("msgpack")
        assert sub is not None
        received = 0

        def produce(t: int) -> None:
            for i in range(per_thread):
                hub.publish({"type": "skeleton", "seq": t * per_thread + i})

        workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        while any(w.is_alive() for w in workers) or sub.queued:
            if sub.queued:
                msgpack.unpackb(await sub.next())
                received += 1
            else:
                await asyncio.sleep(0.001)
        for w in workers:
            w.join()
        return received, sub.dropped, sub.queued

    received, dropped, queued = asyncio.run(main())
    assert received + dropped + queued == threads * per_thread
    assert hub.published == hub.skeletons == threads * per_thread


def test_an_unencodable_message_is_counted_and_the_publisher_survives() -> None:
    hub = SkeletonHub()

    async def main() -> None:
        sub = hub.subscribe("json")
        assert sub is not None
        hub.publish({"type": "skeleton", "seq": 0, "oops": object()})
        hub.publish({"type": "skeleton", "seq": 1})
        assert json.loads(await sub.next())["seq"] == 1

    asyncio.run(main())
    assert hub.unencodable == 1


def test_encoding_numpy_and_non_finite_values() -> None:
    message = {"joints": np.array([[0.5, math.nan, 1.0, 0.0]]), "seq": np.int64(3)}
    assert json.loads(encode(message, "json")) == {"joints": [[0.5, None, 1.0, 0.0]], "seq": 3}
    packed = encode(message, "msgpack")
    assert isinstance(packed, bytes)
    back = msgpack.unpackb(packed)
    assert back["seq"] == 3
    assert math.isnan(back["joints"][0][1])


def test_publish_without_subscribers_only_counts() -> None:
    hub = SkeletonHub()
    hub.publish({"type": "skeleton", "seq": 0, "latency_ms": {"total": 30.0}}, now_ns=0)
    hub.publish({"type": "skeleton", "seq": 1, "latency_ms": {"total": 50.0}}, now_ns=100_000_000)
    hub.publish({"type": "status"}, now_ns=100_000_000)
    assert (hub.published, hub.skeletons) == (3, 2)
    assert hub.solved_fps(now_ns=100_000_000) == 10.0
    total = hub.latency()["total"]
    assert total.count == 2
    assert math.isclose(total.sum_s, 0.08)
