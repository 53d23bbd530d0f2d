"""The identity service's settings, read from the environment."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import ClassVar

from switchboard_runtime.settings import REQUIRED, InvalidSetting, ServiceSettings


@dataclass(frozen=True)
class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"

    grpc_port: int = 50052
    metrics_port: int = 9102
    database_url: str = field(default=REQUIRED, metadata={"secret": True})
    nats_url: str = field(default=REQUIRED, metadata={"secret": True})
    #: Base64 of 32 random bytes; encrypts the token signing keys at rest.
    signing_key_encryption_key: str = field(default=REQUIRED, metadata={"secret": True})
    #: `name=secret` pairs, comma-separated: who may call IssueServiceToken.
    service_client_secrets: tuple[str, ...] = field(default=(), metadata={"secret": True})
    token_issuer: str = "switchboard-identity"
    token_audience: str = "switchboard"
    access_token_ttl_seconds: int = 900
    #: A rotated signing key is published this long before it signs, so every verifier
    #: knows it in time.
    signing_key_activation_delay_seconds: int = 60
    service_token_ttl_seconds: int = 300
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    session_max_age_seconds: int = 90 * 24 * 3600
    #: argon2id cost; see `make bench` for what one hash costs on your machine.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 1
    #: After this many failed sign-ins in a row, each attempt must wait (1 s, 2 s, 4 s, ...).
    login_slow_after_failures: int = 3
    #: After this many, the account is locked for login_lock_seconds.
    login_lock_after_failures: int = 10
    login_lock_seconds: int = 900

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.signing_key_encryption_key is not REQUIRED:
            self.key_encryption_key()
        self.service_secrets()
        for name in (
            "access_token_ttl_seconds",
            "service_token_ttl_seconds",
            "refresh_token_ttl_seconds",
            "password_hash_time_cost",
            "password_hash_memory_kib",
            "password_hash_parallelism",
            "login_slow_after_failures",
            "login_lock_after_failures",
        ):
            if getattr(self, name) < 1:
                raise InvalidSetting(name, "must be at least 1")
        if self.login_lock_after_failures <= self.login_slow_after_failures:
            raise InvalidSetting(
                "login_lock_after_failures", "must be greater than LOGIN_SLOW_AFTER_FAILURES"
            )

    def key_encryption_key(self) -> bytes:
        try:
            key = base64.b64decode(self.signing_key_encryption_key, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidSetting("signing_key_encryption_key", "must be base64") from error
        if len(key) != 32:
            raise InvalidSetting("signing_key_encryption_key", "must decode to 32 bytes")
        return key

    def service_secrets(self) -> dict[str, str]:
        secrets: dict[str, str] = {}
        for pair in self.service_client_secrets:
            name, sep, secret = pair.partition("=")
            if not sep or not name or len(secret) < 16:
                raise InvalidSetting(
                    "service_client_secrets", "expected name=secret pairs, secrets of 16+ chars"
                )
            secrets[name.strip()] = secret.strip()
        return secrets
