"""Calibration from experiment journals: fits, records, uncertainty, bad input."""
from __future__ import annotations

import json
import math

import pytest

from lab.errors import ConfigError, UsageError
from sim import run_simulation
from sim.calibration import calibrate_model, parameter_record
from sim.model import load_model
from sim_journals import make_run_dir


def _run_dir(tmp_path, detection=(14.0, 16.0, 15.0, 18.0, 13.0)):
    return make_run_dir(tmp_path / "run", {
        "region-outage": [{"failure_mode": "region_outage", "detection_seconds": d,
                           "failover_seconds": 2.0 + i, "recovery_seconds": 8.0,
                           "downtime_seconds": d + 10} for i, d in enumerate(detection)],
        "pg-down": [{"failure_mode": "postgres_down", "detection_seconds": 3.0,
                     "error_rate_during": 0.08, "recovery_seconds": 20.0}],
        "nats-quorum": [{"failure_mode": "nats_quorum_loss", "detection_seconds": 1.5}],
        "unknown": [{"failure_mode": "cosmic_rays", "detection_seconds": 1.0}],
    })


def test_measurements_replace_defaults_and_are_recorded(tmp_path):
    run_dir = _run_dir(tmp_path)
    raw = load_model().raw
    cal = calibrate_model(raw, [str(run_dir)], replicates=5)
    det = cal.raw["failure_modes"]["region_outage"]["detection"]
    assert det["dist"] == "lognormal"
    assert det["median"] * 3600 == pytest.approx(math.exp(sum(map(math.log, (14, 16, 15, 18, 13))) / 5))
    assert cal.raw["failure_modes"]["postgres_down"]["share"] == pytest.approx(0.08)
    # the analytics database is calibrated by the postgres_down journals too
    assert cal.raw["failure_modes"]["analytics_db_down"]["share"] == pytest.approx(0.08)
    assert record_key_source(raw, cal, "analytics_db_down.detection") == "measured"
    assert cal.raw["groups"]["nats"]["detection"]["median"] * 3600 == pytest.approx(1.5)
    assert len(cal.replicates) == 5
    record = parameter_record(raw, cal)
    assert record["region_outage.detection"]["source"] == "measured"
    assert record["region_outage.detection"]["n"] == 5
    assert record["region_outage.failover"]["source"] == "measured"
    assert record["redis_down.detection"]["source"] == "default"
    assert record["redis_down.detection"]["cite"].startswith("ford-osdi10")
    assert record["_ignored_failure_modes"]["modes"] == ["cosmic_rays"]


def record_key_source(raw, cal, key):
    return parameter_record(raw, cal)[key]["source"]


def test_calibrated_projection_carries_uncertainty(tmp_path):
    run_dir = _run_dir(tmp_path)
    result = run_simulation(years=2_000, seed=3, calibrate=[str(run_dir)], sensitivities=False, workers=1)
    p = result["p_exceed"]
    lo, hi = p["parameter_interval"]
    assert 0.0 <= lo <= hi <= 1.0
    assert p["parameter_uncertainty"]["replicates"] == 20
    assert result["calibration"]["region_outage.detection"]["source"] == "measured"
    json.dumps(result)  # plain JSON types only


def test_bad_journals_and_dirs_are_one_sentence(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        calibrate_model(load_model().raw, [str(tmp_path / "missing")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no experiments"):
        calibrate_model(load_model().raw, [str(empty)])
    bad = tmp_path / "bad" / "experiments" / "x"
    bad.mkdir(parents=True)
    (bad / "journal.json").write_text('{"schema": "nineslab.journal/1", "measurements": '
                                      '[{"failure_mode": "region_outage", "detection_seconds": -1}]}')
    with pytest.raises(ConfigError, match="detection_seconds must be a non-negative number"):
        calibrate_model(load_model().raw, [str(tmp_path / "bad")])


def test_restore_rto_and_scale_out_delay_are_calibrated(tmp_path):
    run_dir = make_run_dir(tmp_path / "run", {
        "regional-data-loss": [{"failure_mode": "regional-data-loss", "recovery_seconds": s}
                               for s in (3000.0, 5400.0, 4200.0)],
        "load-spike": [{"failure_mode": "load-spike", "scale_out_delay_seconds": s}
                       for s in (95.0, 140.0, 120.0, 180.0)],
    })
    raw = load_model().raw
    cal = calibrate_model(raw, [str(run_dir)], replicates=4)
    rto = cal.raw["failure_modes"]["regional_data_loss"]["recovery"]
    assert rto["median"] * 3600 == pytest.approx(math.exp(sum(map(math.log, (3000, 5400, 4200))) / 3))
    delay = cal.raw["autoscaling"]["scale_out_delay"]
    assert delay["median"] * 3600 == pytest.approx(math.exp(sum(map(math.log, (95, 140, 120, 180))) / 4))
    assert all(rep["autoscaling"]["scale_out_delay"]["dist"] == "lognormal" for rep in cal.replicates)
    record = parameter_record(raw, cal)
    assert record["regional_data_loss.recovery"]["source"] == "measured"
    assert record["regional_data_loss.recovery"]["journal_mode"] == "regional-data-loss"
    assert record["autoscaling.scale_out_delay"]["n"] == 4
    assert record["postgres_down.recovery"]["source"] == "default"
    assert "_ignored_failure_modes" not in record
    # the default is recorded with its citation when nothing measured it
    assert parameter_record(raw, None)["autoscaling.scale_out_delay"]["cite"].startswith("autoscaling-warmup")


def test_a_faster_measured_scale_out_shortens_the_projection(tmp_path):
    slow = make_run_dir(tmp_path / "slow", {"load-spike": [
        {"failure_mode": "load_spike", "scale_out_delay_seconds": 1800.0}]})
    fast = make_run_dir(tmp_path / "fast", {"load-spike": [
        {"failure_mode": "load_spike", "scale_out_delay_seconds": 30.0}]})
    means = [run_simulation(years=2_000, seed=5, calibrate=[str(d)], sensitivities=False,
                            workers=1)["attribution"]["load_spike"] for d in (slow, fast)]
    assert means[1] < means[0] / 5
