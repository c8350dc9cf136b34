"""Seeded fuzz of the pure core: records with values of the wrong type anywhere never make
loading, summarising or rendering raise (contract: build_report never raises on bad inputs)."""
from __future__ import annotations

import copy
import json
import random

from fixtures import write_run
from reports import html, junit, markdown, series
from reports.compare import compare
from reports.loader import load_run
from reports.summary import summarise

WEIRD = [None, "x", 3, -1.5, [], {}, [1, "a", None], {"a": None}, True, float("nan")]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def test_wrong_types_anywhere_never_raise(tmp_path):
    run = write_run(tmp_path / "run", experiments=["chat-server-crash"], rate=3.0)
    files = {name: run / name for name in ("experiments/chat-server-crash/journal.json", "sim/result.json", "run.json")}
    originals = {name: json.loads(p.read_text()) for name, p in files.items()}
    for name, data in originals.items():
        if "journal" in name:    # keep the fuzz cheap: per-second rows are many and alike
            data["slis"]["per_second"] = data["slis"]["per_second"][:5]
    paths = {name: [p for p in _paths(d) if p] for name, d in originals.items()}
    rng = random.Random(7)
    for _ in range(120):
        for name, data in originals.items():
            mutated = copy.deepcopy(data)
            for _ in range(3):
                try:
                    _set(mutated, rng.choice(paths[name]), copy.deepcopy(rng.choice(WEIRD)))
                except (KeyError, IndexError, TypeError):
                    pass
            files[name].write_text(json.dumps(mutated))
        view = load_run(run)
        s = summarise(view)
        markdown.render(s, compare(s, s, "same"))
        junit.render(s)
        html.render(s, [], [], None, run_dir=str(run), build_seconds=0.0)
        for exp in view.experiments:
            series.sli_series(exp), series.throughput(exp), series.marks(exp)
