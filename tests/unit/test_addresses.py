"""The rules for where a site's key may be sent, and for taking a key out of a message."""
from __future__ import annotations

import base64
import socket

import pytest

from dashboard.addresses import AddressPolicy, AddressRefused, check_base_url, comparable_url, guarded_adapter, parse_allowed
from dashboard.postmetric.errors import clean_upstream_message, redact_secrets

KEY = "pm_" + "0123456789abcdef" * 4


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in table[host]]

    return resolve


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.1", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "fe80::1", "fc00::1", "100.64.0.1",
     "224.0.0.1", "0.0.0.0", "::", "240.0.0.1", "64:ff9b::a00:1", "2002:a00:1::"],
)
def test_internal_addresses_are_refused(host):
    with pytest.raises(AddressRefused, match="internal"):
        AddressPolicy(resolver=resolver({})).addresses(host, 80)


@pytest.mark.parametrize("addresses", [["10.0.0.1"], ["169.254.169.254"], ["8.8.8.8", "10.0.0.1"]])
def test_a_name_is_refused_when_any_of_its_addresses_is_internal(addresses):
    policy = AddressPolicy(resolver=resolver({"pm.test": addresses}))
    with pytest.raises(AddressRefused):
        policy.check_url("https://pm.test")


def test_public_addresses_and_allowed_hosts_pass():
    policy = AddressPolicy(*parse_allowed(["intranet.test", "10.2.0.0/16"]), resolver=resolver({"pm.test": ["8.8.8.8"], "intranet.test": ["10.9.9.9"], "other.test": ["10.2.3.4"]}))
    assert policy.addresses("pm.test", 443) == ["8.8.8.8"]
    assert policy.addresses("intranet.test", 80) == ["10.9.9.9"]
    assert policy.addresses("other.test", 80) == ["10.2.3.4"]
    assert AddressPolicy(allow_private=True).addresses("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(AddressRefused):
        AddressPolicy(allow_private=True).addresses("0.0.0.0", 80)


def test_an_unresolvable_name_is_refused_at_save():
    with pytest.raises(AddressRefused, match="could not be resolved"):
        AddressPolicy(resolver=resolver({})).check_url("https://nowhere.test")


@pytest.mark.parametrize(
    "url", ["ftp://pm.test", "https://", "https://u:p@pm.test", "https://u@pm.test", "https://pm.test?x", "https://pm.test/#a", "http://[x", "https://pm.test:70000"]
)
def test_unusable_base_urls_are_refused(url):
    with pytest.raises(AddressRefused):
        check_base_url(url)


def test_any_change_of_scheme_host_port_or_path_is_a_move():
    same = {"https://pm.test", "HTTPS://PM.test/", "https://pm.test:443"}
    assert len({comparable_url(url) for url in same}) == 1
    for other in ["http://pm.test", "https://pm.test:8443", "https://pm2.test", "https://pm.test/api"]:
        assert comparable_url(other) != comparable_url("https://pm.test")


def test_the_guarded_adapter_refuses_before_a_socket_opens(monkeypatch):
    import requests

    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", no_socket)
    session = requests.Session()
    session.mount("http://", guarded_adapter(AddressPolicy(resolver=resolver({"metadata.test": ["169.254.169.254"]}))))
    with pytest.raises(AddressRefused):
        session.get("http://metadata.test/latest", timeout=1)


@pytest.mark.parametrize(
    "shown",
    [
        KEY, KEY[3:], KEY[::-1], KEY.upper(), f"%{KEY}%".replace("_", "%5F"),
        base64.b64encode(KEY.encode()).decode(), base64.b64encode(f"Bearer {KEY}".encode()).decode(),
        base64.urlsafe_b64encode(f"xAuthorization: Bearer {KEY}".encode()).decode(),
    ],
)
def test_every_form_of_the_key_is_redacted(shown):
    cleaned = clean_upstream_message(f"oops: {shown} end", secrets=(KEY,))
    assert cleaned is None or ("[redacted]" in cleaned and "0123456789abcdef" not in cleaned.lower())


@pytest.mark.parametrize("split", [f"{KEY[:20]} and then {KEY[20:]}", " ".join(KEY[i : i + 8] for i in range(0, len(KEY), 8))])
def test_a_key_split_across_the_text_withholds_the_message(split):
    assert redact_secrets(f"oops: {split}", (KEY,)) is None
    assert clean_upstream_message(split, secrets=(KEY,)) is None


def test_ordinary_messages_are_kept():
    assert clean_upstream_message("Unauthorized. Invalid or missing API key.", secrets=(KEY,)) == "Unauthorized. Invalid or missing API key."
    assert clean_upstream_message("db password=hunter2") == "db password=[redacted]"
