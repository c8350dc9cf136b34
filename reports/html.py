"""The self-contained HTML report: one file, inline CSS, PNGs as base64 data URIs, no script.

Nothing is fetched to view it (even the favicon is an empty data URI), so it opens from a
CI artifact, an e-mail or an air-gapped laptop. Pure: :func:`render` returns the text.
"""
from __future__ import annotations

import base64
import dataclasses
import struct
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jinja2

from reports import fmt
from reports.compare import Comparison
from reports.figures import Plot, PlotGap
from reports.summary import Summary

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True)


@dataclasses.dataclass
class _Embedded:
    title: str
    caption: str
    uri: str
    width: int
    height: int


def render(summary: Summary, plots: list[Plot], gaps: list[PlotGap], comparison: Comparison | None,
           *, run_dir: str, build_seconds: float) -> str:
    by_section: dict[str, list[_Embedded]] = defaultdict(list)
    for p in plots:
        w, h = png_size(p.png)
        by_section[p.section].append(_Embedded(
            p.title, p.caption, "data:image/png;base64," + base64.b64encode(p.png).decode("ascii"), w, h))
    return _ENV.get_template("report.html.j2").render(
        s=summary, b=summary.budget, plots_by_section=dict(by_section), gaps=gaps, comparison=comparison,
        fmt=fmt, run_dir=run_dir, build_seconds=build_seconds, version=_version())


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    return struct.unpack(">II", png[16:24])


def _version() -> str:
    try:
        return version("nineslab")
    except PackageNotFoundError:
        return "dev"
