"""schemathesis against the live server's /openapi.json: every operation, bounded examples;
no 5xx, and every answer matches the schema the document declares."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from terrapipe.publish.layers import publish_layer


@pytest.fixture(scope="module")
def api_schema(live, tmp_path_factory):
    import geopandas as gpd
    import shapely

    path = tmp_path_factory.mktemp("layer") / "pts.parquet"
    frame = gpd.GeoDataFrame(
        {"v": [1, 2, 3]}, geometry=shapely.points([1, 2, 3], [1, 2, 3]), crs="OGC:CRS84"
    )
    frame.to_parquet(path, write_covering_bbox=True)
    publish_layer(
        live.db,
        dataset="pts",
        roi="s",
        kind="vector",
        algorithm_version=1,
        files=[path],
        workflow="t",
    )
    document = httpx.get(f"{live.url}/openapi.json").text
    assert '"$ref":"http' not in document.replace(" ", "")  # resolves offline
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def test_every_operation(api_schema) -> None:
    """Each operation with up to 12 generated requests (the pytest plugin of schemathesis 4
    does not run under pytest 9, so the operations are driven through hypothesis here)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            response = case.call(timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            case.validate_response(response)

        check()
