"""Credentials a terrapipe installation keeps for later: sealed with its own key."""

from __future__ import annotations

import pytest


def test_sealed_urls_open_with_the_installations_key_only(tmp_path) -> None:
    """A URL's credential is kept sealed (the key file readable by its owner alone); the
    same installation opens it, another installation's key does not."""
    import stat

    from terrapipe.transfer.secrets import open_urls, seal_urls, sealing_key

    urls = {"a": "https://u:pw123456@example.org/x.tif?sig=abcdef987&v=2", "b": "https://h/y"}
    kept = seal_urls(urls, tmp_path / "home")
    assert kept["b"] == {"url": "https://h/y"}  # nothing to hide: nothing sealed
    assert kept["a"]["url"] == "https://***@example.org/x.tif?sig=***&v=2"
    assert "pw123456" not in str(kept) and "abcdef987" not in str(kept)
    key_file = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sealing_key(tmp_path / "home") == key_file.read_bytes()  # made once, then read
    assert open_urls(kept, tmp_path / "home") == urls
    with pytest.raises(ValueError, match="does not open"):
        open_urls(kept, tmp_path / "other")
