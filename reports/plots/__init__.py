"""One module per plot; each ``render(...)`` takes plain data and returns a matplotlib Figure.

:mod:`reports.plots.common` sets the Agg backend (no display, no GUI toolkit) and turns a
figure into PNG bytes; nothing here reads or writes files.
"""
