"""The queue channel's batching rule: limits, order, greediness, billing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd_core.aws.limits import (
    SNS_MAX_BATCH_ENTRIES,
    SNS_MAX_PAYLOAD,
    attribute_bytes,
    base64_len,
    billed_publish_chunks,
    max_frame_bytes_for_sns,
    pack_batches,
    wire_size,
)

sizes_st = st.lists(st.integers(min_value=0, max_value=SNS_MAX_PAYLOAD), max_size=60)
small_st = st.lists(st.integers(min_value=0, max_value=40_000), max_size=60)


def _check(sizes: list[int], batches: list[list[int]]) -> None:
    flat = [i for b in batches for i in b]
    assert flat == list(range(len(sizes)))  # every entry once, in send order
    for b in batches:
        assert 1 <= len(b) <= SNS_MAX_BATCH_ENTRIES
        assert sum(sizes[i] for i in b) <= SNS_MAX_PAYLOAD
    for a, b in zip(batches, batches[1:]):  # greedy: the next entry did not fit
        assert len(a) == SNS_MAX_BATCH_ENTRIES or sum(sizes[i] for i in a) + sizes[b[0]] > SNS_MAX_PAYLOAD
        merged = a + b
        assert len(merged) > SNS_MAX_BATCH_ENTRIES or sum(sizes[i] for i in merged) > SNS_MAX_PAYLOAD


@settings(max_examples=300, deadline=None)
@given(sizes_st)
def test_pack_batches_properties_any_sizes(sizes):
    _check(sizes, pack_batches(sizes))


@settings(max_examples=300, deadline=None)
@given(small_st)
def test_pack_batches_properties_small_sizes(sizes):
    batches = pack_batches(sizes)
    _check(sizes, batches)
    # with entries this small the byte limit rarely binds: at least ceil(n/10) batches
    assert len(batches) >= -(-len(sizes) // SNS_MAX_BATCH_ENTRIES)


def test_pack_batches_examples():
    assert pack_batches([]) == []
    assert pack_batches([1] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    half = SNS_MAX_PAYLOAD // 2
    assert pack_batches([half, half, 1]) == [[0, 1], [2]]
    assert pack_batches([half + 1, half]) == [[0], [1]]
    with pytest.raises(ValueError):
        pack_batches([SNS_MAX_PAYLOAD + 1])


@given(st.integers(min_value=0, max_value=2000))
def test_max_frame_is_the_largest_that_fits(attr):
    n = max_frame_bytes_for_sns(attr)
    assert wire_size(n, attr) <= SNS_MAX_PAYLOAD
    assert wire_size(n + 1, attr) > SNS_MAX_PAYLOAD


def test_wire_and_billing_rules():
    assert base64_len(0) == 0 and base64_len(1) == 4 and base64_len(3) == 4 and base64_len(4) == 8
    assert wire_size(300, 13) == 400 + 13
    assert max_frame_bytes_for_sns(0) == 196_608
    assert billed_publish_chunks(0) == 1
    assert billed_publish_chunks(65_536) == 1
    assert billed_publish_chunks(65_537) == 2
    assert billed_publish_chunks(SNS_MAX_PAYLOAD) == 4  # AWS: a 256 KB payload bills as four requests
    assert attribute_bytes({"dst": {"DataType": "String", "StringValue": "12"}}) == 3 + 6 + 2
    with pytest.raises(ValueError):
        max_frame_bytes_for_sns(SNS_MAX_PAYLOAD)
