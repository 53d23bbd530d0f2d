"""Token signing keys: Ed25519 key pairs, encrypted at rest, and the access tokens they sign."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from switchboard_runtime.access_tokens import ALGORITHM, TokenAudience, public_jwk
from switchboard_runtime.principal import Principal, PrincipalKind

_NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A signing key as stored: the private half only in encrypted form."""

    kid: str
    public_key: bytes
    private_key_ciphertext: bytes
    activated_at: datetime
    retired_at: datetime | None

    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self.kid, Ed25519PublicKey.from_public_bytes(self.public_key))


class KeyCipher:
    """Encrypts private keys with AES-256-GCM under the key-encryption key from the settings.

    The kid is authenticated data, so a ciphertext cannot be moved to another key's row.
    """

    def __init__(self, key_encryption_key: bytes) -> None:
        self._aead = AESGCM(key_encryption_key)

    def new_key(self, *, activated_at: datetime) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        kid = f"{activated_at:%Y%m%d}-{secrets.token_hex(4)}"
        nonce = os.urandom(_NONCE_BYTES)
        raw = private.private_bytes_raw()
        return SigningKey(
            kid=kid,
            public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
            private_key_ciphertext=nonce + self._aead.encrypt(nonce, raw, kid.encode()),
            activated_at=activated_at,
            retired_at=None,
        )

    def private_key(self, key: SigningKey) -> Ed25519PrivateKey:
        nonce, ciphertext = (
            key.private_key_ciphertext[:_NONCE_BYTES],
            key.private_key_ciphertext[_NONCE_BYTES:],
        )
        raw = self._aead.decrypt(nonce, ciphertext, key.kid.encode())
        return Ed25519PrivateKey.from_private_bytes(raw)


class TokenSigner:
    """Signs access tokens with the active key."""

    def __init__(self, key: SigningKey, private_key: Ed25519PrivateKey, audience: TokenAudience):
        self.kid = key.kid
        self._private_key = private_key
        self._audience = audience

    def sign(
        self, principal: Principal, *, now: datetime, ttl: timedelta, session_id: str | None = None
    ) -> tuple[str, datetime]:
        """A signed access token for `principal` and when it expires."""
        expires_at = now + ttl
        claims: dict[str, Any] = {
            "iss": self._audience.issuer,
            "aud": self._audience.audience,
            "sub": principal.subject,
            "tid": principal.tenant_id,
            "pk": principal.kind.value,
            "scope": " ".join(sorted(principal.scopes)),
            "jti": str(uuid.uuid4()),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if principal.kind is PrincipalKind.USER and principal.role is not None:
            claims["role"] = principal.role.label
        if session_id is not None:
            claims["sid"] = session_id
        token = jwt.encode(
            claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )
        return token, expires_at
