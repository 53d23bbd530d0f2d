"""SIGHUP re-reads the configuration without dropping calls: calls in flight finish on the
configuration they started with, new calls use the new one, and an invalid file changes
nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchboard.llm.v1 import llm_pb2
from switchboard_standins import Fault, ReplyPolicy
from tests.integration.llm_router.router_support import (
    RouterUnderTest,
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)


async def _sighup(router: RouterUnderTest) -> bool:
    reloaded = router.service.reloader.next_reload()
    os.kill(os.getpid(), signal.SIGHUP)
    async with asyncio.timeout(5):
        return await reloaded


async def test_sighup_reload_keeps_serving_and_calls_in_flight_finish_on_their_config(
    start_router: StartRouter, standins: Callable[..., Any], tmp_path: Path
) -> None:
    old, new = await standins("openai"), await standins("anthropic")
    old.set_reply(ReplyPolicy(filler_tokens=10))
    path = tmp_path / "router.yaml"
    router = await start_router(
        config_yaml({"default": [standin_deployment(old, "old")]}), config_path=path
    )
    old.script(Fault.delay(0, inter_token_ms=30))
    streaming = asyncio.Event()
    in_flight = asyncio.create_task(router.stream("keep going", started=streaming))
    async with asyncio.timeout(5):
        await streaming.wait()

    path.write_text(
        config_yaml(
            {
                "default": [standin_deployment(new, "new")],
                "extra": [{"id": "extra-mock", "provider": "mock"}],
            }
        )
    )
    applied = await _sighup(router)
    after = await router.complete()
    finished = await in_flight
    models = await router.stub.ListModels(llm_pb2.ListModelsRequest(), metadata=router.user)

    assert applied
    assert finished[-1].summary.deployment_id == "old"
    assert "".join(m.delta for m in finished[:-1]).startswith("Echo: keep going lorem")
    assert after.deployment_id == "new"
    assert [m.alias for m in models.models] == ["default", "extra"]
    assert (generation_requests(old), generation_requests(new)) == (1, 1)


async def test_an_invalid_file_on_sighup_keeps_the_current_config(
    start_router: StartRouter, standins: Callable[..., Any], tmp_path: Path, capsys: Any
) -> None:
    server = await standins("openai")
    path = tmp_path / "router.yaml"
    router = await start_router(
        config_yaml({"default": [standin_deployment(server, "only")]}), config_path=path
    )
    path.write_text(config_yaml({"default": [standin_deployment(server, "only", weight=-1)]}))

    applied = await _sighup(router)
    reply = await router.complete()

    assert not applied
    assert reply.deployment_id == "only"
    sys.stdout.flush()
    logged = capsys.readouterr().out
    assert "models.default.deployments[0].weight: must be >= 0" in logged
