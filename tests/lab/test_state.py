"""The state file: round trip, atomic writes, clear errors, typed accessors, locked updates."""
from __future__ import annotations

import json
import threading

import pytest

from lab.errors import LabError
from lab.state import (SCHEMA, LabState, LinkRecord, ProcessRecord, find_state, load_state,
                       region_processes, save_state, update_process)


def make_state(tmp_path) -> LabState:
    return LabState(
        profile="quick", state_dir=str(tmp_path), created_at=1764100000.0, secret_file=str(tmp_path / "secret"),
        processes={
            "pg-us-east": ProcessRecord(name="pg-us-east", role="postgres", region="us-east", kind="infra",
                                        pid=1234, create_time=1764100001.5, ports={"main": 40001},
                                        data_dir="/d", log_file="/l", argv=["postgres"], stop_signal=2),
            "chat-us-east-1": ProcessRecord(name="chat-us-east-1", role="chat", region="us-east", pid=1300,
                                            ports={"main": 40010}, depends_on=["pg-us-east"]),
            "router-1": ProcessRecord(name="router-1", role="router", pid=1400, ports={"main": 40020}),
        },
        endpoints={"pg-us-east": "postgresql://postgres@127.0.0.1:40001/postgres",
                   "chat-us-east-1": "http://127.0.0.1:40010"},
        proxy={"api": "http://127.0.0.1:40100", "kind": "nineslab"},
        links={"chat-us-east-1>pg-us-east": LinkRecord(listen="127.0.0.1:40201", upstream="127.0.0.1:40001",
                                                       source="chat-us-east-1", target="pg-us-east",
                                                       regions=["us-east"])})


def test_round_trip_keeps_everything_and_writes_the_contract_keys(tmp_path):
    state = make_state(tmp_path)
    path = save_state(state)
    raw = json.loads(path.read_text())
    assert raw["schema"] == SCHEMA
    assert raw["links"]["chat-us-east-1>pg-us-east"]["from"] == "chat-us-east-1"
    assert raw["links"]["chat-us-east-1>pg-us-east"]["to"] == "pg-us-east"
    assert raw["processes"]["pg-us-east"]["status"] == "running"
    assert raw["processes"]["pg-us-east"]["create_time"] == 1764100001.5
    loaded = load_state(tmp_path)
    assert loaded.to_json() == state.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]      # no temp file left behind


def test_unknown_keys_survive_a_round_trip(tmp_path):
    raw = make_state(tmp_path).to_json()
    raw["compose_project"] = "nineslab"
    raw["processes"]["router-1"]["container"] = "abc123"
    (tmp_path / "state.json").write_text(json.dumps(raw))
    save_state(load_state(tmp_path))
    again = json.loads((tmp_path / "state.json").read_text())
    assert again["compose_project"] == "nineslab" and again["processes"]["router-1"]["container"] == "abc123"


def test_accessors(tmp_path):
    state = make_state(tmp_path)
    assert state.endpoint("pg-us-east").endswith(":40001/postgres")
    assert [p.name for p in state.processes_by(role="chat")] == ["chat-us-east-1"]
    assert [p.name for p in region_processes(state, "us-east")] == ["pg-us-east", "chat-us-east-1"]
    assert list(state.links_touching("us-east")) == ["chat-us-east-1>pg-us-east"]
    assert state.links_touching("eu-west") == {}
    assert state.links_dict()["chat-us-east-1>pg-us-east"]["upstream"] == "127.0.0.1:40001"
    assert state.process("pg-us-east").main_port == 40001
    with pytest.raises(LabError, match="no process named 'pg-mars'"):
        state.process("pg-mars")
    with pytest.raises(LabError, match="no endpoint named 'nope'"):
        state.endpoint("nope")


@pytest.mark.parametrize("content, message", [
    (None, "no lab state in"),
    ("{not json", "cannot read the lab state file"),
    (json.dumps({"schema": "nineslab.state/9"}), "has schema 'nineslab.state/9', this nineslab reads nineslab.state/1"),
    (json.dumps({"schema": SCHEMA, "profile": "quick", "state_dir": "/x"}), "is broken at created_at"),
])
def test_bad_state_files_are_lab_errors(tmp_path, content, message):
    if content is not None:
        (tmp_path / "state.json").write_text(content)
    with pytest.raises(LabError, match=message):
        load_state(tmp_path)


def test_find_state_is_none_without_a_file(tmp_path):
    assert find_state(tmp_path) is None


def test_concurrent_updates_of_different_processes_all_land(tmp_path):
    state = make_state(tmp_path)
    save_state(state)

    def mark(name: str, status: str) -> None:
        record = load_state(tmp_path).process(name)
        record.status = status
        update_process(tmp_path, record)

    threads = [threading.Thread(target=mark, args=args) for args in
               [("pg-us-east", "paused"), ("chat-us-east-1", "killed"), ("router-1", "stopped")] * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = load_state(tmp_path)
    assert [final.processes[n].status for n in ("pg-us-east", "chat-us-east-1", "router-1")] == [
        "paused", "killed", "stopped"]
