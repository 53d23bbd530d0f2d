"""Identity benchmarks: offline access-token verification rate and the cost of a password hash.

Prints one JSON object; `make bench` collects it. Verification runs on one core in one
process, against the same verifier every service uses (`switchboard_runtime.access_tokens`);
hashing uses the identity service's default argon2id parameters.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity.passwords import PasswordHasher
from identity.settings import IdentitySettings
from identity.signing_keys import KeyCipher, TokenSigner
from switchboard_runtime.access_tokens import TokenAudience, TokenVerifier, public_jwk
from switchboard_runtime.principal import Principal, PrincipalKind, Role, scopes_of_role

VERIFY_SECONDS = 3.0
HASH_SAMPLES = 7


async def verifications_per_second() -> dict[str, float]:
    audience = TokenAudience()
    cipher = KeyCipher(b"\0" * 32)
    key = cipher.new_key(activated_at=datetime.now(UTC))
    signer = TokenSigner(key, cipher.private_key(key), audience)
    principal = Principal(
        kind=PrincipalKind.USER,
        tenant_id="7d9f3c1e-0000-4000-8000-000000000001",
        subject="7d9f3c1e-0000-4000-8000-000000000002",
        role=Role.ADMIN,
        scopes=scopes_of_role(Role.ADMIN),
    )
    tokens = [
        signer.sign(principal, now=datetime.now(UTC), ttl=timedelta(minutes=15))[0]
        for _ in range(1000)
    ]
    public = Ed25519PrivateKey.from_private_bytes(
        cipher.private_key(key).private_bytes_raw()
    ).public_key()

    async def jwks() -> list[dict[str, str]]:
        return [public_jwk(key.kid, public)]

    # No cache: every verification checks the signature, as for a token seen the first time.
    verifier = TokenVerifier(jwks, audience=audience, cache_size=0)
    await verifier.verify(tokens[0])  # warm the key cache
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < VERIFY_SECONDS:
        for token in tokens:
            await verifier.verify(token)
        count += len(tokens)
    elapsed = time.perf_counter() - started
    return {"token_verifications_per_second": round(count / elapsed)}


async def password_hash_cost() -> dict[str, float]:
    # The service's defaults; required settings get placeholders, they play no part here.
    defaults = IdentitySettings(
        database_url="-", nats_url="-", signing_key_encryption_key="A" * 43 + "="
    )
    hasher = PasswordHasher(
        time_cost=defaults.password_hash_time_cost,
        memory_kib=defaults.password_hash_memory_kib,
        parallelism=defaults.password_hash_parallelism,
    )
    samples = []
    for _ in range(HASH_SAMPLES):
        started = time.perf_counter()
        await hasher.hash("correct horse battery staple")
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "password_hash_ms_median": round(statistics.median(samples), 1),
        "password_hash_ms_min": round(min(samples), 1),
        "password_hash_ms_max": round(max(samples), 1),
    }


async def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal says
    result: dict[str, object] = {"benchmark": "identity"}
    result |= await verifications_per_second()
    result |= await password_hash_cost()
    result["goals"] = {
        "token_verifications_per_second": ">= 5000",
        "password_hash_ms_median": "50..500",
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main())
