"""Report fixtures: realistic run directories (tests/reports/fixtures.py) and their reports,
built once per session because drawing plots is the slow part."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures import T0, write_half_failed_run, write_run  # noqa: E402


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories: ``previous`` and ``current`` siblings, ``lost`` and ``half`` on their own."""
    base = tmp_path_factory.mktemp("report-runs")
    return {
        "previous": write_run(base / "runs" / "2026-11-24", seed=1, scale=1.3, t0=T0 - 86_400),
        "current": write_run(base / "runs" / "2026-11-25", seed=3, t0=T0),
        "lost": write_run(base / "lost" / "run", seed=4, lose_data=True),
        "half": write_half_failed_run(base / "half" / "run"),
    }


@pytest.fixture(scope="session")
def built(runs) -> dict[str, dict[str, Path]]:
    """The report of each run (``current`` compared with its sibling ``previous``)."""
    from reports import build_report

    return {name: build_report(path) for name, path in runs.items() if name != "previous"}
