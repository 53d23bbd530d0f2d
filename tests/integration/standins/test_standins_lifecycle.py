"""Stand-ins going down and coming back, their admin API over HTTP, and the CLI process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import openai
import pytest

from switchboard_standins import Fault, FaultProfile, ReplyPolicy, StandinServer

MODEL = "gpt-4o-mini"
HELLO = "hello there world"
STANDINS_ROOT = Path(__file__).resolve().parents[3] / "libs" / "standins"


async def ask(client: openai.AsyncOpenAI) -> str | None:
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": HELLO}]
    )
    return completion.choices[0].message.content


async def test_a_server_that_is_down_refuses_connections_and_recovers_on_the_same_url(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    assert await ask(openai_client) == f"Echo: {HELLO}"
    base_url = openai_server.base_url

    await openai_server.go_down()

    assert not openai_server.is_up
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", openai_server.port)
    with pytest.raises(openai.APIConnectionError):
        await ask(openai_client)

    await openai_server.come_up()

    assert openai_server.base_url == base_url
    assert await ask(openai_client) == f"Echo: {HELLO}"


async def test_going_down_drops_a_stream_in_flight_and_records_it_as_server_down(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    openai_server.script(Fault.stall(after_tokens=1))
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": HELLO}], stream=True
    )
    request_id = stream.response.headers["x-standin-request-id"]

    await openai_server.go_down()

    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass
    record = openai_server.request(request_id)
    assert record is not None
    assert (record.outcome, record.fault) == ("server_down", "stall")


async def test_the_admin_api_reports_requests_and_changes_faults_at_runtime(
    openai_server: StandinServer, openai_client: openai.AsyncOpenAI
) -> None:
    async with httpx.AsyncClient(base_url=openai_server.admin_url + "/") as admin:
        scripted = await admin.post("script", json={"faults": [{"status": 503}]})
        with pytest.raises(openai.InternalServerError):
            await ask(openai_client)
        profile = await admin.put("profile", json={"error_rates": {"429": 1.0}})
        with pytest.raises(openai.RateLimitError):
            await ask(openai_client)
        await admin.put("profile", json={})
        await admin.put("reply", json={"canned": "fine", "filler_tokens": 2})
        answer = await ask(openai_client)
        stats = (await admin.get("stats")).json()
        last = (await admin.get(f"requests/{stats['recent'][-1]['id']}")).json()
        rejected = await admin.put("profile", json={"tail_probability": 2})

    assert scripted.json() == {"pending_script": 1}
    assert profile.json()["profile"]["error_rates"] == {"429": 1.0}
    assert answer == "fine lorem ipsum"
    assert stats["received"] == {"/v1/chat/completions": 3}
    assert stats["statuses"] == {"503": 1, "429": 1, "200": 1}
    assert stats["faults"] == {"error_503": 1, "error_429": 1}
    assert last["outcome"] == "completed"
    assert rejected.status_code == 400
    assert "tail_probability" in rejected.json()["error"]


async def test_the_admin_listener_takes_the_provider_port_down_and_up(
    standin_key: str,
) -> None:
    async with (
        StandinServer("openai", api_key=standin_key, admin_port=0) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key=standin_key, max_retries=0) as client,
        httpx.AsyncClient(base_url=server.admin_url + "/") as admin,
    ):
        down = await admin.post("down")
        with pytest.raises(openai.APIConnectionError):
            await ask(client)
        stats_while_down = await admin.get("stats")
        up = await admin.post("up")
        answer = await ask(client)

    assert down.json() == {"up": False}
    assert stats_while_down.status_code == 200
    assert up.json() == {"up": True}
    assert answer == f"Echo: {HELLO}"


async def test_the_cli_serves_until_sigterm_and_exits_cleanly(
    tmp_path: Path, standin_key: str
) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text('{"script": [{"status": 503}]}')
    path = [str(STANDINS_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard_standins",
        "openai",
        "--api-key",
        standin_key,
        "--profile-json",
        str(profile),
        "--canned-reply",
        "from the cli",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            base_url = (await process.stdout.readline()).decode().strip()
            admin_url = (await process.stdout.readline()).decode().strip()
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key=standin_key, max_retries=0
        ) as client:
            with pytest.raises(openai.InternalServerError):
                await ask(client)
            answer = await ask(client)
        async with httpx.AsyncClient() as admin:
            stats = (await admin.get(f"{admin_url}/stats")).json()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            returncode = await process.wait()

    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert answer == "from the cli"
    assert stats["statuses"] == {"503": 1, "200": 1}
    assert returncode == 0


async def test_a_profile_given_at_construction_applies_from_the_first_request(
    standin_key: str,
) -> None:
    profile = FaultProfile(script=(Fault.error(500),))
    async with (
        StandinServer(
            "openai", api_key=standin_key, profile=profile, reply=ReplyPolicy(canned="ok")
        ) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key=standin_key, max_retries=0) as client,
    ):
        with pytest.raises(openai.InternalServerError):
            await ask(client)
        assert await ask(client) == "ok"


async def test_starting_on_a_port_in_use_fails_with_os_error(
    openai_server: StandinServer, standin_key: str
) -> None:
    second = StandinServer("anthropic", api_key=standin_key, port=openai_server.port)

    with pytest.raises(OSError):
        await second.start()

    assert not second.is_up
