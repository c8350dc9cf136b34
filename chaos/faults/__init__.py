"""Fault drivers: the proxy (toxics, cuts, partitions), processes, and docker containers."""
from chaos.faults.base import AppliedFault, FaultDriver, drivers_for_state

__all__ = ["AppliedFault", "FaultDriver", "drivers_for_state"]
