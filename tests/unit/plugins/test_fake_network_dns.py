"""The fake network and DNS drivers."""

from __future__ import annotations

import pytest

from pvc_core.drivers.base import DriverContext
from pvc_core.drivers.dns import DnsRecord
from pvc_core.drivers.network import NetworkInfo, NetworkKind, NetworkSpec
from pvc_core.errors import InvalidInput
from pvc_plugins.fake.dns import FakeDnsDriver
from pvc_plugins.fake.network import FakeNetworkDriver

CTX = DriverContext(node="hv1")


def test_network_ensure_is_idempotent_and_updates() -> None:
    net = FakeNetworkDriver({}, CTX)
    spec = NetworkSpec("lan", NetworkKind.BRIDGED, 100)
    assert net.ensure_network(spec) == NetworkInfo("lan", NetworkKind.BRIDGED, 100, "vmbr100", True)
    net.ensure_network(spec)
    changed = NetworkSpec("lan", NetworkKind.BRIDGED, 100, mtu=9000)
    net.ensure_network(changed)
    net.ensure_network(NetworkSpec("a-overlay", NetworkKind.MANAGED, 5000,
                                   ipv4_network="10.0.0.0/24", ipv4_gateway="10.0.0.1"))
    assert [n.name for n in net.list_networks()] == ["a-overlay", "lan"]
    assert net.list_networks()[0].device == "vxbr5000"
    assert net.spec_of("lan") == changed
    assert net.calls_to("ensure_network")[0] == (spec,)


def test_network_remove_is_idempotent() -> None:
    net = FakeNetworkDriver({}, CTX)
    net.ensure_network(NetworkSpec("lan", NetworkKind.BRIDGED, 100))
    net.remove_network("lan")
    net.remove_network("lan")
    assert net.list_networks() == [] and net.spec_of("lan") is None


def test_network_refuses_what_it_does_not_serve() -> None:
    net = FakeNetworkDriver({"kinds": ["bridged"]}, CTX)
    with pytest.raises(InvalidInput, match="managed"):
        net.ensure_network(NetworkSpec("o", NetworkKind.MANAGED, 5000))
    with pytest.raises(InvalidInput, match="VNI"):
        net.ensure_network(NetworkSpec("v", NetworkKind.BRIDGED, 0))


def test_floating_ips() -> None:
    net = FakeNetworkDriver({}, CTX)
    net.add_floating_ip("10.0.0.254/24", "br0")
    net.add_floating_ip("10.0.0.254/24", "br0")
    assert net.floating_ips == {("10.0.0.254/24", "br0")}
    net.remove_floating_ip("10.0.0.254/24", "br0")
    net.remove_floating_ip("10.0.0.254/24", "br0")
    assert net.floating_ips == set()


def running(dns: FakeDnsDriver) -> bool:
    return dns.aggregator_running


def test_dns_aggregator_and_records() -> None:
    dns = FakeDnsDriver({}, CTX)
    assert not running(dns)
    dns.start_aggregator()
    dns.start_aggregator()
    assert running(dns)
    dns.set_record("example.com", "www", "a", "10.0.0.5")
    dns.set_record("example.com", "www", "A", "10.0.0.6", ttl=60)  # replaces
    dns.set_record("example.com", "mail", "MX", "10 mx")
    dns.set_record("other.org", "x", "TXT", "hi")
    assert dns.list_records("example.com") == [
        DnsRecord("example.com", "mail", "MX", "10 mx"),
        DnsRecord("example.com", "www", "A", "10.0.0.6", 60)]
    dns.remove_record("example.com", "www", "a")
    dns.remove_record("example.com", "www", "A")
    assert [r.name for r in dns.list_records("example.com")] == ["mail"]
    dns.stop_aggregator()
    assert not running(dns)
    with pytest.raises(InvalidInput):
        dns.set_record("example.com", "x", "BOGUS", "y")
    with pytest.raises(InvalidInput):
        dns.set_record("example.com", "x", "A", "y", ttl=-1)
    assert dns.calls[0] == ("start_aggregator", ())
