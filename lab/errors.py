"""The one exception tree of nineslab, and the exit codes the command line maps it to.

::

    NinesError                      anything nineslab raises on purpose
    ├── UsageError                  you passed something wrong (flag, file, value)   -> exit 2
    │   └── ConfigError             a file did not validate: names file, line, key  -> exit 2
    ├── DependencyError             a dependency broke (a server would not start,
    │                               a port is taken, a binary is missing)           -> exit 20
    └── LabError                    the lab itself failed (a bug, a broken state)    -> exit 20

Raise the most specific one, keep the cause (``raise UsageError(...) from exc``) and
write the message as one sentence that says what was wrong, where, and what to do.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of every ``nines`` command; ``nines gate`` uses all of them."""

    OK = 0
    USAGE = 2                   # bad flags, bad files, bad values
    BUDGET_AT_RISK = 10         # projected downtime threatens the error budget
    HYPOTHESIS_DEVIATED = 11    # a steady-state hypothesis did not hold
    INVARIANT_VIOLATED = 12     # acknowledged data lost, duplicated, reordered or phantom
    LAB_ERROR = 20              # the lab or its infrastructure failed
    INTERRUPTED = 130           # Ctrl-C


class NinesError(Exception):
    """Base of every error nineslab raises on purpose."""

    exit_code: ExitCode = ExitCode.LAB_ERROR


class UsageError(NinesError):
    """The user passed something wrong: a flag, a value, a file."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration or experiment file did not validate."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.path, self.line, self.key = path, line, key


class DependencyError(NinesError):
    """A dependency broke: a server did not start, a port is taken, a binary is missing."""

    exit_code = ExitCode.LAB_ERROR


class LabError(NinesError):
    """The lab itself failed: a broken state file, an internal inconsistency."""

    exit_code = ExitCode.LAB_ERROR
