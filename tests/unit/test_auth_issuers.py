"""The trusted-issuers file and algorithm settings: anything unsafe or unclear stops start-up."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.auth.issuers import TrustedIssuersError, check_algorithms, load_trusted_issuers


@pytest.fixture(scope="module")
def jwk():
    key = ec.generate_private_key(ec.SECP384R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}


def write(tmp_path, content):
    path = tmp_path / "issuers.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_reads_the_three_key_sources(tmp_path, jwk):
    issuers = load_trusted_issuers(
        write(
            tmp_path,
            [
                {"iss": "https://sandbox.cds-hooks.org", "jku": ["https://sandbox.cds-hooks.org/.well-known/"]},
                {"iss": "https://ehr.example.org/fhir", "jwks_uri": "https://ehr.example.org/jwks.json"},
                {"iss": "other", "jwks": {"keys": [jwk]}},
            ],
        )
    )
    assert issuers["https://sandbox.cds-hooks.org"].allows_jku("https://sandbox.cds-hooks.org/.well-known/jwks.json")
    assert issuers["https://ehr.example.org/fhir"].jwks_uri == "https://ehr.example.org/jwks.json"
    assert set(issuers["other"].keys) == {"k1"}


@pytest.mark.parametrize(
    "content,words",
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty JSON list"),
        ('{"iss": "x"}', "non-empty JSON list"),
        ([42], "entry 0 must be an object"),
        ([{"jwks_uri": "https://a.example/j"}], "needs an 'iss'"),
        ([{"iss": "a"}], "no key source"),
        ([{"iss": "a", "jwks_url": "https://a.example/j"}], "unknown field(s) jwks_url"),
        ([{"iss": "a", "jwks_uri": "http://a.example/j"}], "https"),
        ([{"iss": "a", "jwks_uri": "https://user:pw@a.example/j"}], "without credentials"),
        ([{"iss": "a", "jku": "https://a.example/"}], "list of URL prefixes"),
        ([{"iss": "a", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}}], "secret or private"),
        ([{"iss": "a", "jwks": {"keys": [{"kty": "EC", "crv": "P-384"}]}}], "with a 'kid'"),
        (
            [{"iss": "a", "jwks_uri": "https://a.example/j"}, {"iss": "a", "jwks_uri": "https://a.example/k"}],
            "listed twice",
        ),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(tmp_path, content, words):
    with pytest.raises(TrustedIssuersError, match="CDS_TRUSTED_ISSUERS_FILE") as error:
        load_trusted_issuers(write(tmp_path, content))
    assert words in str(error.value)


def test_private_key_material_is_refused(tmp_path):
    private = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()), as_dict=True)
    with pytest.raises(TrustedIssuersError, match="private"):
        load_trusted_issuers(write(tmp_path, [{"iss": "a", "jwks": {"keys": [{**private, "kid": "k"}]}}]))


def test_repeated_kid_is_refused(tmp_path, jwk):
    with pytest.raises(TrustedIssuersError, match="repeats kid"):
        load_trusted_issuers(write(tmp_path, [{"iss": "a", "jwks": {"keys": [jwk, jwk]}}]))


def test_plain_http_key_url_is_allowed_only_on_the_loopback(tmp_path):
    issuers = load_trusted_issuers(write(tmp_path, [{"iss": "a", "jwks_uri": "http://127.0.0.1:9000/jwks"}]))
    assert issuers["a"].jwks_uri == "http://127.0.0.1:9000/jwks"


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["HS384", "ES384"], ["foo"], []])
def test_unsafe_algorithms_are_refused(algorithms):
    with pytest.raises(TrustedIssuersError, match="CDS_JWT_ALGORITHMS"):
        check_algorithms(algorithms)


def test_recommended_algorithms_are_accepted():
    assert check_algorithms(["ES384", "RS384", "ES256"]) == {"ES384", "RS384", "ES256"}
