"""messaging/forward.py, the one signed POST to a business (completion forward and hand-over),
against a real HTTP receiver on loopback: what is retried and what is final, the signature."""
from __future__ import annotations

import hashlib
import hmac

import pytest
import requests

from messaging.forward import ForwardError, post_signed
from standins.receiver import ReceiverStandIn


@pytest.fixture
def receiver():
    with ReceiverStandIn() as standin:
        yield standin


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_timeouts_throttles_and_server_errors_are_retried_with_retry_after(receiver, status):
    receiver.fail_next(status, headers={"Retry-After": "7"})
    with pytest.raises(ForwardError) as info:
        post_signed(requests.Session(), receiver.handoff, "s3cret", {"a": 1}, idempotency_key="k1")
    assert (info.value.retryable, info.value.status, info.value.retry_after) == (True, status, 7.0)


def test_other_client_errors_are_final(receiver):
    receiver.fail_next(422)
    with pytest.raises(ForwardError) as info:
        post_signed(requests.Session(), receiver.handoff, "s3cret", {"a": 1})
    assert (info.value.retryable, info.value.status) == (False, 422)


def test_signed_with_the_secret_and_carrying_the_idempotency_key(receiver):
    assert post_signed(requests.Session(), receiver.handoff, "s3cret", {"a": 1}, idempotency_key="k2") == 200
    (request,) = receiver.matching("POST", "/handoff")
    expected = "sha256=" + hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert (request.headers["X-Flowgate-Signature-256"] == expected
            and request.headers["Idempotency-Key"] == "k2")


def test_without_a_secret_nothing_pretends_to_sign(receiver):
    post_signed(requests.Session(), receiver.handoff, None, {"a": 1})
    (request,) = receiver.matching("POST", "/handoff")
    assert "X-Flowgate-Signature-256" not in request.headers
