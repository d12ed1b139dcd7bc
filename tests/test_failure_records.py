"""Lambda's on-failure records (`aws/failures.py`): the shape AWS documents, and bytes from
outside: any body decodes to a record or fails with one bounded line, never anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsd_core.aws.failures import (
    MAX_RECORD_BYTES,
    FailureRecord,
    RecordError,
    make_record,
    parse_record,
)
from fsd_core.aws.lambda_emulation import _error_of

RUN = "0123456789ab"
#: The record AWS documents for a failed asynchronous invocation ("Capturing records of Lambda
#: asynchronous invocations"; a Python handler that raised, invoked 3 times).
AWS_EXAMPLE = {
    "version": "1.0",
    "timestamp": "2019-11-14T18:16:05.568Z",
    "requestContext": {
        "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    },
    "requestPayload": {"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]},
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "responsePayload": {"errorMessage": "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before "
                                        "completing request", "errorType": "Runtime.ExitError"},
}


def test_the_documented_record_parses():
    record = parse_record(json.dumps(AWS_EXAMPLE))
    assert record == FailureRecord(
        request_id="e4b46cbf-b738-xmpl-8880-a18cdf61200e",
        function_arn="arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST",
        condition="RetriesExhausted", invoke_count=3, run_id=None, worker=None, error_type="Runtime.ExitError",
        error_message="RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request")
    assert record.line() == ("a worker: its Lambda invocation failed after 3 attempts (RetriesExhausted): "
                             "Runtime.ExitError: RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited "
                             "before completing request")


def test_a_record_of_a_workers_event_names_its_run_and_worker():
    record = parse_record(json.dumps(dict(AWS_EXAMPLE, requestPayload={"run_id": RUN, "worker": 6, "workers": 8})))
    assert (record.run_id, record.worker) == (RUN, 6)
    assert record.line().startswith("worker 6: its Lambda invocation failed after 3 attempts (RetriesExhausted)")


def test_an_expired_event_has_no_response():
    doc = {k: v for k, v in AWS_EXAMPLE.items() if not k.startswith("response")}
    doc["requestContext"] = dict(doc["requestContext"], condition="EventAgeExceeded", approximateInvokeCount=0)
    doc["requestPayload"] = {"run_id": RUN, "worker": 2}
    assert parse_record(json.dumps(doc)).line() == \
        "worker 2: its event expired in Lambda's queue before it ran (EventAgeExceeded)"


def test_the_emulators_records_have_the_documented_shape():
    event = json.dumps({"run_id": RUN, "worker": 1}).encode()
    error = {"errorMessage": "RequestId: r Error: Runtime exited with error: signal: killed",
             "errorType": "Runtime.ExitError"}
    doc = make_record("arn:aws:lambda:us-east-1:123456789012:function:f", event, error=error, request_id="r",
                      now=1573755365.568)
    assert set(doc) == set(AWS_EXAMPLE)
    assert set(doc["requestContext"]) == set(AWS_EXAMPLE["requestContext"])
    assert set(doc["responseContext"]) == set(AWS_EXAMPLE["responseContext"])
    assert doc["timestamp"] == "2019-11-14T18:16:05.568Z"
    assert doc["requestContext"]["functionArn"].endswith(":function:f:$LATEST")
    assert doc["requestPayload"] == {"run_id": RUN, "worker": 1}
    record = parse_record(json.dumps(doc))
    assert (record.run_id, record.worker, record.invoke_count) == (RUN, 1, 1)
    assert record.line() == ("worker 1: its Lambda invocation failed after 1 attempt (RetriesExhausted): "
                             "Runtime.ExitError: RequestId: r Error: Runtime exited with error: signal: killed")


@pytest.mark.parametrize("returncode, wording", [
    (-9, "signal: killed"), (-15, "signal: terminated"), (-11, "signal: segmentation fault"), (3, "exit status 3")])
def test_the_emulator_words_a_worker_exit_as_lambdas_runtime_does(returncode, wording):
    error = _error_of(returncode, b"", "r")
    assert error == {"errorMessage": f"RequestId: r Error: Runtime exited with error: {wording}",
                     "errorType": "Runtime.ExitError"}


def test_a_handler_error_the_runtime_printed_is_reported_as_is():
    printed = b'log line\n{"errorMessage": "boom", "errorType": "ValueError"}\n'
    assert _error_of(1, printed, "r") == {"errorMessage": "boom", "errorType": "ValueError"}
    assert _error_of(0, printed, "r") is None


@pytest.mark.parametrize("body, why", [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "no requestContext"),
    (json.dumps(dict(AWS_EXAMPLE, requestContext={"condition": "Oops"})).encode(), "condition 'Oops'"),
    (json.dumps(dict(AWS_EXAMPLE, requestContext={"condition": "RetriesExhausted",
                                                  "approximateInvokeCount": -1})).encode(), "approximateInvokeCount"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b" " * (MAX_RECORD_BYTES + 1), "over"),
])
def test_what_is_not_a_record_is_one_line(body, why):
    with pytest.raises(RecordError) as refused:
        parse_record(body)
    assert why in str(refused.value) and "\n" not in str(refused.value) and len(str(refused.value)) < 200


def test_what_comes_from_outside_is_bounded_and_on_one_line():
    doc = dict(AWS_EXAMPLE, requestPayload={"run_id": RUN, "worker": 0},
               responsePayload={"errorType": "E\nvil" * 50, "errorMessage": "line\n\x1b[31mred\r\n" * 1000})
    line = parse_record(json.dumps(doc)).line()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and len(line) < 500


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=4), max_leaves=20)


def _check(body: bytes | str) -> None:
    try:
        record = parse_record(body)
    except RecordError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    line = record.line()
    assert "\n" not in line and len(line) < 800


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_bytes_decode_or_fail_with_one_line(body):
    _check(body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(context=st.dictionaries(st.sampled_from(["requestId", "functionArn", "condition", "approximateInvokeCount"]),
                               _json | st.sampled_from(["RetriesExhausted", "EventAgeExceeded"])),
       payload=_json, response=_json, extra=_json)
def test_any_json_in_the_records_fields_decodes_or_fails_with_one_line(context, payload, response, extra):
    _check(json.dumps({"version": extra, "requestContext": context, "requestPayload": payload,
                       "responsePayload": response}))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_records_decode_or_fail_with_one_line(data):
    body = bytearray(json.dumps(dict(AWS_EXAMPLE, requestPayload={"run_id": RUN, "worker": 3})).encode())
    for _ in range(data.draw(st.integers(1, 8))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _check(bytes(body))
