"""Stand-in servers on free ports and the real provider SDKs pointed at them, fresh per test.

openai_server / anthropic_server   StandinServer, no faults, key STANDIN_KEY
openai_client / anthropic_client   the SDK's async client for it, max_retries=0
standin_key                        the key both servers accept
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from switchboard_standins import StandinServer

STANDIN_KEY = "sk-standin-test"


@pytest.fixture
def standin_key() -> str:
    return STANDIN_KEY


@pytest.fixture
async def openai_server() -> AsyncIterator[StandinServer]:
    async with StandinServer("openai", api_key=STANDIN_KEY) as server:
        yield server


@pytest.fixture
async def anthropic_server() -> AsyncIterator[StandinServer]:
    async with StandinServer("anthropic", api_key=STANDIN_KEY) as server:
        yield server


@pytest.fixture
async def openai_client(openai_server: StandinServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=openai_server.base_url, api_key=STANDIN_KEY, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def anthropic_client(
    anthropic_server: StandinServer,
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=anthropic_server.base_url, api_key=STANDIN_KEY, max_retries=0
    ) as client:
        yield client
