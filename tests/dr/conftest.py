"""A one-region lab (tests/dr/one-region.yaml) started with the real ``nines up`` in a state dir
kept between runs (PostgreSQL is initialised once), shared by the DR tests and stopped at the
end, also on failure."""
from __future__ import annotations

from pathlib import Path

import pytest

from dr_helpers import nines
from lab.state import load_state
from tests.labstate import reusable_state_dir

TOPOLOGY = Path(__file__).with_name("one-region.yaml")


@pytest.fixture(scope="session")
def dr_lab():
    with reusable_state_dir("dr") as state_dir:
        up = nines("up", "--topology", str(TOPOLOGY), "--state-dir", str(state_dir), timeout=180)
        assert up.returncode == 0, up.stderr[-2000:]
        yield load_state(state_dir)
