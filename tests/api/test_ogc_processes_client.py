"""OGC API – Processes through the generated client ``ogc-api-processes-client`` (its typed
models, built from the standard's OpenAPI document) against a live ``terrapipe serve``.

Limitations of the client (0.6) worked around below, each where it bites:

- Its ``oneOf`` models accept a value only when exactly one alternative validates, and the
  alternatives overlap: a JSON integer validates as both ``float`` and ``int``, a string as
  both ``str`` and ``bytes``, and arrays are typed ``List[str]``. So it can neither build
  an ``Execute`` with an integer or string input nor read a results document with an
  integer, string or numeric-array value, although those are ordinary JSON values for the
  standard's ``string``/``number``/``integer``/``array`` alternatives.
- ``execute_simple`` (its plain-dict execute) sends no ``Content-Type``.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest
from ogc_api_processes_client import Configuration, Execute
from ogc_api_processes_client.api.result_api import ResultApi
from ogc_api_processes_client.api_client_wrapper import ApiClientWrapper
from ogc_api_processes_client.exceptions import NotFoundException

OGC_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0"
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"


@pytest.fixture(scope="module")
def client(live) -> ApiClientWrapper:
    return ApiClientWrapper(configuration=Configuration(host=live.url))


def _async() -> dict[str, str]:
    # A fresh dict per call: the wrapper hands it to the request as is.
    return {"Prefer": "respond-async", "Content-Type": "application/json"}


def _wait(client: ApiClientWrapper, job_id: str, states: set[str], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_status(job_id)
        if status.status.value in states:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach {states}: {status}")
        time.sleep(0.05)


def _value(inline) -> object:
    """The plain value inside the client's InlineOrRefData -> InputValueNoObject wrappers."""
    return inline.actual_instance.actual_instance


def test_client_lists_and_describes_processes(client) -> None:
    listed = {p.id: p for p in client.get_processes().processes}
    assert {"sums", "count-words", "slow"} <= set(listed)
    options = {o.value for o in listed["slow"].job_control_options}
    assert {"async-execute", "dismiss"} <= options

    sums = client.get_process_description("sums")
    assert (sums.id, sums.version) == ("sums", "1")
    # What tests/api/flows.py declares: numbers(n: int, scale: float = 1.0) -> total.
    n, scale = sums.inputs["n"], sums.inputs["scale"]
    assert n.var_schema.actual_instance.type == "integer" and n.min_occurs == 1
    assert scale.var_schema.actual_instance.type == "number" and scale.min_occurs == 0
    assert scale.var_schema.actual_instance.default == 1.0
    assert set(sums.outputs) == {"total"}


def test_async_execute_status_results_and_job_list(client) -> None:
    n, scale = 7, 0.25
    # execute_simple: Execute.from_dict({"inputs": {"n": 7}}) fails in the client (an int
    # matches two of its oneOf alternatives), so the body goes as a plain dict.
    accepted = client.execute_simple(
        "sums", {"inputs": {"n": n, "scale": scale}}, _headers=_async()
    )
    assert accepted.status.value in ("accepted", "running", "successful")
    assert accepted.process_id == "sums"

    done = _wait(client, accepted.job_id, {"successful", "failed", "dismissed"})
    assert done.status.value == "successful", done
    assert done.progress == 100
    assert done.created <= done.started <= done.finished
    results_link = next(link for link in done.links if link.rel == RESULTS_REL)
    assert results_link.href.endswith(f"/jobs/{accepted.job_id}/results")

    # 0.25 * (0 + 1 + ... + 6) = 5.25: not a whole number, so the client can parse it.
    results = client.get_result(accepted.job_id)
    assert set(results) == {"total"}
    assert _value(results["total"]) == float(np.sum(np.arange(n) * scale))

    listed = [job.job_id for job in client.get_jobs().jobs]
    assert accepted.job_id in listed


def test_async_job_with_a_whole_number_result(client) -> None:
    n, scale = 4, 3.0
    accepted = client.execute_simple(
        "sums", {"inputs": {"n": n, "scale": scale}}, _headers=_async()
    )
    done = _wait(client, accepted.job_id, {"successful", "failed", "dismissed"})
    assert done.status.value == "successful", done
    # {"total": 18}: a JSON integer, which the client's typed get_result cannot place (it
    # matches both `float` and `int`); read the same endpoint through the client's raw call.
    raw = ResultApi(client.api_client).get_result_without_preload_content(accepted.job_id)
    assert raw.status == 200
    assert json.loads(raw.read()) == {"total": float(np.sum(np.arange(n) * scale))}


def test_dismiss_a_running_job(client) -> None:
    # A float-only input: the client's typed Execute model can carry it.
    body = Execute.from_dict({"inputs": {"seconds": 30.0}})
    accepted = client.execute("slow", body, _headers=_async())
    job_id = accepted.job_id
    _wait(client, job_id, {"running"}, timeout=10)

    with pytest.raises(NotFoundException) as early:
        client.get_result(job_id)
    assert early.value.status == 404
    assert early.value.data.type == f"{OGC_EXCEPTIONS}/result-not-ready"

    started = time.monotonic()
    dismissed = client.dismiss(job_id)
    assert dismissed.job_id == job_id and dismissed.status.value == "dismissed"
    # The run stops well before its 30 s nap ends, and stays dismissed.
    while client.get_status(job_id).finished is None:
        assert time.monotonic() - started < 10, "dismissed job did not stop"
        time.sleep(0.05)
    assert client.get_status(job_id).status.value == "dismissed"


def test_unknown_job_is_the_clients_404_with_no_such_job(client) -> None:
    unknown = uuid.uuid4().hex
    calls = {
        "status": client.get_status,
        "results": client.get_result,
        "dismiss": client.dismiss,
    }
    for name, call in calls.items():
        with pytest.raises(NotFoundException) as err:
            call(unknown)
        assert err.value.status == 404, name
        assert err.value.data.type == f"{OGC_EXCEPTIONS}/no-such-job", name
        assert unknown in err.value.data.detail, name


def test_results_of_an_object_valued_output(client, live) -> None:
    (live.data_root / "client-words.txt").write_text("alpha beta gamma")
    body = {"inputs": {"source": str(live.data_root / "client-words.txt")}}
    accepted = client.execute_simple("count-words", body, _headers=_async())
    done = _wait(client, accepted.job_id, {"successful", "failed", "dismissed"})
    assert done.status.value == "successful", done
    wc = client.get_result(accepted.job_id)["wc"].actual_instance  # a QualifiedInputValue
    # The client coerces an object `value` into an empty InputValueNoObject (pydantic's
    # validate_assignment on its Union[InputValueNoObject, object]); the object itself is
    # kept only in the `object` alternative's validator field.
    obj = wc.value.oneof_schema_2_validator
    assert obj["words"] == 3
    assert obj["file"]["href"].startswith(f"{live.url}/jobs/{accepted.job_id}/files/")
