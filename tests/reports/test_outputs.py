"""The report's files: what they hold for a complete run, a run that lost data, and a run
that failed half way (pure checks of the written text, no browser)."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

EXPECTED = {"report.html", "summary.md", "results.json", "junit.xml"}


@pytest.mark.parametrize("name", ["current", "lost", "half"])
def test_every_output_is_written_under_report(built, runs, name):
    paths = built[name]
    assert EXPECTED <= set(paths)
    for key, path in paths.items():
        assert path.is_file() and path.stat().st_size > 0, key
        assert path.parent in (runs[name] / "report", runs[name] / "report" / "plots")
    plots = [p for k, p in paths.items() if k.startswith("plot:")]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)


def test_complete_run_gets_every_plot(built):
    keys = {k for k in built["current"] if k.startswith("plot:")}
    for plot in ("downtime_distribution", "downtime_cdf", "burn_down", "attribution", "sensitivities",
                 "comparison", "timeline-chat-server-crash", "throughput-postgres-partition"):
        assert f"plot:{plot}" in keys


def test_html_is_self_contained(built):
    html = built["current"]["report.html"].read_text()
    assert "<script" not in html.lower()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html)
    external = [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]
    assert external == []
    imgs = re.findall(r'<img src="([^"]+)"', html)
    assert len(imgs) == sum(1 for k in built["current"] if k.startswith("plot:"))
    assert all(src.startswith("data:image/png;base64,") for src in imgs)


def test_first_screen_answers_the_three_questions(built):
    html = built["lost"]["report.html"].read_text()
    first = html[html.index('id="first-screen"'):html.index('id="experiments"')]
    assert 'id="verdict">DATA LOST<' in first
    assert "P(downtime &gt; 52.56 min/yr)" in first and "95% CI" in first
    assert 'id="data-lost">YES<' in first
    for col in ("what broke", "detection s", "recovery s", "downtime s", "data lost"):
        assert f">{col}<" in first
    assert "process.kill chat-us-east-1" in first and "m-1017" in first


def test_markdown_summary_holds_the_key_figures(built, runs):
    md = built["current"]["summary.md"].read_text()
    sim = json.loads((runs["current"] / "sim" / "result.json").read_text())
    p = sim["p_exceed"]["estimate"]
    assert md.startswith("## nineslab run `2026-11-25`: ✅ BUDGET SAFE")
    assert f"**{100 * p:.2f}%**" in md
    assert f"**{sim['downtime_minutes']['mean']:.2f} min**" in md
    assert "Data lost: **no**" in md
    journal = json.loads((runs["current"] / "experiments" / "chat-server-crash" / "journal.json").read_text())
    m = journal["measurements"][0]
    row = next(line for line in md.splitlines() if line.startswith("| chat-server-crash |"))
    assert f"| {m['detection_seconds']:.1f} |" in row and f"| {m['recovery_seconds']:.1f} |" in row
    assert "| no |" in row
    assert "Since `2026-11-24`:" in md and "better" in md


def test_markdown_of_lost_data_names_the_examples(built):
    md = built["lost"]["summary.md"].read_text()
    assert "DATA LOST" in md.splitlines()[0]
    assert "Data lost: **yes**" in md
    assert "chat.no_loss: 3 lost (e.g. m-1017, m-1042, m-1101)" in md


def test_half_failed_run_reports_what_is_missing_and_why(built):
    md = built["half"]["summary.md"].read_text()
    html = built["half"]["report.html"].read_text()
    assert "INCOMPLETE" in md.splitlines()[0]
    assert "**No budget projection**" in md
    assert ("`sim/result.json`: not written (step simulate failed: calibration found no usable journal "
            "for nats_node_down)") in md
    assert ("`experiments/postgres-partition/`: planned in run.json but never started (run failed: experiment "
            "nats-node-pause: nats-ap-south did not come back after SIGCONT within 30 s)") in md
    assert "what is missing and why" in html
    assert "fault f1 could not be rolled back" in html
    assert "No budget plots (downtime distribution, CDF, burn-down, attribution, sensitivities): " \
           "sim/result.json is missing or unreadable — not written (step simulate failed" in html
    # what there is still gets drawn
    assert "plot:timeline-chat-server-crash" in built["half"]
    assert "plot:timeline-nats-node-pause" in built["half"]


def test_junit_has_a_case_per_experiment_and_the_budget(built):
    root = ET.parse(built["lost"]["junit.xml"]).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    exp = next(s for n, s in suites.items() if n.startswith("experiments"))
    cases = {c.get("name"): c for c in exp.iter("testcase")}
    assert set(cases) == {"chat-server-crash", "nats-node-pause", "postgres-partition"}
    failure = cases["chat-server-crash"].find("failure")
    assert failure is not None and failure.get("type") == "invariant_violated"
    assert "m-1042" in failure.text
    assert cases["nats-node-pause"].find("failure") is None
    assert exp.get("tests") == "3" and exp.get("failures") == "1"
    budget = suites["budget projection"]
    assert {c.get("name") for c in budget.iter("testcase")} == {"sim gate", "P(D > budget)"}


def test_junit_of_half_failed_run_errors_instead_of_passing(built):
    root = ET.parse(built["half"]["junit.xml"]).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["nats-node-pause"].find("error").get("type") == "failed"
    assert cases["postgres-partition"].find("error").get("type") == "missing"
    assert cases["sim gate"].find("error") is not None
    assert root.get("errors") == "3"


def test_results_json_carries_summary_comparison_and_inputs(built):
    data = json.loads(built["current"]["results.json"].read_text())
    assert data["schema"] == "nineslab.report/1"
    assert data["summary"]["verdict"] == "BUDGET SAFE"
    assert data["comparison"]["previous_run"] == "2026-11-24"
    directions = {c["key"]: c["direction"] for c in data["comparison"]["changes"]}
    assert directions["sim.mean_downtime"] == "better"
    assert directions["chat-server-crash.detection"] == "better"
    assert data["sim"]["schema"] == "nineslab.sim/1"
    assert all(p.startswith("plots/") for p in data["plots"])
