"""Who a callback may call: the form of its URL, and where its host resolves (iraas/callbacks/policy.py)."""

from __future__ import annotations

import socket

import pytest

from iraas.callbacks.policy import CallbackPolicy, RefusedDestination, UnresolvedHost

DEPLOYED = CallbackPolicy()
LOCAL = CallbackPolicy(local=True)


def resolver(*addresses: str):
    """A getaddrinfo that answers ``addresses`` for every name (and records what it was asked)."""
    asked: list[tuple[str, int]] = []

    def getaddrinfo(host: str, port: int, type: int = 0):  # noqa: A002 - getaddrinfo's own name
        asked.append((host, port))
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    getaddrinfo.asked = asked  # type: ignore[attr-defined]
    return getaddrinfo


def test_a_deployment_calls_https_at_a_public_address_on_the_address_it_checked() -> None:
    destination = DEPLOYED.resolve("https://hooks.example.com:8443/in/iraas?token=abc", resolver("93.184.216.34"))
    assert (destination.scheme, destination.host, destination.port) == ("https", "hooks.example.com", 8443)
    assert destination.address == "93.184.216.34"  # the connection goes here: no second lookup
    assert destination.target == "/in/iraas?token=abc"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",  # plain http
        "https://10.1.2.3/hook",  # private
        "https://192.168.0.10/",
        "https://127.0.0.1/",  # loopback
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",  # link-local: the instance metadata service
        "https://100.64.0.1/",  # shared address space
        "https://0.0.0.0/",
        "https://224.0.0.1/",  # multicast
        "https://[::ffff:10.0.0.1]/",  # a private IPv4 address written as IPv6
        "https://[fd00::1]/",  # unique local IPv6
        "https://user:pass@hooks.example.com/",
        "ftp://hooks.example.com/",
        "https:///no-host",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\r\nX-Injected: 1",
        "https://hooks.example.com:0/",
        "https://hooks.example.com/" + "a" * 2048,
        "",
    ],
)
def test_a_deployment_refuses_what_is_not_https_to_a_public_host(url: str) -> None:
    with pytest.raises(RefusedDestination):
        DEPLOYED.check_url(url)


@pytest.mark.parametrize("addresses", [("10.0.0.7",), ("127.0.0.1",), ("93.184.216.34", "10.0.0.7"), ("fe80::1",)])
def test_a_name_that_resolves_to_a_private_address_is_refused_after_dns(addresses: tuple[str, ...]) -> None:
    DEPLOYED.check_url("https://rebind.example.com/")  # the name alone passes
    with pytest.raises(RefusedDestination, match="resolves to"):
        DEPLOYED.resolve("https://rebind.example.com/", resolver(*addresses))


def test_dns_without_an_answer_is_not_a_refusal_but_a_failure_to_try_again() -> None:
    def no_answer(*_args: object, **_kwargs: object):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(UnresolvedHost):
        DEPLOYED.resolve("https://hooks.example.com/", no_answer)


def test_iraas_up_also_calls_loopback_over_plain_http_but_no_other_private_range() -> None:
    destination = LOCAL.resolve("http://localhost:8080/hook", resolver("127.0.0.1"))
    assert (destination.address, destination.port, destination.target) == ("127.0.0.1", 8080, "/hook")
    LOCAL.check_url("http://[::1]:9000/")
    with pytest.raises(RefusedDestination):
        LOCAL.check_url("http://10.0.0.7/")
    with pytest.raises(RefusedDestination):
        LOCAL.resolve("http://intranet.example/", resolver("192.168.1.1"))


def test_the_allow_list_opens_named_hosts_and_networks_and_nothing_else() -> None:
    policy = CallbackPolicy.from_allow_list(" hooks.internal , 10.20.0.0/16,")
    policy.check_url("http://hooks.internal/in")  # plain http too, for a named host
    assert policy.resolve("https://hooks.internal/", resolver("10.9.9.9")).address == "10.9.9.9"
    assert policy.resolve("https://anything.example/", resolver("10.20.3.4")).address == "10.20.3.4"
    with pytest.raises(RefusedDestination):
        policy.resolve("https://anything.example/", resolver("10.21.0.1"))
    policy.check_url("http://10.20.3.4/")  # an address in an allowed network, written as such
    with pytest.raises(RefusedDestination):
        policy.check_url("http://anything.example/")  # a network does not open plain http to every name


@pytest.mark.parametrize("entry", ["not a host!", "10.0.0.0/33", "-"])
def test_an_allow_list_entry_that_is_neither_a_host_nor_a_network_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        CallbackPolicy.from_allow_list(entry)
