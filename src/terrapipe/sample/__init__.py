"""Deterministic generator of a small fictional region (``terrapipe sample-data DIR``)."""

from terrapipe.sample.generate import (
    SampleManifest,
    generate_sample_region,
    load_manifest,
)

__all__ = ["SampleManifest", "generate_sample_region", "load_manifest"]
