"""The Iraas-Signature header: an HMAC-SHA256 of the raw body, as receivers check it."""

from __future__ import annotations

from iraas.callbacks.signing import signature, verify

# RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
RFC_4231_KEY, RFC_4231_DATA = b"Jefe", b"what do ya want for nothing?"
RFC_4231_SHA256 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    assert signature(RFC_4231_KEY, RFC_4231_DATA) == "sha256=" + RFC_4231_SHA256


def test_a_receiver_accepts_the_signed_body_and_nothing_changed() -> None:
    secret, body = b"s" * 32, b'{"id":"abc","label":"tench"}'
    header = signature(secret, body)
    assert verify(secret, body, header)
    assert not verify(secret, body.replace(b"tench", b"goldfish"), header)
    assert not verify(b"t" * 32, body, header)
    assert not verify(secret, body, None)
    assert not verify(secret, body, "sha256=" + "0" * 64)
