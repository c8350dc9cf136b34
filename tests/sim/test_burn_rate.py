"""Burn-rate alerts (SRE Workbook Table 5-8) replayed on incidents: the reference's test vectors."""
from __future__ import annotations

import numpy as np
import pytest

from sim.burn_rate import time_to_page


def test_full_outage_pages_after_five_seconds_at_four_nines():
    # 0.0001 x 3600 s x 14.4 = 5.18 s of full outage (reference section 6)
    t = time_to_page(np.array([[1.0]]), np.array([[1.0]]), slo=0.9999)
    assert t[0] * 3600 == pytest.approx(5.184, abs=1e-6)


def test_short_outage_does_not_page():
    t = time_to_page(np.array([[4 / 3600]]), np.array([[1.0]]), slo=0.9999)
    assert np.isnan(t[0])


def test_partial_outage_pages_later_and_a_trickle_never():
    # 10 % failing: 51.8 s; below the 6x burn of the 6 h rule (0.06 %) nothing ever fires
    t = time_to_page(np.array([[2.0], [10.0]]), np.array([[0.1], [0.0005]]), slo=0.9999)
    assert t[0] * 3600 == pytest.approx(51.84, abs=1e-6)
    assert np.isnan(t[1])


def test_slow_burn_is_caught_by_the_six_hour_rule():
    # 0.1 % failing is 10x the 99.99 % budget rate: under 14.4x, over 6x: 6 h rule at 6x
    t = time_to_page(np.array([[8.0]]), np.array([[0.001]]), slo=0.9999)
    assert t[0] == pytest.approx(6 * 0.0001 * 6 / 0.001)


def test_two_phase_incident():
    # 5 s fully down, then 1 % failing: the long window crosses in the second phase
    d = np.array([[5 / 3600, 1.0]])
    f = np.array([[1.0, 0.01]])
    t = time_to_page(d, f, slo=0.9999)
    expected = 5 / 3600 + (0.0001 * 14.4 - 5 / 3600) / 0.01
    assert t[0] == pytest.approx(expected)
