"""Weighted selection: 3:1 weights give a 3:1 split; weight 0 drains a deployment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from llm_router.domain import ChatMessage, CompletionRequest, Role
from switchboard.llm.v1 import llm_pb2
from tests.integration.llm_router.router_support import (
    StartRouter,
    config_yaml,
    generation_requests,
    standin_deployment,
)

CALLS = 4000
#: Smooth weighted round-robin is exact over each cycle of 4 picks; a concurrent pick can
#: shift one cycle at most, so the share may differ from 3/4 by at most 0.5%.
TOLERANCE = 0.005


async def test_weights_three_to_one_split_calls_three_to_one(start_router: StartRouter) -> None:
    router = await start_router(
        config_yaml(
            {
                "default": [
                    {"id": "heavy", "provider": "mock", "weight": 3},
                    {"id": "light", "provider": "mock", "weight": 1},
                ]
            }
        )
    )
    request = CompletionRequest(model="default", messages=(ChatMessage(Role.USER, "hi"),))

    # The use case directly (same router, real Redis): a few thousand gRPC calls would only
    # make the test slower, not the split more real.
    served = Counter(
        [(await router.router.complete(request)).deployment_id for _ in range(CALLS // 2)]
    )

    async def one() -> str:
        return (await router.router.complete(request)).deployment_id

    import asyncio

    for _ in range(CALLS // 2 // 50):
        served.update(await asyncio.gather(*(one() for _ in range(50))))

    assert served.total() == CALLS
    assert abs(served["heavy"] / CALLS - 0.75) <= TOLERANCE
    assert abs(served["light"] / CALLS - 0.25) <= TOLERANCE


async def test_weight_zero_drains_a_deployment_until_it_is_set_back(
    start_router: StartRouter, standins: Callable[..., Any]
) -> None:
    first, second = await standins("openai"), await standins("openai")
    router = await start_router(
        config_yaml(
            {"default": [standin_deployment(first, "first"), standin_deployment(second, "second")]}
        )
    )

    drained = await router.stub.SetDeploymentWeight(
        llm_pb2.SetDeploymentWeightRequest(deployment_id="first", weight=0),
        metadata=router.operator,
    )
    during = [(await router.complete()).deployment_id for _ in range(6)]
    await router.stub.SetDeploymentWeight(
        llm_pb2.SetDeploymentWeightRequest(deployment_id="first", weight=1),
        metadata=router.operator,
    )
    after = [(await router.complete()).deployment_id for _ in range(6)]

    assert drained.deployment.weight == 0
    assert during == ["second"] * 6
    assert generation_requests(first) == 3
    assert Counter(after) == {"first": 3, "second": 3}
    assert (await router.status())["first"].weight == 1
