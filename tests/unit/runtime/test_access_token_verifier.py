"""Offline verification of access tokens: keys from a JWKS, refetched for an unknown kid, and
a cache of verified tokens that forgets what a removed key had signed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.signing_keys import KeyCipher, TokenSigner
from switchboard_runtime.access_tokens import (
    InvalidTokenError,
    Jwk,
    TokenAudience,
    TokenVerifier,
    public_jwk,
)
from switchboard_runtime.principal import Principal, PrincipalKind, Role, scopes_of_role


class Jwks:
    def __init__(self) -> None:
        self.keys: list[dict[str, str]] = []
        self.fetches = 0

    async def __call__(self) -> Sequence[Jwk]:
        self.fetches += 1
        return list(self.keys)


def _signer() -> tuple[TokenSigner, dict[str, str]]:
    cipher = KeyCipher(b"\x01" * 32)
    key = cipher.new_key(activated_at=datetime.now(UTC))
    private = cipher.private_key(key)
    public = Ed25519PrivateKey.from_private_bytes(private.private_bytes_raw()).public_key()
    return TokenSigner(key, private, TokenAudience()), public_jwk(key.kid, public)


PRINCIPAL = Principal(
    PrincipalKind.USER, "tenant", "user", Role.MEMBER, scopes_of_role(Role.MEMBER)
)


async def test_an_unknown_kid_triggers_one_refetch_and_then_verifies() -> None:
    signer, jwk = _signer()
    jwks = Jwks()
    verifier = TokenVerifier(jwks, audience=TokenAudience(), refresh_interval_seconds=0)
    token, _ = signer.sign(PRINCIPAL, now=datetime.now(UTC), ttl=timedelta(minutes=5))
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)  # not published yet
    jwks.keys.append(jwk)
    assert (await verifier.verify(token)).subject == "user"
    assert jwks.fetches == 2
    assert (await verifier.verify(token)).role is Role.MEMBER
    assert jwks.fetches == 2  # known key, cached token: no fetch


async def test_tokens_of_a_key_removed_from_the_jwks_are_no_longer_accepted() -> None:
    signer, jwk = _signer()
    other_signer, other_jwk = _signer()
    jwks = Jwks()
    jwks.keys += [jwk, other_jwk]
    verifier = TokenVerifier(jwks, audience=TokenAudience(), refresh_interval_seconds=0)
    token, _ = signer.sign(PRINCIPAL, now=datetime.now(UTC), ttl=timedelta(minutes=5))
    await verifier.verify(token)
    jwks.keys.remove(jwk)
    other_token, _ = other_signer.sign(PRINCIPAL, now=datetime.now(UTC), ttl=timedelta(minutes=5))
    await verifier.refresh()
    assert (await verifier.verify(other_token)).subject == "user"
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


async def test_an_expired_token_is_refused_even_when_signed_by_a_known_key() -> None:
    signer, jwk = _signer()
    jwks = Jwks()
    jwks.keys.append(jwk)
    verifier = TokenVerifier(jwks, audience=TokenAudience())
    token, _ = signer.sign(
        PRINCIPAL, now=datetime.now(UTC) - timedelta(hours=1), ttl=timedelta(minutes=15)
    )
    with pytest.raises(InvalidTokenError, match="Expired"):
        await verifier.verify(token)
