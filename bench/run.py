"""`make bench`: run every benchmark, print a table, and write the results as JSON.

Each benchmark is a script in this folder that prints one JSON object on its last line of
stdout. Results go to bench/results/latest.json (and are printed), so runs can be compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ["identity_bench.py", "gateway_bench.py", "router_bench.py", "conversation_bench.py"]


def run(script: str) -> dict[str, object]:
    # Run as a module of the `bench` package, so benchmarks can share harness modules.
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{script.removesuffix('.py')}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE.parent,
    )
    if completed.returncode != 0:
        return {"benchmark": script, "error": completed.stderr.strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    selected = sys.argv[1:] or BENCHMARKS
    results = [run(script) for script in selected]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    for result in results:
        goals = result.get("goals", {})
        assert isinstance(goals, dict)
        print(f"== {result.get('benchmark')}")
        for key, value in result.items():
            if key not in {"benchmark", "goals"}:
                goal = f"   (goal {goals[key]})" if key in goals else ""
                print(f"   {key:<40} {value}{goal}")
    print(f"\nJSON: {out / 'latest.json'}")
    return 1 if any("error" in result for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
