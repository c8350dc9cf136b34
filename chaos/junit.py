"""JUnit XML of a gate result, for CI systems: one test case per experiment, one for the budget."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from chaos.gate import GateResult


def junit_xml(result: GateResult) -> str:
    suite = ET.Element("testsuite", name="nineslab.gate")
    failures = 0
    errors = 0
    total_time = 0.0
    for j in result.journals:
        name = (j.get("experiment") or {}).get("name", "?")
        t = float(j.get("duration_seconds") or 0.0)
        total_time += t
        case = ET.SubElement(suite, "testcase", classname="nineslab.experiments", name=name, time=f"{t:.3f}")
        verdict = j.get("verdict")
        text = "\n".join(j.get("reasons") or j.get("errors") or [])
        if verdict == "error":
            errors += 1
            ET.SubElement(case, "error", message=f"{name}: the experiment failed to run", type="error").text = text
        elif verdict != "passed":
            failures += 1
            ET.SubElement(case, "failure", message=f"{name}: {verdict}", type=str(verdict)).text = text
        out = ET.SubElement(case, "system-out")
        out.text = (f"score {j.get('score')} downtime {j.get('downtime_seconds')} s "
                    f"budget {j.get('budget_minutes_burned')} min")
    case = ET.SubElement(suite, "testcase", classname="nineslab.gate", name="error-budget")
    if result.code.name == "BUDGET_AT_RISK":
        failures += 1
        ET.SubElement(case, "failure", message="budget at risk", type="budget").text = "\n".join(result.reasons)
    elif result.code.name == "LAB_ERROR" and not result.journals:
        errors += 1
        ET.SubElement(case, "error", message="lab error", type="lab").text = "\n".join(result.reasons)
    suite.set("tests", str(len(result.journals) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{total_time:.3f}")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(result: GateResult, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(result))
    return p
