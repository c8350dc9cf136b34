"""Helpers of the DR tests."""
from __future__ import annotations

import os
import subprocess
import sys


def nines(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real command line in a subprocess, Python's warnings off so stderr holds only our words."""
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
