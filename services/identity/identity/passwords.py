"""Password hashing with argon2id, off the event loop and bounded in memory."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    """Hashes and verifies passwords with argon2id; every call costs about the same.

    Hashing is deliberately slow and memory-hard, so it runs in worker threads, at most
    `max_concurrent` at a time: a burst of sign-ins queues instead of exhausting memory or
    the default thread pool.
    """

    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, max_concurrent: int = 2
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)

    async def spend_equivalent_time(self, password: str) -> None:
        """Verify against a throwaway hash, so an unknown email costs what a known one does."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("switchboard-dummy-password")
        await self.verify(self._dummy_hash, password)
