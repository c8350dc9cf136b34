"""Network faults through the fault proxy: toxics on links, cut links, a partitioned region.

Targets are link names or globs (``chat-*>pg-us-east``); a partition's target is a region
(``us-east`` or ``region:us-east``) and cuts every link that touches it. Toxics get a name
chosen at plan time (``nines-<uid>``), so rollback can remove exactly ours.
"""
from __future__ import annotations

from typing import Any

from chaos.faults.base import AppliedFault, match_names, new_uid
from lab.errors import ConfigError, UsageError


class ProxyDriver:
    prefix = "proxy"

    def __init__(self, state: Any, proxy: Any = None) -> None:
        self.state = state
        self._proxy = proxy

    @property
    def proxy(self) -> Any:
        if self._proxy is None:
            from chaos.proxy.facade import FaultProxy
            self._proxy = FaultProxy(self.state.proxy.api)
        return self._proxy

    def _links(self) -> dict[str, Any]:
        return dict(self.state.links)

    def plan(self, fault: Any, *, experiment: str = "", path: str | None = None,
             line: int | None = None) -> AppliedFault:
        uid = new_uid()
        links = self._links()
        if fault.kind == "proxy.partition":
            regions = [t.removeprefix("region:") for t in fault.targets]
            targets: list[str] = []
            for region in regions:
                touching = sorted(n for n, link in links.items() if region in (_regions(link)))
                if not touching:
                    raise ConfigError(f"no link touches region {region!r}", path=path, line=line, key="target")
                targets.extend(t for t in touching if t not in targets)
            params: dict[str, Any] = {"regions": regions}
        else:
            targets = match_names(fault.targets, sorted(links), what="proxy link", path=path, line=line)
            params = {}
        if fault.kind == "proxy.toxic":
            params.update(toxic=fault.toxic, attributes={k: _num(v) for k, v in fault.attributes.items()},
                          stream=fault.stream, toxicity=fault.toxicity, name=f"nines-{uid}")
        return AppliedFault(uid=uid, kind=fault.kind, targets=targets, params=params,
                            fault_id=fault.id or "", experiment=experiment)

    def apply(self, applied: AppliedFault) -> None:
        p = applied.params
        for link in applied.targets:
            if applied.kind == "proxy.toxic":
                self.proxy.add_toxic(link, p["toxic"], p["attributes"], stream=p["stream"],
                                     toxicity=p["toxicity"], name=p["name"])
            elif applied.kind in ("proxy.cut", "proxy.partition"):
                self.proxy.cut(link)
            else:
                raise UsageError(f"the proxy driver cannot apply {applied.kind}")

    def rollback(self, applied: AppliedFault) -> None:
        errors = []
        for link in applied.targets:
            try:
                if applied.kind == "proxy.toxic":
                    try:
                        self.proxy.remove_toxic(link, applied.params["name"])
                    except UsageError:
                        pass  # never added, or already removed: nothing to undo
                else:
                    self.proxy.restore(link)
            except Exception as exc:  # noqa: BLE001 - undo every link, report after
                errors.append(exc)
        if errors:
            raise errors[0]

    def reset(self) -> None:
        self.proxy.reset()


def _regions(link: Any) -> list[str]:
    if isinstance(link, dict):
        return list(link.get("regions") or [])
    return list(getattr(link, "regions", []) or [])


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
