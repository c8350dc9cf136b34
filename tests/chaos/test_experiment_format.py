"""The experiment format: the library validates, and bad files get one clear sentence naming
file, line and key — also through the command line, with exit code 2 and no traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chaos.experiment import library, library_dir, load_experiment, parse_experiment
from lab.errors import ConfigError

GOOD = """\
schema: nineslab.experiment/1
name: demo
title: Demo
load: {scenario: chat, rate: 10, duration: 30}
hypothesis:
  probes:
    - {name: availability, sli: availability, tolerance: {min: 0.99}}
faults:
  - kind: process.kill
    target: chat-us-east-1
    at: 5
    for: 10
"""


def test_every_library_experiment_validates():
    exps = library()
    assert len(exps) >= 12
    names = {e.name for e in exps}
    assert {"chat-server-crash", "region-outage", "postgres-down", "redis-down", "nats-node-lost",
            "nats-quorum-lost", "cross-region-latency", "region-partition", "postgres-slow",
            "migration-pg-new-cut", "migration-phase-walk", "analytics-consumer-crash"} <= names
    for path in library_dir().glob("*.yaml"):
        assert load_experiment(path).name == path.stem
    assert 0 < len(library("quick")) < len(exps)


def test_a_good_file_parses_with_defaults():
    exp = parse_experiment(GOOD, path="demo.yaml")
    f = exp.faults[0]
    assert (f.id, f.at, f.duration, f.end) == ("f1", 5, 10, 15)
    assert exp.hypothesis.probes[0].phases == ["before", "after"]
    assert exp.slo.availability == 0.99 and exp.line_of("faults", 0, "at") == 11


@pytest.mark.parametrize("change, message", [
    (("    for: 10\n", "    for: 10\n    tocsic: latency\n"), "demo.yaml:13: faults.0.tocsic: unknown key 'tocsic' (did you mean 'toxic'?)"),
    (("kind: process.kill", "kind: process.kil"), "demo.yaml:9: faults.0.kind: 'process.kil' is not allowed"),
    (("for: 10", "for: 40"), "demo.yaml:9: faults.0: ends at 45 s, after the load ends (30 s)"),
    (("title: Demo\n", ""), "demo.yaml:1: title: required but missing"),
    (("{min: 0.99}", "{}"), "demo.yaml:7: hypothesis.probes.0.tolerance: give at least one of min, max, equals"),
    (("schema: nineslab.experiment/1", "schema: nineslab.experiment/2"), "demo.yaml:1: schema: schema must be"),
    (("load: {scenario: chat, rate: 10, duration: 30}", "load: [scenario: chat"), "demo.yaml:5: not valid YAML"),
    (("rate: 10", "rate: -1"), "demo.yaml:4: load.rate: Input should be greater than 0"),
    (("for: 10", "for: 24"), "demo.yaml:4: load.duration: 30 s leaves no 'after' window"),
])
def test_errors_name_file_line_and_key(change, message):
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        parse_experiment(text, path="demo.yaml")
    assert str(info.value).startswith(message), str(info.value)


def nines(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def test_the_cli_answers_bad_input_with_one_sentence_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("kind: process.kill", "kind: process.kil"))
    r = nines("chaos", "validate", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bad}:9: faults.0.kind:" in r.stderr and "did you mean 'process.kill'" in r.stderr
    r = nines("chaos", "validate", "chat-server-crash", "chat-server-crahs")
    assert r.returncode == 2 and "did you mean 'chat-server-crash'" in r.stderr
    r = nines("gate", str(tmp_path / "missing"))
    assert r.returncode == 2 and "is not a directory" in r.stderr and "Traceback" not in r.stderr
    r = nines("chaos", "run", "chat-server-crash", "--state-dir", str(tmp_path / "nolab"), "--out", str(tmp_path / "o"))
    assert r.returncode == 20 and "nines up" in r.stderr and "Traceback" not in r.stderr


def test_the_cli_lists_and_validates_the_library():
    r = nines("chaos", "list", "--profile", "quick")
    assert r.returncode == 0 and "chat-server-crash" in r.stdout and "region-outage" not in r.stdout
    r = nines("chaos", "validate", *[str(p) for p in sorted(library_dir().glob("*.yaml"))])
    assert r.returncode == 0 and r.stdout.count(": ok") >= 12


def test_a_scaled_experiment_shortens_its_schedule_but_not_its_criteria():
    exp = load_experiment(library_dir() / "chat-server-crash.yaml")
    half = exp.scaled(0.5)
    assert (half.load.duration, half.load.warmup, half.slo.settle_seconds) == (21, 1.5, 3)
    assert (half.faults[0].at, half.faults[0].duration) == (5, 9)
    assert half.faults[0].expect == exp.faults[0].expect and half.slo.recovery_hold_seconds == 3
    assert exp.load.duration == 42 and exp.scaled(1) is exp
    with pytest.raises(ConfigError, match=r"chat-server-crash.yaml: at time scale 0.1: load.duration: 4.2 s leaves "
                                          r"no 'after' window"):
        exp.scaled(0.1)
