"""Control against experiment: the three modes of the format, the interleaved schedule, and the
statistics the journal records (U, p-value, effect sizes, few-samples warning), on made-up data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from chaos import interleave, judge
from chaos.analysis import control_judgement
from chaos.experiment import parse_experiment
from chaos.slis import Sample
from lab.errors import ConfigError
from scenario import T0, outage, samples

BASE = """\
schema: nineslab.experiment/1
name: toggled
title: Toggled
load: {scenario: chat, rate: 10, duration: 60}
faults:
  - id: cut
    kind: proxy.cut
    target: "chat-us-east-*>pg-us-east"
    at: 10
    for: 40
    expect: {detected: true, detection_within: 8}
slo: {settle_seconds: 4}
control:
"""


def _exp(control: str, base: str = BASE):
    return parse_experiment(base + control, path="toggled.yaml")


def test_interleaved_expands_each_fault_into_its_on_windows():
    exp = _exp("  mode: interleaved\n  window_seconds: 5\n")
    assert exp.control.metrics == ["availability_per_second", "latency_ms"]
    toggled = interleave.expand(exp)
    assert [(f.id, f.at, f.duration) for f in toggled.faults] == [
        ("cut@1", 10, 5), ("cut@2", 20, 5), ("cut@3", 30, 5), ("cut@4", 40, 5)]
    assert toggled.faults[0].expect.detection_within == 8
    assert toggled.faults[1].expect.detected is None        # only the first window expects anything
    assert interleave.origin_id("cut@3") == "cut" and exp.faults[0].id == "cut"
    assert interleave.expand(_exp("  min_samples: 5\n")) .faults[0].id == "cut"


@pytest.mark.parametrize("control, message", [
    ("  mode: interleaved\n", "toggled.yaml:13: control: mode interleaved needs 'window_seconds'"),
    ("  mode: interleaved\n  window_seconds: 6\n",
     "toggled.yaml:10: faults.0.for: 40 s is not a whole number of on/off cycles of 2 x control.window_seconds "
     "= 12 s; use 36"),
    ("  mode: interleaved\n  window_seconds: 5\n  metrics: [success]\n", "use availability_per_second"),
    ("  mode: interleaved\n  window_seconds: 1\n", "skip_seconds 1 leaves no whole second"),
    ("  window_seconds: 5\n", "'window_seconds' only applies to mode interleaved, not windows"),
    ("  mode: paths\n  clean: {region: eu-west}\n", "mode paths needs 'clean' and 'faulted'"),
    ("  mode: paths\n  clean: {}\n  faulted: {region: us-east}\n", "control.clean: a path needs 'region'"),
    ("  mode: toggled\n", "toggled.yaml:14: control.mode: 'toggled' is not allowed"),
])
def test_bad_control_sections_name_the_line_and_key(control, message):
    with pytest.raises(ConfigError) as err:
        _exp(control)
    assert message in str(err.value)


def test_u_statistic_p_value_and_effect_sizes_match_scipy():
    rng = np.random.default_rng(3)
    control, experiment = rng.normal(20, 3, 60), rng.normal(24, 3, 70)
    r = judge.compare(control.tolist(), experiment.tolist(), min_samples=50)
    ref = sps.mannwhitneyu(experiment, control, alternative="two-sided")
    assert r["u_statistic"] == pytest.approx(ref.statistic)
    assert r["p_value"] == pytest.approx(ref.pvalue, abs=1e-6)
    assert r["cles"] == pytest.approx(ref.statistic / (60 * 70), abs=1e-4)
    assert r["rank_biserial"] == pytest.approx(2 * r["cles"] - 1, abs=2e-4)
    assert r["few_samples"] is False and not r["warnings"]
    few = judge.compare(control[:8].tolist(), experiment[:8].tolist(), min_samples=10)
    assert few["few_samples"] is True and "control 8, experiment 8, want >= 10" in few["warnings"][0]


def test_on_off_spans_and_per_second_values():
    timeline = [{"start": T0 + 10, "end": T0 + 15}, {"start": T0 + 20, "end": T0 + 25}]
    on, off = interleave.on_off_spans(timeline, 5, T0 + 28)
    assert on == [(T0 + 10, T0 + 15), (T0 + 20, T0 + 25)]
    assert off == [(T0 + 15, T0 + 20), (T0 + 25, T0 + 28)]        # the last cut at the end of the load
    data = samples(30, rate=10, bad={10: 0.5, 11: 0.5}, slow={12: 80.0})
    assert interleave.per_second_values(data, [(T0 + 10, T0 + 13)], "availability_per_second") == [0.5, 0.5, 1.0]
    assert interleave.per_second_values(data, [(T0 + 10, T0 + 13)], "availability_per_second", skip=1) == [0.5, 1.0]
    assert interleave.per_second_values(data, [(T0 + 12, T0 + 13)], "latency_ms") == [pytest.approx(80.45)]


def test_interleaved_judgement_flags_the_on_windows_and_records_the_statistics():
    exp = _exp("  mode: interleaved\n  window_seconds: 5\n  skip_seconds: 0\n  min_samples: 15\n")
    toggled = interleave.expand(exp)
    timeline = [{"id": f.id, "start": T0 + f.at, "end": T0 + f.end} for f in toggled.faults]
    bad = {}
    for f in toggled.faults:
        bad.update(outage(int(f.at), int(f.end), 0.6))
    data = samples(60, rate=10, bad=bad)
    j = control_judgement(toggled, data, timeline, [(T0 + f.at, T0 + f.end) for f in toggled.faults], T0, T0 + 60)
    assert j["mode"] == "interleaved" and j["cycles"] == 4
    assert j["on"][0] == [10, 15] and j["off"][-1] == [45, 50]
    avail = j["metrics"][0]
    assert avail["metric"] == "availability_per_second" and avail["harmful"] is True
    assert (avail["n_control"], avail["n_experiment"]) == (20, 20) and j["samples"] == {"control": 20, "experiment": 20}
    assert avail["u_statistic"] == 0 and avail["p_value"] < 0.001 and avail["rank_biserial"] == -1
    assert j["score"] == 50.0 and j["few_samples"] is False
    assert control_judgement(exp.model_copy(update={"control": exp.control.model_copy(
        update={"min_samples": 50})}), data, timeline, [], T0, T0 + 60)["few_samples"] is True


def test_paths_judgement_compares_the_faulted_region_with_the_clean_one():
    exp = _exp("  mode: paths\n  clean: {region: eu-west}\n  faulted: {region: us-east}\n  min_samples: 20\n")
    data = [Sample(intended_ts=T0 + t / 10, latency_ms=20.0, outcome="ok" if region == "eu-west" or t % 2 else "error",
                   operation="chat.send", region=region)
            for t in range(600) for region in ("eu-west", "us-east")]
    j = control_judgement(exp, data, [], [(T0 + 10, T0 + 50)], T0, T0 + 60)
    assert j["mode"] == "paths" and j["clean"] == {"region": "eu-west"}
    success = next(m for m in j["metrics"] if m["metric"] == "success")
    assert (success["n_control"], success["n_experiment"]) == (400, 400)
    assert success["harmful"] is True and success["estimate"] == pytest.approx(-0.5)


def test_the_report_shows_the_judgement_in_one_line():
    from reports.summary import _judgement_line
    exp = _exp("  mode: interleaved\n  window_seconds: 5\n  skip_seconds: 0\n")
    toggled = interleave.expand(exp)
    timeline = [{"id": f.id, "start": T0 + f.at, "end": T0 + f.end} for f in toggled.faults]
    bad = {t: 0.6 for f in toggled.faults for t in range(int(f.at), int(f.end))}
    j = control_judgement(toggled, samples(60, bad=bad), timeline, [], T0, T0 + 60)
    line = _judgement_line(j)
    assert line.startswith("Control (interleaved): score 50; availability_per_second Low (harmful), p ")
    assert "effect -1, n 20/20" in line and line.endswith("few samples: the test has little power")
    assert _judgement_line(None) == ""
