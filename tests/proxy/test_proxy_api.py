"""Conformance of the HTTP API with Toxiproxy 2.12 (reference §1 and upstream's api_test.go)."""
from __future__ import annotations

import socket

import httpx
import pytest

from proxy_helpers import connect, create_proxy, free_port, recv_exactly


def listening(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
            return True
    except OSError:
        return False


def error_of(reply: httpx.Response) -> tuple[int, str]:
    return reply.status_code, reply.json()["error"]


# -- middleware, index, version, unknown routes ------------------------------------

def test_request_id_and_browser_user_agents(api):
    reply = api.get("/proxies")
    assert reply.headers["X-Toxiproxy-Request-Id"]
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert browser.status_code == 403
    assert browser.text == "User agent not allowed\n"
    assert api.get("/proxies", headers={"User-Agent": "Wget/2.1"}).status_code == 200


def test_empty_index_is_an_empty_object(api):
    reply = api.get("/proxies")
    assert reply.status_code == 200
    assert reply.content == b"{}"
    assert reply.headers["content-type"] == "application/json"


def test_version(api, server):
    reply = api.get("/version")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json;charset=utf-8"
    assert reply.content.endswith(b"\n")
    if server.kind == "nineslab":
        assert reply.content == b'{"version": "2.12.0"}\n'


def test_unknown_path_and_wrong_method(api):
    missing = api.get("/nothing/here")
    assert missing.status_code == 404
    assert missing.text == "404 page not found\n"
    assert api.get("/events").status_code == 404
    wrong = api.put("/proxies")
    assert wrong.status_code == 405
    assert wrong.content == b""


def test_malformed_http_gets_400_and_a_closed_connection(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")


def test_metrics_are_off_without_the_flag(api):
    assert api.get("/metrics").status_code == 404


# -- proxies -----------------------------------------------------------------------

def test_missing_fields(api):
    assert error_of(api.post("/proxies", json={"name": "", "upstream": "localhost:1"})) == \
        (400, "missing required field: name")
    assert error_of(api.post("/proxies", json={"name": "a", "upstream": ""})) == \
        (400, "missing required field: upstream")


def test_error_body_shape(api):
    reply = api.post("/proxies", content=b"")
    assert reply.status_code == 400
    assert reply.content == b'{"error":"bad request body: EOF","status":400}\n'
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"


def test_create_list_get_shapes(api):
    port = free_port()
    reply = api.post("/proxies", json={"name": "redis", "listen": f"localhost:{port}",
                                       "upstream": "localhost:6379"})
    assert reply.status_code == 201
    expected = (f'{{"name":"redis","listen":"127.0.0.1:{port}","upstream":"localhost:6379",'
                f'"enabled":true,"toxics":[]}}').encode()
    assert reply.content == expected
    assert api.get("/proxies/redis").content == expected
    assert api.get("/proxies").content == b'{"redis":' + expected + b"}"
    assert listening(f"127.0.0.1:{port}")


def test_port_zero_becomes_the_real_port_and_survives_disable_enable(api):
    reply = api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})
    listen = reply.json()["listen"]
    assert not listen.endswith(":0")
    assert listening(listen)
    down = api.patch("/proxies/p", json={"enabled": False})
    assert down.status_code == 200 and down.json()["enabled"] is False
    assert down.json()["listen"] == listen
    assert not listening(listen)
    up = api.post("/proxies/p", json={"enabled": True})  # deprecated POST still works
    assert up.status_code == 200 and up.json()["listen"] == listen
    assert listening(listen)


def test_created_disabled_keeps_listen_verbatim(api):
    port = free_port()
    reply = api.post("/proxies", json={"name": "p", "listen": f"localhost:{port}", "upstream": "x:1",
                                       "enabled": False})
    assert reply.status_code == 201
    assert reply.json()["listen"] == f"localhost:{port}"
    assert reply.json()["enabled"] is False
    assert not listening(f"127.0.0.1:{port}")
    enabled = api.patch("/proxies/p", json={"enabled": True}).json()
    assert enabled["listen"] == f"127.0.0.1:{port}"
    assert listening(f"127.0.0.1:{port}")


def test_delete_stops_listening(api):
    _, port = create_proxy(api, "p", "127.0.0.1:1")
    assert api.delete("/proxies/p").status_code == 204
    assert not listening(f"127.0.0.1:{port}")
    assert error_of(api.delete("/proxies/p")) == (404, "proxy not found")
    assert error_of(api.get("/proxies/p")) == (404, "proxy not found")


def test_port_and_name_conflicts(api):
    _, port = create_proxy(api, "first", "127.0.0.1:1")
    status, message = error_of(api.post("/proxies", json={"name": "second", "listen": f"127.0.0.1:{port}",
                                                          "upstream": "127.0.0.1:1"}))
    assert status == 500
    assert message == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert "second" not in api.get("/proxies").json()
    assert error_of(api.post("/proxies", json={"name": "first", "listen": "127.0.0.1:0",
                                               "upstream": "127.0.0.1:1"})) == (409, "proxy already exists")
    api.delete("/proxies/first")
    assert api.post("/proxies", json={"name": "first", "listen": f"127.0.0.1:{port}",
                                      "upstream": "127.0.0.1:1"}).status_code == 201


def test_bad_listen_address(api):
    status, message = error_of(api.post("/proxies", json={"name": "p", "listen": "local373",
                                                          "upstream": "127.0.0.1:1"}))
    assert (status, message) == (500, "listen tcp: address local373: missing port in address")


def test_update_keeps_unsent_fields_and_ignores_name(api):
    create_proxy(api, "p", "127.0.0.1:1")
    before = api.get("/proxies/p").json()
    after = api.patch("/proxies/p", json={"name": "renamed", "upstream": "127.0.0.1:2"}).json()
    assert after["name"] == "p" and after["upstream"] == "127.0.0.1:2"
    assert after["listen"] == before["listen"] and after["enabled"] is True
    assert error_of(api.patch("/proxies/missing", json={})) == (404, "proxy not found")
    assert error_of(api.patch("/proxies/p", json={"enabled": "yes"}))[0] == 400


def test_update_listen_to_port_zero_moves_and_same_listen_keeps_connections(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)
    client = connect(address)
    client.sendall(b"ping")
    assert recv_exactly(client, 4) == b"ping"
    same = api.patch("/proxies/p", json={"listen": f"localhost:{address[1]}"}).json()
    assert same["listen"] == f"127.0.0.1:{address[1]}"
    client.sendall(b"still")
    assert recv_exactly(client, 5) == b"still"  # an equivalent address does not restart
    moved = api.patch("/proxies/p", json={"listen": "localhost:0"}).json()
    assert moved["listen"] != f"127.0.0.1:{address[1]}"
    assert listening(moved["listen"])
    assert client.recv(10) == b""  # the restart closed the old connection
    client.close()


def test_down_closes_every_open_connection(api, echo_upstream):
    address = create_proxy(api, "p", echo_upstream.address)
    clients = [connect(address) for _ in range(3)]
    for client in clients:
        client.sendall(b"x")
        assert recv_exactly(client, 1) == b"x"
    api.patch("/proxies/p", json={"enabled": False})
    for client in clients:
        try:
            assert client.recv(10) == b""
        except ConnectionResetError:
            pass
        client.close()


def test_reset_enables_and_clears_toxics(api):
    _, port = create_proxy(api, "p", "127.0.0.1:1")
    api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    api.patch("/proxies/p", json={"enabled": False})
    reply = api.post("/reset", content=b"ignored")
    assert reply.status_code == 204 and reply.content == b""
    proxy = api.get("/proxies/p").json()
    assert proxy["enabled"] is True and proxy["toxics"] == []
    assert proxy["listen"] == f"127.0.0.1:{port}"
    assert listening(proxy["listen"])


def test_requests_as_the_go_client_and_cli_send_them(api, echo_upstream):
    port = echo_upstream.address.rsplit(":", 1)[1]
    headers = {"User-Agent": "toxiproxy-cli", "Content-Type": "application/json"}
    created = api.post("/proxies", headers=headers, content=(
        b'{"name":"redis","listen":"localhost:0","upstream":"localhost:%s","enabled":true}' % port.encode()))
    assert created.status_code == 201
    toxic = api.post("/proxies/redis/toxics", headers=headers, content=(
        b'{"name":"","type":"latency","stream":"downstream","toxicity":1,'
        b'"attributes":{"latency":1000,"jitter":0}}'))
    assert toxic.status_code == 200 and toxic.json()["name"] == "latency_downstream"
    updated = api.patch("/proxies/redis/toxics/latency_downstream", headers=headers,
                        content=b'{"toxicity":1,"attributes":{"latency":0}}')
    assert updated.json()["attributes"] == {"latency": 0, "jitter": 0}
    toggled = api.post("/proxies/redis", headers=headers, content=b'{"enabled":false}')
    assert toggled.json()["enabled"] is False
    toggled = api.patch("/proxies/redis", headers=headers, content=b'{"enabled":true}')
    assert toggled.json()["enabled"] is True
    assert connect(tuple_of(toggled.json()["listen"])).close() is None  # localhost upstream dials fine


def tuple_of(listen: str) -> tuple[str, int]:
    host, port = listen.rsplit(":", 1)
    return host.strip("[]"), int(port)


def test_delete_closes_open_connections(api, echo_upstream):
    client = connect(create_proxy(api, "p", echo_upstream.address))
    client.sendall(b"x")
    assert recv_exactly(client, 1) == b"x"
    api.delete("/proxies/p")
    client.settimeout(2)
    try:
        assert client.recv(10) == b""
    except ConnectionResetError:
        pass
    client.close()


def test_ipv6_listen(api, echo_upstream):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    reply = api.post("/proxies", json={"name": "v6", "listen": "[::1]:0", "upstream": echo_upstream.address})
    if reply.status_code == 500:
        pytest.skip(f"IPv6 loopback unavailable: {reply.json()['error']}")
    listen = reply.json()["listen"]
    assert listen.startswith("[::1]:") and not listen.endswith(":0")
    client = socket.create_connection(tuple_of(listen), timeout=5)
    client.sendall(b"six")
    assert recv_exactly(client, 3) == b"six"
    client.close()


def test_upstream_that_refuses_closes_the_client(api):
    address = create_proxy(api, "p", f"127.0.0.1:{free_port()}")
    client = connect(address)
    client.settimeout(2)
    try:
        assert client.recv(10) == b""
    except ConnectionResetError:
        pass
    client.close()


# -- toxics ------------------------------------------------------------------------

def test_toxic_defaults_and_shape(api):
    create_proxy(api, "p", "127.0.0.1:1")
    reply = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 100}})
    assert reply.status_code == 200
    assert reply.content == (b'{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream",'
                             b'"type":"latency","stream":"downstream","toxicity":1}')
    noop = api.post("/proxies/p/toxics", json={"type": "noop"}).json()
    assert noop == {"attributes": {}, "name": "noop_downstream", "type": "noop", "stream": "downstream",
                    "toxicity": 1}


def test_every_toxic_lists_all_its_attributes(api):
    create_proxy(api, "p", "127.0.0.1:1")
    expected = {"latency": ["latency", "jitter"], "bandwidth": ["rate"], "slow_close": ["delay"],
                "timeout": ["timeout"], "reset_peer": ["timeout"],
                "slicer": ["average_size", "size_variation", "delay"], "limit_data": ["bytes"]}
    for toxic_type, keys in expected.items():
        attributes = {"average_size": 10} if toxic_type == "slicer" else {}
        reply = api.post("/proxies/p/toxics", json={"type": toxic_type, "stream": "upstream",
                                                    "attributes": attributes})
        assert reply.status_code == 200, reply.text
        assert list(reply.json()["attributes"]) == keys


def test_toxic_list_upstream_first_then_insertion_order(api):
    create_proxy(api, "p", "127.0.0.1:1")
    for name, stream in [("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"), ("u2", "upstream")]:
        api.post("/proxies/p/toxics", json={"name": name, "type": "noop", "stream": stream})
    assert [t["name"] for t in api.get("/proxies/p/toxics").json()] == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == ["u1", "u2", "d1", "d2"]


def test_duplicate_toxic_names_across_streams(api):
    create_proxy(api, "p", "127.0.0.1:1")
    api.post("/proxies/p/toxics", json={"name": "t", "type": "latency", "stream": "upstream",
                                        "attributes": {"latency": 5}})
    assert error_of(api.post("/proxies/p/toxics", json={"name": "t", "type": "latency",
                                                        "stream": "downstream"})) == (409, "toxic already exists")
    assert api.get("/proxies/p/toxics/t").json()["attributes"]["latency"] == 5
    assert api.post("/proxies/p/toxics", json={"type": "latency", "stream": "upstream"}).status_code == 200
    assert api.post("/proxies/p/toxics", json={"type": "latency", "stream": "downstream"}).status_code == 200


def test_toxicity_round_trips_and_update_merges(api):
    create_proxy(api, "p", "127.0.0.1:1")
    created = api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": 0.2,
                                                  "attributes": {"latency": 100, "jitter": 10}})
    assert b'"toxicity":0.2' in created.content
    updated = api.patch("/proxies/p/toxics/latency_downstream",
                        json={"attributes": {"latency": 1000}, "toxicity": 0.5}).json()
    assert updated["attributes"] == {"latency": 1000, "jitter": 10} and updated["toxicity"] == 0.5
    again = api.post("/proxies/p/toxics/latency_downstream", json={"attributes": {"jitter": 20}}).json()
    assert again["attributes"] == {"latency": 1000, "jitter": 20} and again["toxicity"] == 0.5
    assert api.get("/proxies/p/toxics/latency_downstream").json() == again


def test_remove_toxic_and_not_found(api):
    create_proxy(api, "p", "127.0.0.1:1")
    api.post("/proxies/p/toxics", json={"type": "noop"})
    assert api.delete("/proxies/p/toxics/noop_downstream").status_code == 204
    assert api.get("/proxies/p/toxics").json() == []
    assert api.get("/proxies/p/toxics").content == b"[]"
    assert error_of(api.delete("/proxies/p/toxics/noop_downstream")) == (404, "toxic not found")
    assert error_of(api.get("/proxies/p/toxics/nope")) == (404, "toxic not found")
    assert error_of(api.patch("/proxies/p/toxics/nope", json={})) == (404, "toxic not found")
    assert error_of(api.get("/proxies/nope/toxics/x")) == (404, "proxy not found")
    assert error_of(api.post("/proxies/nope/toxics", json={"type": "noop"})) == (404, "proxy not found")


@pytest.mark.parametrize("body, expected", [
    ({"type": "latency", "stream": "walrustream"}, "stream was invalid, can be either upstream or downstream"),
    ({"type": "latency", "stream": ""}, "stream was invalid, can be either upstream or downstream"),
    ({"type": "brainfreeze"}, "invalid toxic type"),
    ({"type": "latency", "stream": "sideways", "name": "x"}, "stream was invalid, can be either upstream or downstream"),
])
def test_toxic_validation_errors(api, body, expected):
    create_proxy(api, "p", "127.0.0.1:1")
    assert error_of(api.post("/proxies/p/toxics", json=body)) == (400, expected)


def test_streams_match_case_insensitively(api):
    create_proxy(api, "p", "127.0.0.1:1")
    assert api.post("/proxies/p/toxics", json={"type": "noop", "stream": "UpStream", "name": "n"}).status_code == 200


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "bad request body: invalid character 'n' looking for beginning of object key string"),
    (b'{"type": "latency", "attributes": {"latency": "100"}}',
     "bad request body: json: cannot unmarshal string into Go struct field"),
    (b'{"type": "latency", "attributes": {"latency": 1.5}}',
     "bad request body: json: cannot unmarshal number 1.5 into Go struct field"),
    (b'{"type": "latency", "toxicity": "high"}', "bad request body: json: cannot unmarshal string"),
    (b'{"type": 5}', "bad request body: json: cannot unmarshal number"),
    (b"", "bad request body: EOF"),
    (b'{"type": "latency"', "bad request body: unexpected EOF"),
])
def test_malformed_toxic_bodies(api, body, fragment):
    create_proxy(api, "p", "127.0.0.1:1")
    status, message = error_of(api.post("/proxies/p/toxics", content=body))
    assert status == 400
    assert message.startswith(fragment)
    assert api.get("/proxies/p/toxics").json() == []


def test_unknown_keys_ignored_and_keys_case_insensitive(api):
    create_proxy(api, "p", "127.0.0.1:1")
    reply = api.post("/proxies/p/toxics", json={"TYPE": "latency", "Attributes": {"LATENCY": 7}, "extra": 1})
    assert reply.status_code == 200
    assert reply.json()["attributes"]["latency"] == 7


@pytest.mark.parametrize("toxic_type, attributes", [
    ("slicer", {"average_size": 0}),
    ("slicer", {"average_size": 10, "size_variation": -1}),
    ("slicer", {"average_size": 10, "size_variation": 10}),
    ("limit_data", {"bytes": -1}),
])
def test_absurd_attributes_are_refused(api, server, toxic_type, attributes):
    if server.kind != "nineslab":
        pytest.skip("the real server accepts these and then panics or hangs on the first byte")
    create_proxy(api, "p", "127.0.0.1:1")
    status, message = error_of(api.post("/proxies/p/toxics", json={"type": toxic_type, "attributes": attributes}))
    assert status == 400 and message.startswith("bad request body: ")
    assert api.get("/proxies/p/toxics").json() == []
    api.post("/proxies/p/toxics", json={"type": "slicer", "name": "s", "attributes": {"average_size": 10}})
    status, _ = error_of(api.patch("/proxies/p/toxics/s", json={"attributes": {"average_size": 0}}))
    assert status == 400
    assert api.get("/proxies/p/toxics/s").json()["attributes"]["average_size"] == 10


# -- populate ----------------------------------------------------------------------

def test_populate_creates_in_order(api):
    body = [{"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
            {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2", "enabled": None},
            {"name": "off", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:3", "enabled": False}]
    reply = api.post("/populate", json=body)
    assert reply.status_code == 201
    proxies = reply.json()["proxies"]
    assert [p["name"] for p in proxies] == ["one", "two", "off"]
    assert [p["enabled"] for p in proxies] == [True, True, False]
    assert listening(proxies[0]["listen"]) and listening(proxies[1]["listen"])
    assert proxies[2]["listen"] == "127.0.0.1:0"


def test_populate_keeps_an_identical_proxy_and_replaces_a_changed_one(api):
    port = free_port()
    create_proxy(api, "same", "127.0.0.1:1", listen=f"127.0.0.1:{port}")
    create_proxy(api, "changed", "127.0.0.1:1")
    api.post("/proxies/same/toxics", json={"type": "latency"})
    api.post("/proxies/changed/toxics", json={"type": "latency"})
    reply = api.post("/populate", json=[
        {"name": "same", "listen": f"localhost:{port}", "upstream": "127.0.0.1:1"},
        {"name": "changed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}])
    assert reply.status_code == 201
    same, changed = reply.json()["proxies"]
    assert same["listen"] == f"127.0.0.1:{port}" and len(same["toxics"]) == 1
    assert changed["upstream"] == "127.0.0.1:9" and changed["toxics"] == []


def test_populate_validates_everything_first(api):
    reply = api.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
                                        {"upstream": "127.0.0.1:2"}])
    assert reply.status_code == 400
    assert reply.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    assert api.get("/proxies").json() == {}


def test_populate_stops_at_the_first_failure(api):
    reply = api.post("/populate", json=[
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "b", "listen": "local373", "upstream": "127.0.0.1:1"},
        {"name": "c", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}])
    assert reply.status_code == 500
    body = reply.json()
    assert list(body) == ["error", "status", "proxies"]
    assert body["error"] == "listen tcp: address local373: missing port in address"
    assert [p["name"] for p in body["proxies"]] == ["a"]
    assert sorted(api.get("/proxies").json()) == ["a"]


def test_populate_empty_and_malformed(api):
    empty = api.post("/populate", json=[])
    assert empty.status_code == 201 and empty.json() == {"proxies": None}
    bad = api.post("/populate", content=b"{")
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad request body: ")
    obj = api.post("/populate", json={"name": "x"})
    assert obj.status_code == 400 and "cannot unmarshal object" in obj.json()["error"]
