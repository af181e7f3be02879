"""Meta's limits on sending, honoured by every sender at once (messaging/ratelimit.py:
NumberThroughput): a business number's throughput (130429 past it), the (number, user) pair rate
(131056, for that user only). Real Redis, the Graph stand-in over loopback HTTP, senders in threads
as a worker's jobs are."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from messaging import cloud
from messaging.cloud import CloudApi
from messaging.graph import RETRYABLE, GraphClient, GraphError
from messaging.ratelimit import PAIR_RATE, THROUGHPUT_EXCEEDED, NumberThroughput
from standins.graph import ACCESS_TOKEN, graph_error

PHONE_ID = "106540352242922"
OTHER_NUMBER = "106540352249999"


@pytest.fixture
def channel(graph, redis_client):
    redis_client.flushdb()
    limits = NumberThroughput(redis_client, per_second=16, max_wait=5.0)
    return CloudApi(GraphClient(graph.url, "v23.0", ACCESS_TOKEN, PHONE_ID, pool_size=8), limits)


def test_many_senders_at_once_stay_within_the_numbers_throughput(graph, channel):
    # Meta's answer past 20 sends in any second: 130429. Paced at 16/s: a request's trip to the
    # stand-in varies by a few ms, so two paced sends can arrive closer than they left.
    graph.throughput(20)
    with ThreadPoolExecutor(max_workers=8) as pool:
        wamids = list(pool.map(lambda i: channel.send(f"1650555{i:04d}", cloud.text("Thanks!")), range(45)))
    assert len(set(wamids)) == 45 and all(w.startswith("wamid.") for w in wamids)
    assert graph.throughput_refusals == 0  # spaced by the shared bucket, none refused
    graph.throughput(None)


def test_a_130429_holds_back_every_send_from_that_number_and_only_that_number(graph, channel):
    graph.fail_next(429, graph_error(THROUGHPUT_EXCEEDED, "Rate limit hit"), headers={"Retry-After": "30"})
    with pytest.raises(GraphError) as refused:
        channel.send("16505550001", cloud.text("Thanks!"))
    assert (refused.value.kind, refused.value.status) == (RETRYABLE, 429)
    with pytest.raises(GraphError) as held:  # another user, same number: not sent at all
        channel.send("16505550002", cloud.text("Thanks!"))
    assert (held.value.kind, held.value.status, held.value.code) == (RETRYABLE, 0, THROUGHPUT_EXCEEDED)
    assert 25 < held.value.retry_after <= 31  # Meta's Retry-After (+ one token), honoured by the retry
    assert channel.send("16505550002", cloud.text("Thanks!"), sender_id=OTHER_NUMBER).startswith("wamid.")
    assert len(graph.matching("POST", "/messages")) == 2  # the refused one and the other number's


def test_a_131056_holds_back_that_user_only(graph, channel):
    graph.fail_next(400, graph_error(PAIR_RATE, "Pair rate limit hit"))
    with pytest.raises(GraphError) as refused:
        channel.send("16505550001", cloud.text("Thanks!"))
    assert refused.value.code == PAIR_RATE and refused.value.kind == RETRYABLE
    with pytest.raises(GraphError) as held:
        channel.send("16505550001", cloud.text("And another"))
    assert (held.value.status, held.value.code) == (0, PAIR_RATE) and 5 < held.value.retry_after <= 6
    assert channel.send("16505550002", cloud.text("Thanks!")).startswith("wamid.")  # everyone else sends
    assert len(graph.matching("POST", "/messages")) == 2


def test_a_held_back_send_counts_as_nothing_sent(graph, channel):
    """So its exactly-once effect is released and the job's retry may send (workers/effects.py)."""
    from workers.effects import nothing_sent

    graph.fail_next(400, graph_error(PAIR_RATE, "Pair rate limit hit"))
    with pytest.raises(GraphError):
        channel.send("16505550001", cloud.text("Thanks!"))
    with pytest.raises(GraphError) as held:
        channel.send("16505550001", cloud.text("Thanks!"))
    assert nothing_sent(held.value)
