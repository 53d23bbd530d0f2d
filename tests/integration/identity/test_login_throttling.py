"""Failed sign-ins slow down and then lock an account, the same for unknown emails."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import PASSWORD, IdentityUnderTest


async def _login(
    identity: IdentityUnderTest, slug: str, email: str, password: str
) -> grpc.aio.AioRpcError | None:
    try:
        await identity.stub.Login(
            identity_pb2.LoginRequest(tenant_slug=slug, email=email, password=password)
        )
    except grpc.aio.AioRpcError as error:
        return error
    return None


def _retry_after(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    raise AssertionError("no RetryInfo")


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    identity: IdentityUnderTest,
) -> None:
    slug = (await identity.sign_up()).tenant.slug
    wrong = await _login(identity, slug, "owner@acme.test", "not the password!")
    unknown = await _login(identity, slug, "nobody@acme.test", "not the password!")
    assert wrong is not None and unknown is not None
    assert (wrong.code(), wrong.details()) == (unknown.code(), unknown.details())
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("email", ["owner@acme.test", "nobody@acme.test"])
async def test_repeated_failures_slow_down_then_lock_sign_in(
    identity: IdentityUnderTest, email: str
) -> None:
    slug = (await identity.sign_up()).tenant.slug
    for _ in range(3):  # login_slow_after_failures
        error = await _login(identity, slug, email, "wrong password!!")
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    slowed = await _login(identity, slug, email, "wrong password!!")
    assert slowed is not None and slowed.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < _retry_after(slowed) <= 2
    for _ in range(2):  # up to login_lock_after_failures
        await _login(identity, slug, email, "wrong password!!")
    locked = await _login(identity, slug, email, PASSWORD)
    assert locked is not None and locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _retry_after(locked) > 600


async def test_a_locked_account_signs_in_again_after_the_lock_expires(
    identity: IdentityUnderTest,
) -> None:
    slug = (await identity.sign_up()).tenant.slug
    for _ in range(6):
        await _login(identity, slug, "owner@acme.test", "wrong password!!")
    assert await _login(identity, slug, "owner@acme.test", PASSWORD) is not None
    identity.clock.advance(timedelta(seconds=identity.settings.login_lock_seconds + 1))
    assert await _login(identity, slug, "owner@acme.test", PASSWORD) is None


async def test_a_success_clears_earlier_failures(identity: IdentityUnderTest) -> None:
    slug = (await identity.sign_up()).tenant.slug
    for _ in range(2):
        await _login(identity, slug, "owner@acme.test", "wrong password!!")
    assert await _login(identity, slug, "owner@acme.test", PASSWORD) is None
    for _ in range(2):
        error = await _login(identity, slug, "owner@acme.test", "wrong password!!")
        assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
