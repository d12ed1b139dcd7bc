"""The wire encoding: exact round trips, headers, chunking, damage, and size on real activations."""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fsd_core.channels import codec as enc
from fsd_core.channels.codec import FrameError, checksum, decode_block, encode_block
from fsd_core.channels.frames import (
    HEADER,
    MAX_RUN_ID,
    Header,
    frames_for,
    header_size,
    pack_header,
    unpack_header,
)

from .conftest import GC_INPUTS, GRAPH_CHALLENGE

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- helpers
def canonical(block: sp.spmatrix) -> sp.csr_matrix:
    """What the encoding promises to reproduce: duplicates summed, stored zeros dropped."""
    m = sp.csr_matrix(block, copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def assert_identical(expected: sp.spmatrix, got: sp.csr_matrix) -> None:
    """Same shape, same structure, same float32 bit patterns (so -0.0, NaN payloads count)."""
    want = canonical(expected)
    assert isinstance(got, sp.csr_matrix)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    assert got.has_canonical_format
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data.view(np.uint32), want.data.view(np.uint32))


def paper_encoding(block: sp.spmatrix) -> bytes:
    """The paper's message: float32 COO triples [value, row, col], zlib level 3."""
    coo = sp.coo_matrix(block)
    triples = np.column_stack([coo.data, coo.row, coo.col]).astype(np.float32)
    return np.array(block.shape, dtype=np.uint32).tobytes() + zlib.compress(triples.tobytes(), 3)


def value_mode(payload: bytes) -> int:
    return payload[4] >> enc._VAL_SHIFT & 3


def index_mode(payload: bytes) -> int:
    return payload[4] >> enc._IDX_SHIFT & 3


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
VALUE_KINDS = ["saturated", "few", "finite", "extreme"]


@st.composite
def blocks(draw, max_rows: int = 40) -> sp.csr_matrix:
    """Sparse float32 blocks of every shape (zeros included), density and value distribution."""
    rows = draw(st.integers(0, max_rows))
    cols = draw(st.one_of(st.integers(0, 40), st.sampled_from([255, 256, 257, 300, 65536, 70000])))
    cells = rows * cols
    density = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.9, 1.0]))
    nnz = min(cells, int(round(density * cells)), 400)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    flat = rng.choice(cells, size=nnz, replace=False) if nnz else np.zeros(0, dtype=np.int64)
    kind = draw(st.sampled_from(VALUE_KINDS))
    if kind == "saturated":
        values = np.full(nnz, 32.0, dtype=np.float32)
    elif kind == "few":
        choices = draw(st.lists(finite32, min_size=1, max_size=300))
        values = np.array(choices, dtype=np.float32)[rng.integers(0, len(choices), nnz)]
    elif kind == "finite":
        values = np.array(draw(st.lists(finite32, min_size=nnz, max_size=nnz)), dtype=np.float32)
    else:  # tiny, huge and special finite patterns
        pool = np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                         1e-45, -1e-45, 1e-40, -0.0, 32.0, 0.0], dtype=np.float32)
        values = pool[rng.integers(0, len(pool), nnz)]
    return sp.csr_matrix((values, (flat // max(cols, 1), flat % max(cols, 1))), shape=(rows, cols),
                         dtype=np.float32)


run_ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=MAX_RUN_ID)
headers = st.builds(
    lambda rid, layer, src, dst, n, k: Header(rid, layer, src, dst, k % n, n),
    run_ids, st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1),
    st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1))


# ---------------------------------------------------------------------------- round trips
@SETTINGS
@given(blocks())
def test_block_round_trip_is_exact(block):
    assert_identical(block, decode_block(encode_block(block)))


@SETTINGS
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_duplicates_are_summed_and_stored_zeros_dropped(rows, cols, seed):
    assume(rows * cols > 0)
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 3 * rows * cols + 1)
    r, c = rng.integers(0, rows, n), rng.integers(0, cols, n)
    r, c = np.append(r, r[0]), np.append(c, c[0])  # at least one duplicate
    values = rng.choice(np.float32([0.0, -0.0, 1.5, 32.0]), n + 1).astype(np.float32)
    coo = sp.coo_matrix((values, (r, c)), shape=(rows, cols))
    order = np.argsort(r, kind="stable")  # rows in order, columns unsorted and repeated within a row
    indptr = np.concatenate(([0], np.cumsum(np.bincount(r, minlength=rows))))
    raw = sp.csr_matrix((values[order], c[order], indptr), shape=(rows, cols))
    assert not raw.has_canonical_format
    for block in (coo, raw):
        got = decode_block(encode_block(block))
        assert_identical(block, got)
        assert np.all(got.data != 0)


@pytest.mark.parametrize("shape", [(0, 0), (0, 7), (7, 0), (10_000, 1024), (1, 1)])
def test_empty_blocks_keep_their_shape_and_are_tiny(shape):
    payload = encode_block(sp.csr_matrix(shape, dtype=np.float32))
    assert len(payload) <= 16
    got = decode_block(payload)
    assert got.shape == shape and got.nnz == 0


def test_non_finite_bit_patterns_survive_too():
    bits = np.array([0x7FC00001, 0xFFC12345, 0x7F800000, 0xFF800000, 0x00000001, 0x80000001], dtype=np.uint32)
    block = sp.csr_matrix((bits.view(np.float32), ([0, 0, 1, 1, 2, 2], [0, 3, 1, 2, 0, 3])), shape=(3, 4))
    got = decode_block(encode_block(block))
    np.testing.assert_array_equal(got.data.view(np.uint32), bits)


def test_unsorted_csr_from_the_kernel_round_trips():
    rng = np.random.default_rng(3)
    y = sp.random(200, 64, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    w = sp.random(64, 50, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    z = (y @ w).tocsr()
    z.has_sorted_indices = False  # what the kernel hands over
    assert_identical(z, decode_block(encode_block(z)))


def _dense_block(rows, cols, values):
    return sp.csr_matrix(np.asarray(values, dtype=np.float32).reshape(rows, cols))


@pytest.mark.parametrize(
    ("block", "index", "values"),
    [
        (_dense_block(50, 128, np.full(50 * 128, 32.0)), enc._IDX_FULL, enc._VAL_CONST),
        (sp.random(500, 128, density=0.3, random_state=1, format="csr", dtype=np.float32),
         enc._IDX_BITMAP, enc._VAL_PLANES),
        (sp.random(500, 70_000, density=0.0005, random_state=2, format="csr", dtype=np.float32),
         enc._IDX_GAPS, enc._VAL_PLANES),
    ],
    ids=["saturated", "dense-random", "sparse-wide"],
)
def test_index_and_value_coding_follow_the_data(block, index, values):
    payload = encode_block(block)
    assert (index_mode(payload), value_mode(payload)) == (index, values)
    assert_identical(block, decode_block(payload))


@pytest.mark.parametrize(("distinct", "mode"), [(40, enc._VAL_DICT8), (3000, enc._VAL_DICT16)])
def test_few_distinct_values_use_a_dictionary(distinct, mode):
    rng = np.random.default_rng(distinct)
    block = sp.random(2000, 300, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    palette = rng.random(distinct, dtype=np.float32) + np.float32(0.5)
    # Every value appears, and rare ones hide from the encoder's sample.
    block.data = palette[np.concatenate([np.arange(distinct), rng.zipf(1.5, block.nnz - distinct) % distinct])]
    payload = encode_block(block)
    assert value_mode(payload) == mode
    assert_identical(block, decode_block(payload))
    assert len(payload) < 0.5 * 4 * block.nnz  # codes, not raw floats


def test_wide_gaps_and_counts_use_wider_integers():
    block = sp.csr_matrix((np.float32([1, 2, 3]), ([0, 0, 1], [0, 69_999, 5])), shape=(3, 70_000))
    payload = encode_block(block)
    assert index_mode(payload) == enc._IDX_GAPS
    assert payload[4] >> enc._GAP_SHIFT & 3 == 2  # 4-byte gaps
    assert_identical(block, decode_block(payload))


def test_rejects_what_it_cannot_encode_losslessly():
    with pytest.raises(ValueError, match="float32"):
        encode_block(sp.csr_matrix(np.ones((2, 2))))
    with pytest.raises(TypeError):
        encode_block(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="too large"):
        encode_block(sp.csr_matrix((enc.MAX_ROWS + 1, 1), dtype=np.float32))


# ---------------------------------------------------------------------------- headers and frames
@SETTINGS
@given(headers, st.binary(max_size=64))
def test_header_round_trip(header, chunk):
    frame = pack_header(header, chunk) + chunk
    assert len(frame) == header_size(header.run_id) + len(chunk)
    got, rest = unpack_header(frame)
    assert got == header
    assert rest == chunk


@pytest.mark.parametrize("bad", [
    Header("x" * (MAX_RUN_ID + 1), 0, 0, 0), Header("é", 0, 0, 0), Header("r", -1, 0, 0),
    Header("r", 0, 2**16, 0), Header("r", 0, 0, -1), Header("r", 0, 0, 0, 1, 1), Header("r", 0, 0, 0, 0, 0),
])
def test_pack_header_refuses_fields_it_cannot_carry(bad):
    with pytest.raises(ValueError):
        pack_header(bad)


def test_header_is_compact():
    assert header_size("0123456789ab") == HEADER.size + 12 <= 36


@SETTINGS
@given(headers, st.binary(max_size=3000), st.integers(0, 400), st.randoms(use_true_random=False))
def test_frames_for_chunks_and_reassembles(header, payload, extra, rnd):
    max_frame = header_size(header.run_id) + 1 + extra
    frames = frames_for(header, payload, max_frame)
    assert all(len(f) <= max_frame for f in frames)
    assert len(frames) == max(1, -(-len(payload) // (1 + extra)))
    rnd.shuffle(frames)
    parts = {}
    for f in frames:
        h, chunk = unpack_header(f)
        assert (h.run_id, h.layer, h.src, h.dst, h.chunks) == \
            (header.run_id, header.layer, header.src, header.dst, len(frames))
        parts[h.chunk] = chunk
    assert b"".join(parts[k] for k in range(len(frames))) == payload


def test_frames_for_without_limit_or_with_room_to_spare_sends_one_frame():
    h = Header("abc", 1, 2, 3)
    assert len(frames_for(h, b"x" * 1000, None)) == 1
    assert len(frames_for(h, b"x" * 1000, header_size("abc") + 1000)) == 1
    assert len(frames_for(h, b"x" * 1000, header_size("abc") + 999)) == 2
    with pytest.raises(ValueError, match="no room"):
        frames_for(h, b"x", header_size("abc"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(max_rows=300), st.sampled_from([60, 100, 1000, 65_536, None]), st.randoms(use_true_random=False))
def test_blocks_survive_chunking_in_any_order(block, max_frame, rnd):
    frames = frames_for(Header("0123456789ab", 7, 1, 2), encode_block(block), max_frame)
    rnd.shuffle(frames)
    parts = dict((h.chunk, p) for h, p in map(unpack_header, frames))
    assert_identical(block, decode_block(b"".join(parts[k] for k in range(len(parts)))))


# ---------------------------------------------------------------------------- damage
def _payloads():
    rng = np.random.default_rng(11)
    dense = sp.random(60, 40, density=0.4, random_state=rng, format="csr", dtype=np.float32)
    few = dense.copy()
    few.data = rng.choice(np.float32([0.5, 1.0, 32.0]), few.nnz).astype(np.float32)
    wide = sp.random(30, 70_000, density=0.001, random_state=rng, format="csr", dtype=np.float32)
    sat = _dense_block(5, 16, np.full(80, 32.0))
    sat_some = sp.vstack([sat, sp.csr_matrix((5, 16), dtype=np.float32)]).tocsr()
    empty = sp.csr_matrix((9, 9), dtype=np.float32)
    return [encode_block(b) for b in (dense, few, wide, sat, sat_some, empty)]


PAYLOADS = _payloads()


@SETTINGS
@given(st.sampled_from(PAYLOADS), st.data())
def test_truncated_payload_raises_frame_error(payload, data):
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(FrameError):
        decode_block(payload[:cut])
    with pytest.raises(FrameError):
        decode_block(payload + b"\0")


@SETTINGS
@given(st.sampled_from(PAYLOADS), st.data())
def test_damaged_payload_raises_frame_error(payload, data):
    pos = data.draw(st.integers(0, len(payload) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = bytearray(payload)
    damaged[pos] ^= flip
    with pytest.raises(FrameError):
        decode_block(bytes(damaged))


@SETTINGS
@given(st.sampled_from(PAYLOADS), st.data())
def test_damage_behind_a_valid_checksum_never_escapes_as_another_error(payload, data):
    """Past the checksum every size is still checked: FrameError or a well-formed block, nothing else."""
    damaged = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(4, len(payload) - 1))] = data.draw(st.integers(0, 255))
    damaged[:4] = checksum(bytes(damaged[4:])).to_bytes(4, "little")
    try:
        got = decode_block(bytes(damaged))
    except FrameError:
        return
    rows, cols = struct.unpack_from("<II", damaged, 5)
    assert got.shape == (rows, cols) and got.dtype == np.float32
    got.check_format(full_check=True)


@SETTINGS
@given(st.binary(max_size=200))
def test_garbage_is_a_frame_error(garbage):
    with pytest.raises(FrameError):
        decode_block(garbage)
    with pytest.raises(FrameError):
        unpack_header(garbage)


@SETTINGS
@given(headers, st.binary(min_size=1, max_size=100), st.data())
def test_damaged_or_truncated_frames_raise_frame_error(header, chunk, data):
    frame = pack_header(header, chunk) + chunk
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(FrameError):
        unpack_header(frame[:cut])
    damaged = bytearray(frame)
    damaged[data.draw(st.integers(0, len(frame) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(FrameError):
        unpack_header(bytes(damaged))


# ---------------------------------------------------------------------------- size on real data
@pytest.fixture(scope="module")
def real_activations():
    """Activations of the real N=1024 challenge network on the 1,200 real images, by layer."""
    if not GC_INPUTS.is_file():
        pytest.skip("Graph Challenge data not available")
    from fsd_core.kernel.serial import layer_step
    from fsd_core.model.network import import_graph_challenge, read_inputs

    model = import_graph_challenge(GRAPH_CHALLENGE, 1024, 6)
    y = read_inputs(GC_INPUTS, 1024)
    out = {0: y}
    for layer, (w, b) in enumerate(zip(model.weights, model.biases), start=1):
        y = layer_step(y, w, b, model.ymax)
        out[layer] = y
    return out


@pytest.mark.parametrize("layer", [1, 2, 6])
def test_real_activations_take_at_most_a_third_of_the_papers_bytes(real_activations, layer):
    y = real_activations[layer]
    ours = paper = 0
    for cols in np.array_split(np.arange(y.shape[1]), 8):  # 8 workers' column groups
        block = y[:, cols]
        payload = encode_block(block)
        assert_identical(block, decode_block(payload))
        ours += len(payload)
        paper += len(paper_encoding(block))
    assert y.nnz > 10_000
    assert ours * 3 <= paper, f"layer {layer}: {ours} bytes vs the paper's {paper}"


def test_run_of_frames_with_real_blocks_reassembles(real_activations):
    y = real_activations[1][:, :128]
    frames = frames_for(Header("0123456789ab", 1, 0, 3), encode_block(y), 4096)
    assert len(frames) > 1
    random.Random(0).shuffle(frames)
    parts = dict((h.chunk, p) for h, p in map(unpack_header, frames))
    assert_identical(y, decode_block(b"".join(parts[k] for k in range(len(parts)))))
