"""Real infrastructure servers started from pip-shipped binaries: PostgreSQL, Redis, NATS."""
from lab.servers.base import ManagedProcess, ServerSpec, free_port, stop_pid, wait_until
from lab.servers import nats, postgres, redis

__all__ = ["ManagedProcess", "ServerSpec", "free_port", "stop_pid", "wait_until", "nats", "postgres", "redis"]
