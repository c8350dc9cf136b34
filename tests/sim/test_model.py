"""The model file: units, validation, overrides, the reference model's sources."""
from __future__ import annotations

import pytest

from lab.errors import ConfigError, UsageError
from sim.distributions import parse_distribution
from sim.model import load_model
from sim.quantities import QuantityError, parse_duration, parse_rate


@pytest.mark.parametrize("text,hours", [("5s", 5 / 3600), ("10m", 1 / 6), ("2h", 2), ("30d", 720),
                                        (3, 3.0), ("1.5", 1.5), ("250ms", 250 / 3.6e6)])
def test_durations(text, hours):
    assert parse_duration(text) == pytest.approx(hours)


@pytest.mark.parametrize("text,per_year", [("4/yr", 4), ("1/month", 12), ("2/week", 2 * 8760 / 168),
                                           (6, 6), ("mtbf 1000h", 8.76)])
def test_rates(text, per_year):
    assert parse_rate(text) * 8760 == pytest.approx(per_year)


def test_bad_quantities_say_what_is_accepted():
    with pytest.raises(QuantityError, match="write e.g. 5s, 10m, 2h, 30d or a number of hours"):
        parse_duration("10q")
    with pytest.raises(QuantityError, match="4/yr"):
        parse_rate("often")


def test_lognormal_from_median_and_p95(rng):
    dist = parse_distribution({"dist": "lognormal", "median": "2h", "p95": "20h"})
    draws = dist.sample(rng, 200_000)
    assert (draws < 2).mean() == pytest.approx(0.5, abs=0.005)
    assert (draws < 20).mean() == pytest.approx(0.95, abs=0.003)
    weibull = parse_distribution({"dist": "weibull", "shape": 0.75, "mean": "1h"})
    assert weibull.sample(rng, 200_000).mean() == pytest.approx(1.0, rel=0.02)


def test_reference_model_cites_a_source_for_every_failure_mode():
    loaded = load_model()
    model = loaded.model
    assert list(model.regions) == ["us-east", "eu-west", "ap-south"]
    assert model.budget_minutes == pytest.approx(52.56)
    assert model.router.check_interval == pytest.approx(5 / 3600)
    names = {g.quorum_mode for g in model.groups.values() if g.quorum_mode}
    for n, m in model.failure_modes.items():
        by = m.calibrated_by or n
        names |= {by} if isinstance(by, str) else set(by)
    assert names - {"analytics_consumer_crash", "migration_target_loss"} == {"chat_server_crash", "region_outage", "postgres_down", "redis_down", "nats_node_loss",
                     "nats_quorum_loss", "cross_region_latency", "region_partition", "slow_dependency",
                     "deploy_failure", "regional-data-loss", "load-spike"}
    assert model.autoscaling.source in model.sources
    for name, mode in model.failure_modes.items():
        assert mode.source in model.sources, name


def test_overrides_and_regions():
    loaded = load_model(overrides={"router.check_interval": "10s", "region_outage.rate": "2/yr"}, regions=2)
    assert loaded.model.router.check_interval == pytest.approx(10 / 3600)
    assert loaded.model.failure_modes["region_outage"].rate * 8760 == pytest.approx(2)
    assert list(loaded.model.regions) == ["us-east", "eu-west"]
    with pytest.raises(UsageError, match="did you mean 'region_outage'"):
        load_model(overrides={"failure_modes.region_outag.rate": "1"})
    with pytest.raises(ConfigError, match="region_outage.rate"):
        load_model(overrides={"region_outage.rate": "lots"})
    # an optional key that the file does not set may still be set
    assert load_model(overrides={"groups.chat.repair_crews": "1"}).model.groups["chat"].repair_crews == 1


def test_unknown_keys_and_groups_are_named(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("regions: {r: {traffic_share: 1}}\ngroups: {g: {n: 1}}\n"
                    "failure_modes: {x: {group: gg, rate: 1, duration: 1h}}\n")
    with pytest.raises(ConfigError, match="unknown group 'gg' \\(did you mean 'g'\\?\\)"):
        load_model(path)
    path.write_text("regions: {r: {traffic_share: 1}}\ngroups: {g: {n: 1, colour: red}}\n"
                    "failure_modes: {x: {group: g, rate: 1, duration: 1h}}\n")
    with pytest.raises(ConfigError, match="groups.g.colour: unknown key"):
        load_model(path)
