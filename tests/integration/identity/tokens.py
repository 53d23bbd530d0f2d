"""Hand-made access tokens for attacking the verifier: forged, tampered and off-spec ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.settings import IdentitySettings
from identity.signing_keys import KeyCipher
from identity.signing_keys_store import active_key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jwt.get_unverified_header(token)
    return header


def with_claims(token: str, **changes: Any) -> str:
    """The same token with its payload changed and the original signature kept."""
    head, _, signature = token.split(".")
    body = b64url(json.dumps(claims_of(token) | changes).encode())
    return f"{head}.{body}.{signature}"


def hs256_with(key: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    head = b64url(json.dumps(header | {"alg": "HS256"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


async def real_signing_key(settings: IdentitySettings) -> tuple[str, Ed25519PrivateKey, bytes]:
    """(kid, private key, raw public key) of the identity service's active signing key."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        key = await active_key(conn, datetime.now(UTC))
    finally:
        await conn.close()
    assert key is not None
    return key.kid, KeyCipher(settings.key_encryption_key()).private_key(key), key.public_key


def sign(private_key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})


def fresh_claims(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return template | {"iat": now, "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4())} | changes
