"""The built-in toxics, one module each; importing this package registers them all."""
from chaos.proxy.toxics import (bandwidth, latency, limit_data, noop, reset_peer,  # noqa: F401
                                slicer, slow_close, timeout)
from chaos.proxy.toxics.base import REGISTRY, Stub, Toxic

__all__ = ["REGISTRY", "Stub", "Toxic"]
