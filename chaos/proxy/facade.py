"""The fault proxy as the chaos engine sees it: named links that can be slowed, cut,
reset and restored, over the Toxiproxy HTTP API — so ours and the real server work alike.

::

    proxy = FaultProxy(state["proxy"]["api"])
    proxy.ensure_links(state["links"])           # idempotent, via /populate
    name = proxy.add_toxic("chat-us-east-1>pg-us-east", "latency", {"latency": 200})
    proxy.cut_region("eu-west", state["links"])   # every link touching the region goes down
    proxy.reset()                                 # rollback: everything enabled, no toxics

HTTP failures become lab errors with the cause kept: a refused request (bad toxic,
unknown link) is a :class:`UsageError`, an unreachable or failing server a
:class:`DependencyError`.
"""
from __future__ import annotations

from typing import Any

import httpx

from lab.errors import DependencyError, UsageError

DEFAULT_TIMEOUT_SECONDS = 30.0  # upstream answers a stuck handler with 503 after 25 s


class FaultProxy:
    """A client of one Toxiproxy-compatible API."""

    def __init__(self, api_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._client = httpx.Client(base_url=self.api_url, timeout=timeout, transport=transport,
                                    headers={"User-Agent": "nineslab-fault-proxy"})

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- HTTP ------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json: Any = None, what: str) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise DependencyError(f"cannot {what}: the fault proxy API at {self.api_url} did not answer "
                                  f"({type(exc).__name__}: {exc}); is the proxy server running?") from exc
        if response.status_code < 400:
            return response
        message = _error_text(response)
        cause = httpx.HTTPStatusError(f"HTTP {response.status_code}: {message}",
                                      request=response.request, response=response)
        if response.status_code in (400, 404, 409):
            raise UsageError(f"cannot {what}: the fault proxy refused it (HTTP {response.status_code}: "
                             f"{message})") from cause
        raise DependencyError(f"cannot {what}: the fault proxy failed (HTTP {response.status_code}: "
                              f"{message})") from cause

    def _patch(self, path: str, body: dict[str, Any], *, what: str) -> httpx.Response:
        """PATCH since 2.6; servers before it only know POST for updates."""
        try:
            return self._request("PATCH", path, json=body, what=what)
        except DependencyError as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 405:
                return self._request("POST", path, json=body, what=what)
            raise

    # -- links -----------------------------------------------------------------

    def ensure_links(self, links: dict[str, dict]) -> dict[str, dict]:
        """Create or update a proxy per link (``listen``/``upstream`` as in the state file).

        Idempotent: a proxy that already has the same addresses keeps its toxics and state.
        """
        entries = []
        for name, link in links.items():
            try:
                entries.append({"name": name, "listen": link["listen"], "upstream": link["upstream"]})
            except (KeyError, TypeError) as exc:
                raise UsageError(f"link {name!r} needs 'listen' and 'upstream' addresses, got {link!r}") from exc
        if not entries:
            return {}
        response = self._request("POST", "/populate", json=entries, what=f"create {len(entries)} proxy links")
        proxies = response.json().get("proxies") or []
        return {proxy["name"]: proxy for proxy in proxies}

    def list_links(self) -> dict[str, dict]:
        return self._request("GET", "/proxies", what="list the proxy links").json()

    def add_toxic(self, link: str, type: str, attributes: dict[str, int], *, stream: str = "downstream",
                  toxicity: float = 1.0, name: str | None = None) -> str:
        """Add a toxic to a link; returns its name (``<type>_<stream>`` unless given)."""
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity,
                                "attributes": _integral(attributes)}
        if name:
            body["name"] = name
        response = self._request("POST", f"/proxies/{link}/toxics", json=body,
                                 what=f"add a {type} toxic to link {link}")
        return response.json()["name"]

    def update_toxic(self, link: str, name: str, attributes: dict[str, int]) -> None:
        self._patch(f"/proxies/{link}/toxics/{name}", {"attributes": _integral(attributes)},
                    what=f"update toxic {name} on link {link}")

    def remove_toxic(self, link: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{link}/toxics/{name}", what=f"remove toxic {name} from link {link}")

    def cut(self, link: str) -> None:
        """Take a link down: its listener and every open connection close."""
        self._patch(f"/proxies/{link}", {"enabled": False}, what=f"cut link {link}")

    def restore(self, link: str) -> None:
        """Bring a link back up on the same port."""
        self._patch(f"/proxies/{link}", {"enabled": True}, what=f"restore link {link}")

    def cut_region(self, region: str, links: dict[str, dict]) -> list[str]:
        """Cut every link whose ``regions`` include ``region``; returns their names."""
        names = sorted(name for name, link in links.items() if region in (link.get("regions") or []))
        for name in names:
            self.cut(name)
        return names

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset", what="reset the fault proxy")

    def healthy(self) -> bool:
        try:
            return self._client.get("/version").status_code == 200
        except httpx.HTTPError:
            return False


def _integral(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes are Go int64s: 100.0 must travel as 100, or both servers refuse it."""
    return {key: int(value) if isinstance(value, float) and value.is_integer() else value
            for key, value in attributes.items()}


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            return str(body["error"])
    except ValueError:
        pass
    return response.text.strip() or response.reason_phrase
