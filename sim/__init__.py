"""sim: a SimPy model of the topology, calibrated from experiments, projecting a year of downtime.

Entry points: :func:`run_simulation` (returns the ``nineslab.sim/1`` result dict) and
:func:`write_result`; :mod:`sim.gate` turns a result into a pass/fail verdict.
"""
from sim.result import write_result
from sim.simulation import run_simulation

__all__ = ["run_simulation", "write_result"]
