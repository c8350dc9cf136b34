"""``nines proxy serve`` and ``python -m chaos.proxy``: flags, bad input, signals, config, metrics."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import httpx

from proxy_helpers import ServerProcess, connect, free_port, recv_exactly

NINES = [sys.executable, "-m", "lab.cli"]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_port_in_use_is_one_sentence_and_nonzero():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run(NINES + ["proxy", "serve", "--port", str(port)])
    assert result.returncode == 20
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot serve the proxy API on 127.0.0.1:{port} (listen tcp 127.0.0.1:{port}: "
                      "bind: address already in use); choose another --port or stop whatever uses it"]


def test_bad_flags_are_usage_errors():
    for argv in (["--port", "abc"], ["--port", "70000"], ["--seed", "x"], ["--config", "/no/such/file.json"]):
        result = run(NINES + ["proxy", "serve", *argv])
        assert result.returncode == 2, (argv, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip()


def test_version_flag():
    result = run([sys.executable, "-m", "chaos.proxy", "-version"])
    assert result.returncode == 0
    assert "2.12.0" in result.stdout


def test_go_style_flags_config_metrics_and_sigterm(tmp_path, echo_upstream):
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "boot", "listen": listen, "upstream": echo_upstream.address}]))
    port = free_port()
    proc = ServerProcess([sys.executable, "-m", "chaos.proxy", "-host", "127.0.0.1", f"-port={port}",
                          "-config", str(config), "-seed", "9", "-proxy-metrics"],
                         tmp_path / "server.log", url=f"http://127.0.0.1:{port}")
    try:
        assert httpx.get(proc.url + "/proxies/boot").json()["listen"] == listen
        host, lport = listen.rsplit(":", 1)
        client = connect((host, int(lport)))
        client.sendall(b"abc")
        assert recv_exactly(client, 3) == b"abc"
        metrics = httpx.get(proc.url + "/metrics").text
        assert 'toxiproxy_proxy_received_bytes_total{direction="upstream",listener="%s",proxy="boot"' % listen \
            in metrics
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(10) == 0
        client.settimeout(2)
        try:
            assert client.recv(10) == b""  # shutdown closed the open connection
        except ConnectionResetError:
            pass
        client.close()
    finally:
        proc.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Shutting down" in log and "Traceback" not in log


def test_bad_config_file_is_logged_the_server_serves_and_sigint_stops_it(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text("{not json")
    port = free_port()
    proc = ServerProcess(NINES + ["proxy", "serve", "--port", str(port), "--config", str(config)],
                         tmp_path / "server.log", url=f"http://127.0.0.1:{port}")
    try:
        assert httpx.get(proc.url + "/proxies").json() == {}
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(10) == 0
    finally:
        proc.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Failed to populate proxies from file" in log
    assert "Traceback" not in log
