"""Reports: what SREs and capacity planners read.

``build_report(run_dir, previous=None)`` writes RUN_DIR/report/ — a self-contained HTML
report, a Markdown summary for CI, results.json, junit.xml and the plots as PNG — and
returns their paths. See docs/reports.md.
"""
from reports.build import build_report

__all__ = ["build_report"]
