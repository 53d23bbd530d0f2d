"""Deploy test fixtures: the chart loaded once, rendered with default and production values."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python
import pytest

from tests.integration.deploy.chart_support import CHART_DIR, Rendered, production_values, render


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def default_render(chart: helm_python.Chart) -> Rendered:
    return render(chart)


@pytest.fixture(scope="session")
def production_render(chart: helm_python.Chart) -> Rendered:
    return render(chart, production_values())


@pytest.fixture(params=["default", "production"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """Each test taking this runs once with values.yaml and once with the production example."""
    fixture: Rendered = request.getfixturevalue(f"{request.param}_render")
    return fixture
