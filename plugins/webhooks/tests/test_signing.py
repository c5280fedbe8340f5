"""The signature scheme: HMAC-SHA256 over ``<timestamp>.<body>``, and the receiver's check."""

import hashlib
import hmac

import pytest
from ferro_webhooks import sign, verify_signature

SECRET = "whsec-test"
BODY = b'{"id":"evt_1","type":"request.failed","created":1700000000,"data":{}}'
NOW = 1_700_000_000


def test_the_signature_is_the_documented_hmac_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == "sha256=" + expected


def test_a_genuine_post_verifies():
    assert verify_signature(SECRET, BODY, str(NOW), sign(SECRET, NOW, BODY), now=NOW + 10)


@pytest.mark.parametrize(("secret", "body", "timestamp"), [
    ("another secret", BODY, NOW),
    (SECRET, BODY.replace(b"request.failed", b"request.passed"), NOW),
    (SECRET, BODY, NOW + 1),  # the timestamp is signed: moving it breaks the signature
], ids=["wrong-secret", "edited-body", "edited-timestamp"])
def test_a_changed_secret_body_or_timestamp_does_not_verify(secret, body, timestamp):
    signature = sign(SECRET, NOW, BODY)
    assert not verify_signature(secret, body, str(timestamp), signature, now=NOW)


def test_a_replay_outside_the_tolerance_does_not_verify():
    signature = sign(SECRET, NOW, BODY)
    assert verify_signature(SECRET, BODY, str(NOW), signature, now=NOW + 300)
    assert not verify_signature(SECRET, BODY, str(NOW), signature, now=NOW + 301)
    assert not verify_signature(SECRET, BODY, str(NOW), signature, now=NOW - 301)
    assert verify_signature(SECRET, BODY, str(NOW), signature, tolerance=3600, now=NOW + 3000)


@pytest.mark.parametrize(("timestamp", "signature"), [
    (None, "sha256=00"), (str(NOW), None), ("", "x"), ("17e8", "sha256=00"),
    ("\u0661\u0667\u0660\u0660", "sha256=00"), (str(NOW), "sha256=é"),
], ids=["no-timestamp", "no-signature", "empty", "not-digits", "non-ascii-digits",
        "non-ascii-signature"])
def test_missing_or_malformed_headers_are_not_genuine(timestamp, signature):
    assert verify_signature(SECRET, BODY, timestamp, signature, now=NOW) is False
