"""Access tokens: the JWT claims Switchboard uses, and their offline verification via JWKS.

Tokens are signed by the identity service with Ed25519 (`alg: EdDSA`) and carry a `kid`
header naming the key. Any service verifies them without calling identity: it holds the
public keys from identity's JWKS and refetches them when it meets a `kid` it does not know
(a key rotation), at most once per `refresh_interval_seconds`. The identity service
publishes a new key well before it signs with it, so this refetch rarely finds work to do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from switchboard_runtime.principal import Principal, PrincipalKind, Role

ALGORITHM: Final = "EdDSA"
#: Claims every access token must carry.
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "tid", "pk", "jti", "iat", "exp")

#: A JSON Web Key as a mapping (the JSON object of RFC 7517).
Jwk = Mapping[str, str]
#: Fetches the current JSON Web Key Set's keys.
FetchJwks = Callable[[], Awaitable[Sequence[Jwk]]]


class InvalidTokenError(Exception):
    """The token is not a valid access token; `reason` says why (for logs, not for callers)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(kid: str, public_key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK (RFC 8037 OKP) of an Ed25519 public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def public_key_of(jwk: Jwk) -> Ed25519PublicKey:
    """The Ed25519 public key of a JWK; ValueError for any other kind of key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ValueError("not an EdDSA signing key")
    return Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))


@dataclass(frozen=True, slots=True)
class TokenAudience:
    """Who issues access tokens and for whom; both are checked on every token."""

    issuer: str = "switchboard-identity"
    audience: str = "switchboard"


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal an access token's (verified) claims describe."""
    try:
        kind = PrincipalKind(claims["pk"])
        role = Role.from_label(claims["role"]) if kind is PrincipalKind.USER else None
        scopes = frozenset(str(claims.get("scope", "")).split())
        return Principal(
            kind=kind,
            tenant_id=str(claims["tid"]),
            subject=str(claims["sub"]),
            role=role,
            scopes=scopes,
        )
    except (KeyError, ValueError) as error:
        raise InvalidTokenError(f"malformed claims: {type(error).__name__}") from error


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key; `jwt.decode` then checks everything.

    Read here rather than with `jwt.get_unverified_header`, which would make PyJWT parse
    every token twice: verification is on every request's path.
    """
    head, dot, _ = token.partition(".")
    try:
        if not dot or len(head) > 1024:
            raise ValueError("not a JWT")
        header = json.loads(_b64url_decode(head))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidTokenError("not a JWT") from error
    if not isinstance(header, dict):
        raise InvalidTokenError("not a JWT")
    return header


class TokenVerifier:
    """Verifies access tokens offline against a cached JWKS."""

    def __init__(
        self,
        fetch_jwks: FetchJwks,
        *,
        audience: TokenAudience,
        refresh_interval_seconds: float = 1.0,
        leeway_seconds: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._audience = audience
        self._refresh_interval = refresh_interval_seconds
        self._leeway = leeway_seconds
        self._keys: dict[str, Ed25519PublicKey] = {}
        # A token verified once stays valid until it expires (its signature and claims never
        # change), so callers that reuse a token skip the signature check; bounded, LRU.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._last_refresh = float("-inf")
        self._refresh_lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; InvalidTokenError otherwise."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                self._verified.move_to_end(token)
                return cached[0]
            del self._verified[token]
        header = _unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("no kid")
        key = self._keys.get(kid) or await self._refreshed_key(kid)
        claims = self.decode(token, key)
        principal = principal_from_claims(claims)
        if self._cache_size > 0:
            self._verified[token] = (principal, float(claims["exp"]))
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    def decode(self, token: str, key: Ed25519PublicKey) -> dict[str, Any]:
        """The verified claims of `token` signed by `key`."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience.audience,
                issuer=self._audience.issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(type(error).__name__) from error
        return claims

    async def _refreshed_key(self, kid: str) -> Ed25519PublicKey:
        async with self._refresh_lock:
            # Another caller may have refreshed while this one waited for the lock.
            if kid not in self._keys and (
                time.monotonic() - self._last_refresh >= self._refresh_interval
            ):
                await self.refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown kid")
        return key

    async def refresh(self) -> None:
        """Refetch the JWKS now."""
        self._last_refresh = time.monotonic()
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in await self._fetch_jwks():
            try:
                keys[jwk["kid"]] = public_key_of(jwk)
            except (KeyError, ValueError):
                continue  # a key of a kind we do not verify with cannot verify our tokens
        if keys.keys() != self._keys.keys():
            self._verified.clear()  # a key left the set: re-check what it had signed
        self._keys = keys
