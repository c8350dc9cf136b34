"""JUnit XML for CI: one testsuite per set of experiments, a testcase per experiment, and
a testsuite for the budget projection (the sim gate).

An experiment fails when its verdict is not ``passed`` (with the hypothesis deviations and
invariant violations, example ids included, as the failure text) and errors when it did not
complete. A missing simulation is an error of the budget testcase, so CI never reads
"no projection" as a pass. Pure: :func:`render` returns the XML text.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from reports import fmt
from reports.summary import Summary


def render(summary: Summary) -> str:
    root = ET.Element("testsuites", name=f"nineslab {summary.run_name}")
    suite = ET.SubElement(root, "testsuite", name=f"experiments ({summary.run_name})")
    for r in summary.experiments:
        case = ET.SubElement(suite, "testcase", classname="nineslab.experiments", name=r.name,
                             time=f"{r.fault_seconds or 0.0:.3f}")
        details = (r.deviations + r.data_problems + r.errors)
        if r.status != "completed":
            el = ET.SubElement(case, "error", type=r.status,
                               message=f"experiment {r.status}" + (f": {r.errors[0]}" if r.errors else ""))
            el.text = "\n".join(details) or "no journal.json was written"
        elif r.verdict != "passed":
            el = ET.SubElement(case, "failure", type=r.verdict,
                               message=f"verdict {r.verdict}" + (f": {details[0]}" if details else ""))
            el.text = "\n".join(details)
        out = ET.SubElement(case, "system-out")
        out.text = (f"broke: {r.broke}\ndetection_seconds: {fmt.seconds(r.detection_seconds, r.detection_never)}\n"
                    f"recovery_seconds: {fmt.seconds(r.recovery_seconds, r.recovery_never)}\n"
                    f"downtime_seconds: {fmt.seconds(r.downtime_seconds)}\ndata_lost: {r.data_lost}")
    _counts(suite)
    _budget_suite(root, summary)
    _counts(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _budget_suite(root: ET.Element, summary: Summary) -> None:
    suite = ET.SubElement(root, "testsuite", name="budget projection")
    b = summary.budget
    case = ET.SubElement(suite, "testcase", classname="nineslab.budget", name="sim gate")
    if b is None:
        el = ET.SubElement(case, "error", type="missing", message="no budget projection: sim/result.json is missing or unreadable")
        el.text = "\n".join(f"{w}: {y}" for w, y in summary.missing if w.startswith("sim"))
    elif b.gate_passed is False:
        el = ET.SubElement(case, "failure", type="budget_at_risk",
                           message=b.gate_reasons[0] if b.gate_reasons else "the sim gate failed")
        el.text = "\n".join(b.gate_reasons)
    elif b.gate_passed is None:
        ET.SubElement(case, "error", type="missing", message="sim/result.json has no gate.passed")
    # informational: the figure itself; the gate above decides pass or fail
    case = ET.SubElement(suite, "testcase", classname="nineslab.budget", name="P(D > budget)")
    out = ET.SubElement(case, "system-out")
    if b is not None:
        out.text = (f"p_exceed: {fmt.percent(b.p_exceed)} ({fmt.interval(b.p_exceed_low, b.p_exceed_high)})\n"
                    f"mean_downtime_minutes: {fmt.minutes(b.mean)}\nbudget_minutes: {b.budget_minutes:g}")
    else:
        ET.SubElement(case, "skipped", message="no simulation result")
    _counts(suite)


def _counts(el: ET.Element) -> None:
    cases = el.iter("testcase")
    n = f = e = s = 0
    for c in cases:
        n += 1
        f += c.find("failure") is not None
        e += c.find("error") is not None
        s += c.find("skipped") is not None
    el.set("tests", str(n))
    el.set("failures", str(f))
    el.set("errors", str(e))
    el.set("skipped", str(s))
