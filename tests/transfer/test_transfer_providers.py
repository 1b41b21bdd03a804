"""Provider settings parsing, prefix matching, secrets masking, URL scrubbing; public API."""

from __future__ import annotations

import pickle

import pytest

import terrapipe.transfer as transfer
from terrapipe.errors import ProviderSettingsError
from terrapipe.transfer.policy import RetryPolicy, parse_retry_after
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings
from terrapipe.transfer.secrets import Secret, scrub_text, scrub_url, strip_userinfo


def test_public_api_is_pinned():
    assert sorted(transfer.__all__) == [
        "ConversionManager",
        "Converter",
        "DefaultConversionManager",
        "DownloadJob",
        "DownloadManager",
        "DownloadReport",
        "Downloader",
        "LocalPublishTarget",
        "LockFactory",
        "ParameterSelector",
        "ProviderRegistry",
        "ProviderSettings",
        "RemoteFile",
        "RetryPolicy",
        "Secret",
        "SftpPublishTarget",
        "TransferOptions",
        "archive",
        "copy",
        "crop",
        "download_many",
        "publish",
        "remove_downloaded",
        "unarchive",
    ]
    assert all(hasattr(transfer, name) for name in transfer.__all__)


def test_longest_prefix_wins_and_env_expansion(monkeypatch, tmp_path):
    monkeypatch.setenv("TP_TEST_PW", "Hunter2-xyz")
    path = tmp_path / "p.yml"
    path.write_text(
        "'https://data.example.org/':\n  username: a\n  max_parallel_downloads: 4\n"
        "'https://data.example.org/secure/':\n  username: b\n  password: ${TP_TEST_PW}\n"
        "  headers: {X-Key: ApiKey-987}\n"
    )
    reg = ProviderRegistry.from_file(path)
    assert reg.for_url("https://data.example.org/x.nc").username == "a"
    secure = reg.for_url("https://data.example.org/secure/y.nc")
    assert secure.username == "b" and secure.password.reveal() == "Hunter2-xyz"
    assert secure.headers == {"X-Key": "ApiKey-987"}
    assert reg.for_url("https://other.org/").username is None
    assert reg.for_url("https://u:p@data.example.org/secure/z").username == "b"
    for text in (repr(secure), str(secure), repr(reg), repr(secure.password)):
        assert "Hunter2-xyz" not in text and "ApiKey-987" not in text
    assert pickle.loads(pickle.dumps(secure.password)) == secure.password


@pytest.mark.parametrize(
    "document,message",
    [
        ({"http://x/": {"authentication_type": "kerberos"}}, "authentication_type"),
        ({"http://x/": {"authentication_type": "oauth2"}}, "token_url and client_id"),
        ({"http://x/": {"max_parallel_downloads": 0}}, "max_parallel_downloads"),
        ({"http://x/": {"pasword": "typo"}}, "unknown setting"),
        ({"http://x/": {"password": "${TP_SURELY_UNSET_VAR}"}}, "TP_SURELY_UNSET_VAR"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_settings_are_named(document, message):
    with pytest.raises(ProviderSettingsError, match=message):
        parse_provider_settings(document)


def test_scrubbing_urls_and_text():
    url = "https://bob:pa55word@host.org/a.nc?token=abc123&x=1"
    assert scrub_url(url) == "https://***@host.org/a.nc?token=***&x=1"
    assert "pa55word" not in scrub_text(f"failed: {url} (pa55word)", (Secret("pa55word"),))
    bare, user, password = strip_userinfo("ftp://u%40x:p%3Aw@h:21/f")
    assert (bare, user, password.reveal()) == ("ftp://h:21/f", "u@x", "p:w")


def test_retry_policy_backoff_and_retry_after():
    policy = RetryPolicy(attempts=5, backoff_s=0.5, max_backoff_s=3, jitter=0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, retry_after=7) == 7
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after(None) is None
