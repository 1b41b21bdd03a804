"""The sample region, generated once per test session (tests must not modify it)."""

from __future__ import annotations

import pytest

from terrapipe.sample import SampleManifest, generate_sample_region


@pytest.fixture(scope="session")
def sample_region(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return generate_sample_region(tmp_path_factory.mktemp("sample") / "region", seed=42)
