"""One generated sample region per session, shared read-only by the pipeline tests."""

from __future__ import annotations

import pytest

from terrapipe.sample import SampleManifest, generate_sample_region

BLOCK = "Narmada Pradesh/Sonpur/Amarkantak"


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return generate_sample_region(tmp_path_factory.mktemp("pipelines") / "region", seed=42)


@pytest.fixture
def params(region: SampleManifest) -> dict[str, str]:
    return {"roi": BLOCK, "data": str(region.directory)}
