"""The autoscaler's pure parts: the scaling policy in virtual time, the load signal, and the
journal measurement a load spike yields."""
from __future__ import annotations

import pytest

from chaos.detection import default_matchers, measure_fault
from chaos.experiment import Fault, Slo
from lab.errors import ConfigError
from lab.topology import parse_topology
from system.autoscaler.load_signal import Scrape, per_replica, region_load
from system.autoscaler.policy import AutoscaleSettings, RegionPolicy

SETTINGS = AutoscaleSettings(min=1, max=4, target_per_replica=10, scale_out_cooldown=5, scale_in_cooldown=20)


@pytest.mark.parametrize("steps, expected", [
    # (now, replicas, load) -> action, desired
    ([(0, 1, 10.5)], [("hold", 1)]),                              # within the 10 % band
    ([(0, 1, 35)], [("out", 4)]),                                 # ceil(35/10) = 4
    ([(0, 1, 90)], [("out", 4)]),                                 # clamped to max
    ([(0, 0, None)], [("out", 1)]),                               # below min
    ([(0, 2, None)], [("hold", 2)]),                              # no signal: never act blind
    ([(0, 1, 25), (3, 3, 45)], [("out", 3), ("hold", 3)]),        # scale-out cooldown
    ([(0, 1, 25), (6, 3, 45)], [("out", 3), ("out", 4)]),         # cooldown over
    ([(0, 3, 5), (10, 3, 5), (20, 3, 5)], [("hold", 3), ("hold", 3), ("in", 2)]),   # low for 20 s
    ([(0, 3, 5), (10, 3, 30), (25, 3, 5)], [("hold", 3), ("hold", 3), ("hold", 3)]),  # low streak broken
    ([(0, 2, 19)], [("hold", 2)]),                                # ceil(19/10) = 2: one could not carry it
])
def test_policy_table(steps, expected):
    policy = RegionPolicy(SETTINGS)
    got = []
    for now, current, load in steps:
        d = policy.decide(now, current, load)
        if d.action != "hold":
            policy.acted(d, now)
        got.append((d.action, d.desired))
    assert got == expected


def test_scale_in_waits_its_cooldown_after_a_scale_out():
    policy = RegionPolicy(SETTINGS)
    policy.acted(policy.decide(0, 1, 40), 0)
    assert policy.decide(1, 4, 1).action == "hold"
    assert policy.decide(21, 4, 1).action == "in"


def test_load_signal_rates_and_missing_replicas():
    before = {"a": Scrape(0.0, 3, 100), "b": Scrape(0.0, 1, 50)}
    now = {"a": Scrape(2.0, 4, 140), "b": Scrape(2.0, 2, 10)}      # b restarted: no rate
    assert per_replica("messages_per_second", now, before) == {"a": 20.0}
    assert per_replica("connections", now, before) == {"a": 4, "b": 2}
    assert region_load({"a": 20.0}, 3) == 60.0 and region_load({}, 2) is None


def test_a_load_spike_measures_the_scale_out_delay():
    fault = Fault.model_validate({"id": "spike", "kind": "load.spike", "target": "*", "at": 10, "for": 30,
                                  "failure_mode": "load-spike"})
    events = [{"ts": 1005.0, "kind": "autoscale", "subject": "us-east", "state": "scale_out"},
              {"ts": 1017.5, "kind": "autoscale", "subject": "chat-us-east-3", "state": "routed"}]
    m = measure_fault(fault=fault, start_ts=1010.0, end_ts=1040.0, t0=1000.0, per_second=[], events=events,
                      matchers=default_matchers("load.spike", ["*"]), baseline=1.0, slo=Slo())
    assert (m["failure_mode"], m["scale_out_delay_seconds"]) == ("load-spike", 7.5)


BASE = """\
schema: nineslab.topology/1
regions: [a]
profiles: {quick: q, full: f}
infrastructure:
  nats-{region}: {role: nats, per_region: true}
services:
  chat-{region}-{n}:
    role: chat
    per_region: true
    replicas: {quick: 1, full: 2}
    deps: {nats: {to: ["nats-{region}"]}}
    autoscale: {min: 1, max: 3, target_per_replica: 5%s}
"""


@pytest.mark.parametrize("extra, key, words", [
    (", max: 0", "autoscale.max", "greater than or equal to 1"),
    (", min: 3, max: 2", "autoscale.min", "above max"),
    (", profiles: [full], min: 3, max: 4", "replicas.full", "outside autoscale min..max"),
    (", profiles: [nightly]", "autoscale.profiles", "unknown profile 'nightly'"),
    (", metric: cpu", "autoscale.metric", "'connections' or 'messages_per_second'"),
    (", cooldown: 5", "autoscale.cooldown", "unknown key"),
])
def test_bad_autoscale_settings_name_the_line_and_key(extra, key, words):
    with pytest.raises(ConfigError) as err:
        parse_topology(BASE % extra, "t.yaml")
    text = str(err.value)
    line = 10 if key.startswith("replicas") else 12
    assert text.startswith(f"t.yaml:{line}: services.chat-{{region}}-{{n}}."), text
    assert key in text and words in text, text


def test_autoscale_only_in_its_profiles():
    topology = parse_topology(BASE % ", profiles: [full]", "t.yaml")
    assert topology.plan("quick").autoscalers == ()
    (scaler,) = topology.plan("full").autoscalers
    assert scaler.settings["template"] == "chat-{region}-{n}" and scaler.settings["max"] == 3


def test_discovery_file_round_trip(tmp_path):
    from lab.runtime import discovery
    from system.router.discovery import DiscoveryFile, diff

    one = discovery.Member("chat-a-1", "a", "http://127.0.0.1:4001")
    two = discovery.Member("chat-a-2", "a", "http://127.0.0.1:4002")
    path = discovery.write(tmp_path, "chat", [one, two])
    watcher = DiscoveryFile(str(path))
    members = watcher.poll()
    assert {n: (p.url, p.region) for n, p in members.items()} == {
        "chat-a-1": ("http://127.0.0.1:4001", "a"), "chat-a-2": ("http://127.0.0.1:4002", "a")}
    assert watcher.poll() is None                                # unchanged: nothing to do
    discovery.write(tmp_path, "chat", [one])
    assert diff(members, watcher.poll()) == ([], ["chat-a-2"])
    path.write_text("[{")                                        # half a file: keep what we have
    assert watcher.poll() is None


def test_a_load_spike_fault_gives_the_load_its_shape():
    from chaos.experiment import library_dir, load_experiment
    from chaos.faults.load import shape_args

    exp = load_experiment(library_dir() / "load-spike.yaml")
    assert shape_args(exp.faults) == ["--shape", "spike:at=10,for=40,factor=4"]
    assert shape_args([]) == []
