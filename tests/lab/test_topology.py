"""The topology file: the default one expands as designed; bad files fail with file, line, key."""
from __future__ import annotations

import pytest

from lab.errors import ConfigError, UsageError
from lab.topology import load_topology, parse_topology

GOOD = """\
schema: nineslab.topology/1
regions: [east, west]
profiles: {quick: q, full: f}
infrastructure:
  pg-{region}: {role: postgres, per_region: true}
  nats-{region}: {role: nats, per_region: true}
services:
  chat-{region}-{n}:
    role: chat
    per_region: true
    replicas: {quick: 1, full: 2}
    deps:
      postgres: {to: "pg-{region}", database: chat}
      nats: {to: ["nats-{region}"]}
"""


def test_default_topology_quick_and_full_profiles():
    topology = load_topology()
    quick, full = topology.plan("quick"), topology.plan("full")
    names = [p.name for p in quick.processes]
    assert names[0] == "proxy"
    for region in ("us-east", "eu-west", "ap-south"):
        for part in ("pg", "redis", "nats"):
            assert f"{part}-{region}" in names
    assert {"pg-analytics", "pg-old", "pg-new", "router-1", "router-2", "analytics", "migration"} <= set(names)
    assert [p.name for p in quick.processes if p.role == "chat"] == [
        "chat-us-east-1", "chat-eu-west-1", "chat-ap-south-1"]
    assert len([p for p in full.processes if p.role == "chat"]) == 6
    assert len([p for p in full.processes if p.role == "router"]) == 2


def test_default_topology_links_cover_every_dependency_and_nats_route():
    plan = load_topology().plan("quick")
    link = plan.links["chat-us-east-1>pg-us-east"]
    assert (link.source, link.target, link.regions) == ("chat-us-east-1", "pg-us-east", ("us-east",))
    nats_links = [n for n in plan.links if n.startswith("nats-")]
    assert len(nats_links) == 6 and "nats-us-east>nats-eu-west" in nats_links
    assert plan.links["nats-us-east>nats-eu-west"].regions == ("us-east", "eu-west")
    assert plan.links["analytics>nats-ap-south"].regions == ("ap-south",)
    for proc in plan.processes:                      # every dependency has its link
        for dep in proc.deps:
            for target in dep.targets:
                assert f"{proc.name}>{target}" in plan.links
    assert len(plan.links) == 6 + 3 * 3 + 4 + 2
    assert plan.databases()["pg-eu-west"] == ["chat"]
    assert plan.databases()["pg-old"] == plan.databases()["pg-new"] == ["profiles"]


def test_dependencies_and_start_order():
    plan = load_topology().plan("quick")
    router = plan.process("router-1")
    assert router.peers == ("chat-us-east-1", "chat-eu-west-1", "chat-ap-south-1")
    assert set(router.peers) <= set(router.depends_on)
    analytics = plan.process("analytics")
    nats_dep = next(d for d in analytics.deps if d.key == "nats")
    assert nats_dep.many and nats_dep.targets == ("nats-us-east", "nats-eu-west", "nats-ap-south")
    chat = plan.process("chat-eu-west-1")
    assert {d.key: d.targets for d in chat.deps} == {
        "postgres": ("pg-eu-west",), "redis": ("redis-eu-west",), "nats": ("nats-eu-west",)}
    assert plan.process("nats-us-east").depends_on == ("proxy",)


def test_unknown_profile_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown profile 'bogus'; choose one of quick, full"):
        load_topology().plan("bogus")


@pytest.mark.parametrize("edit, line, key, message", [
    (("role: chat", "role: chatt"), 9, "services.chat-{region}-{n}.role", "must be 'chat', 'router'"),
    (("    per_region: true\n    replicas", "    per_region: true\n    colour: red\n    replicas"), 11,
     "services.chat-{region}-{n}.colour", "unknown key"),
    (("{quick: 1, full: 2}", "{quick: 1, fast: 2}"), 11, "services.chat-{region}-{n}.replicas.fast",
     "unknown profile 'fast'"),
    (('to: "pg-{region}"', 'to: "pg-{zone}"'), 13, "services.chat-{region}-{n}.deps.postgres.to",
     "'pg-{zone}' is not an infrastructure part"),
    (("nats-{region}: {role: nats, per_region: true}", "nats-{region}: {role: nats}"), 6,
     "infrastructure.nats-{region}", "per_region: true needs '{region}'"),
    (("regions: [east, west]\n", ""), None, "regions", "this key is required"),
    (("{quick: 1, full: 2}", "{quick: 0, full: 2}"), 11, "services.chat-{region}-{n}.replicas",
     "at least 1"),
    (('nats: {to: ["nats-{region}"]}', 'nats: {to: ["nats-{region}"], database: x}'), 14,
     "services.chat-{region}-{n}.deps.nats.database", "a database needs a postgres part"),
])
def test_bad_topology_names_file_line_key_and_problem(edit, line, key, message):
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        parse_topology(text, "my-topology.yaml")
    err = info.value
    assert err.path == "my-topology.yaml" and err.key == key and err.line == line
    assert message in str(err)
    assert str(err).startswith(f"my-topology.yaml:{line}: " if line else "my-topology.yaml: ")


def test_good_topology_parses_and_bad_yaml_names_its_line(tmp_path):
    plan = parse_topology(GOOD).plan("full")
    assert [p.name for p in plan.processes if p.role == "chat"] == [
        "chat-east-1", "chat-east-2", "chat-west-1", "chat-west-2"]
    with pytest.raises(ConfigError, match=r"bad\.yaml:3: not valid YAML"):
        parse_topology("schema: x\nregions: [a\nprofiles: {", "bad.yaml")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: cannot read the topology file"):
        load_topology(missing)


def test_duplicate_names_are_refused():
    text = GOOD.replace("  nats-{region}: {role: nats, per_region: true}\n",
                        "  nats-{region}: {role: nats, per_region: true}\n  pg-east: {role: postgres}\n")
    with pytest.raises(ConfigError, match="two parts are named 'pg-east'"):
        parse_topology(text, "dup.yaml")
