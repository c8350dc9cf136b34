"""Fixtures of the load generator tests: a stall-able HTTP server on 127.0.0.1 in its own process."""
from __future__ import annotations

from typing import Iterator

import pytest

from load_servers import trivial_server


@pytest.fixture
def trivial_url() -> Iterator[str]:
    with trivial_server() as (url, _):
        yield url
