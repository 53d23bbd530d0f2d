"""`python -m llm_router` refuses an invalid configuration with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def test_an_invalid_config_file_stops_the_process_with_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    path = tmp_path / "router.yaml"
    deployments = [{"id": "a", "provider": "mock"}, {"id": "b", "provider": "mock", "weight": -2}]
    path.write_text(yaml.safe_dump({"models": {"default": {"deployments": deployments}}}))
    env = os.environ | {
        "LLM_ROUTER_CONFIG": str(path),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SERVICE_CLIENT_SECRET": "not-used-0123456789",
    }

    done = subprocess.run(
        [sys.executable, "-m", "llm_router"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"llm-router: invalid config: {path}: models.default.deployments[1].weight: must be >= 0"
    ]
