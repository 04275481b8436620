"""The JWKS cache: bounded fetches, no redirects, rate-limited refresh on unknown kid, trusted key sets kept."""

from __future__ import annotations

import re

import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.auth.jwks import JwksCache, JwksUnavailable

URL = "https://client.example/.well-known/jwks.json"


def jwk(kid: str) -> dict:
    key = ec.generate_private_key(ec.SECP384R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_keys_are_cached_per_url():
    responses.get(URL, json={"keys": [jwk("a")]})
    cache = JwksCache()
    assert cache.key(URL, "a")["kid"] == "a"
    assert cache.key(URL, "a")["kid"] == "a"
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_kid_refreshes_at_most_once_a_minute():
    clock = Clock()
    responses.get(URL, json={"keys": [jwk("a")]})
    cache = JwksCache(clock=clock)
    assert cache.key(URL, "a") is not None
    for _ in range(5):
        assert cache.key(URL, "rotated") is None
    assert len(responses.calls) == 1
    clock.now += 61
    responses.replace(responses.GET, URL, json={"keys": [jwk("a"), jwk("rotated")]})
    assert cache.key(URL, "rotated")["kid"] == "rotated"
    assert len(responses.calls) == 2


@responses.activate
def test_keys_are_refetched_after_max_age():
    clock = Clock()
    responses.get(URL, json={"keys": [jwk("a")]})
    cache = JwksCache(clock=clock, max_age_s=600)
    cache.key(URL, "a")
    clock.now += 601
    cache.key(URL, "a")
    assert len(responses.calls) == 2


@responses.activate
def test_redirects_are_not_followed():
    responses.get(URL, status=302, headers={"Location": "https://evil.example/jwks.json"})
    responses.get("https://evil.example/jwks.json", json={"keys": [jwk("a")]})
    with pytest.raises(JwksUnavailable):
        JwksCache().key(URL, "a")
    assert [call.request.url for call in responses.calls] == [URL]


@responses.activate
def test_oversized_key_set_is_refused():
    responses.get(URL, body=b'{"keys": [' + b" " * 100_000 + b"]}")
    with pytest.raises(JwksUnavailable):
        JwksCache(max_bytes=65_536).key(URL, "a")


@responses.activate
def test_failed_fetch_is_also_rate_limited():
    clock = Clock()
    responses.get(URL, status=500)
    cache = JwksCache(clock=clock)
    for _ in range(3):
        with pytest.raises(JwksUnavailable):
            cache.key(URL, "a")
    assert len(responses.calls) == 1


@responses.activate
def test_fetch_uses_a_bounded_timeout():
    responses.get(URL, json={"keys": [jwk("a")]})
    JwksCache(timeout_s=2.0).key(URL, "a")
    assert 1.9 < responses.calls[0].request.req_kwargs["timeout"] <= 2.0  # never past the fetch's deadline


@responses.activate
def test_unusable_keys_in_a_fetched_set_are_skipped():
    good = jwk("good")
    responses.get(URL, json={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, {"kty": "EC"}, good]})
    cache = JwksCache()
    assert cache.key(URL, "good")["kid"] == "good"
    assert cache.key(URL, "hmac") is None


@responses.activate
def test_a_kid_repeated_in_the_set_is_never_used():
    responses.get(URL, json={"keys": [jwk("dup"), jwk("dup")]})
    assert JwksCache().key(URL, "dup") is None


class DownSession:
    """Every fetch fails as a connection error; ``fetched`` lists the URLs tried."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    def get(self, url, **kwargs):
        self.fetched.append(url)
        raise requests.ConnectionError("down")


def test_made_up_key_urls_cannot_multiply_fetches_or_grow_the_cache():
    session = DownSession()
    cache = JwksCache(session, max_entries=4, max_fetches_per_minute=5, clock=lambda: 1000.0)
    for i in range(50):
        with pytest.raises(JwksUnavailable):
            cache.key(f"https://ehr.example/keys/{i}", "k")
    assert len(session.fetched) == 5
    assert cache.size() == 4


def made_up_urls(cache: JwksCache, count: int, owner: str = "https://ehr.example") -> None:
    for i in range(count):
        try:
            cache.key(f"https://ehr.example/keys/junk-{i}.json", f"junk-{i}", owner=owner)
        except JwksUnavailable:
            pass


@responses.activate
def test_a_pinned_url_survives_a_flood_of_made_up_urls():
    responses.get(URL, json={"keys": [jwk("a")]})
    responses.get(re.compile(r"https://ehr\.example/keys/.*"), status=404)
    cache = JwksCache(max_entries=8, max_fetches_per_minute=5)
    cache.pin(URL)
    assert cache.key(URL, "a") is not None
    made_up_urls(cache, 200)
    assert cache.key(URL, "a") is not None
    assert [call.request.url for call in responses.calls].count(URL) == 1


@responses.activate
def test_a_pinned_url_refreshes_when_the_budget_is_used_up():
    clock = Clock()
    responses.get(URL, json={"keys": [jwk("a")]})
    responses.get(re.compile(r"https://ehr\.example/keys/.*"), status=404)
    cache = JwksCache(max_fetches_per_minute=5, clock=clock)
    cache.pin(URL)
    cache.key(URL, "a", owner="https://ehr.example")
    made_up_urls(cache, 50)
    clock.now += 61
    made_up_urls(cache, 50)  # the budget is used up again
    responses.replace(responses.GET, URL, json={"keys": [jwk("a"), jwk("rotated")]})
    assert cache.key(URL, "rotated", owner="https://ehr.example")["kid"] == "rotated"


@responses.activate
def test_a_promoted_jku_survives_a_flood_of_made_up_urls():
    responses.get(URL, json={"keys": [jwk("a")]})
    responses.get(re.compile(r"https://ehr\.example/keys/.*"), status=404)
    cache = JwksCache(max_entries=8, max_fetches_per_minute=5)
    assert cache.key(URL, "a", owner="https://ehr.example") is not None
    cache.promote(URL)
    made_up_urls(cache, 200)
    assert cache.key(URL, "a", owner="https://ehr.example") is not None
    assert [call.request.url for call in responses.calls].count(URL) == 1


@responses.activate
def test_an_unpromoted_jku_is_dropped_by_a_flood_and_cannot_be_refetched_within_the_budget():
    """Why promotion matters: the same flood locks out a key set that has not yet verified a token."""
    responses.get(URL, json={"keys": [jwk("a")]})
    responses.get(re.compile(r"https://ehr\.example/keys/.*"), status=404)
    cache = JwksCache(max_entries=8, max_fetches_per_minute=5)
    assert cache.key(URL, "a", owner="https://ehr.example") is not None
    made_up_urls(cache, 200)
    with pytest.raises(JwksUnavailable):
        cache.key(URL, "a", owner="https://ehr.example")


def test_proven_urls_are_bounded():
    cache = JwksCache(DownSession(), max_proven=3, max_fetches_per_minute=100, clock=lambda: 1000.0)
    for i in range(10):
        with pytest.raises(JwksUnavailable):
            cache.key(f"https://ehr.example/keys/{i}", "k")
        cache.promote(f"https://ehr.example/keys/{i}")
    assert cache.size() == 3


def test_promoting_a_url_never_fetched_keeps_nothing():
    cache = JwksCache(DownSession())
    cache.promote("https://ehr.example/keys/never-seen")
    assert cache.size() == 0


def test_each_issuer_has_its_own_budget_for_unknown_urls():
    session = DownSession()
    cache = JwksCache(session, max_fetches_per_minute=5, clock=lambda: 1000.0)
    made_up_urls(cache, 50, owner="https://flooder.example")
    with pytest.raises(JwksUnavailable):
        cache.key("https://other.example/jwks.json", "k", owner="https://other.example")
    assert len(session.fetched) == 6
    assert session.fetched[-1] == "https://other.example/jwks.json"


def test_a_jku_with_a_query_or_fragment_is_not_allowed():
    from cds_service.auth.issuers import TrustedIssuer

    issuer = TrustedIssuer(iss="https://ehr.example", jku_prefixes=("https://ehr.example/keys/",))
    assert issuer.allows_jku("https://ehr.example/keys/a.json")
    assert not issuer.allows_jku("https://ehr.example/keys/a.json?x=1")
    assert not issuer.allows_jku("https://ehr.example/keys/a.json#k")
