"""Graph Challenge TSV files: 1-based `row<TAB>col<TAB>value` triples and category lists.

Parsing is vectorised (numpy's C tokenizer): a 65,536-neuron layer is 2M lines. Every
problem is reported as an `InputError` naming the file and, where there is one, the line.
Every index is checked against its limit before a matrix is sized by it, so a stray huge row
id is an error, not a request for gigabytes.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..fileio import atomic_path

_ROW_RE = re.compile(r"(?:at )?row (\d+)")
#: Largest row id an inputs or categories file may use: an inputs matrix has a row (an index
#: pointer entry) for every id up to its largest, 128 MiB of them at this limit, and no message
#: carries more rows (channels.codec.MAX_ROWS). The Graph Challenge has 60,000 images.
MAX_INPUT_ROWS = 1 << 24


def _bad_line(path: Path, expect_cols: int) -> tuple[int, str] | None:
    """Slow path, used only after the fast parser failed: find the first malformed line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != expect_cols:
                return lineno, f"expected {expect_cols} fields, found {len(fields)}"
            for f in fields:
                try:
                    float(f)
                except ValueError:
                    return lineno, f"non-numeric value {f.decode(errors='replace')!r}"
    return None


def read_numeric_table(path: str | os.PathLike[str], columns: int) -> np.ndarray:
    """Read a whitespace-separated numeric table with exactly `columns` columns (float64)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": handled below
            arr = np.loadtxt(fh, dtype=np.float64, ndmin=2, comments=None)
    except (ValueError, IndexError) as exc:
        found = _bad_line(path, columns)
        if found:
            lineno, why = found
            raise InputError(f"{path}:{lineno}: {why}") from None
        raise InputError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if arr.size == 0:
        return np.zeros((0, columns))
    if arr.shape[1] != columns:
        found = _bad_line(path, columns)
        where = f"{path}:{found[0]}" if found else str(path)
        raise InputError(f"{where}: expected {columns} fields per line, found {arr.shape[1]}")
    if not np.isfinite(arr).all():
        line = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0]) + 1
        raise InputError(f"{path}:{_nth_data_line(path, line)}: value is not finite")
    return arr


def _nth_data_line(path: Path, n: int) -> int:
    """Map the n-th data row (1-based, blank lines skipped) to its line number in the file."""
    seen = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                seen += 1
                if seen == n:
                    return lineno
    return n


def _indices(path: Path, arr: np.ndarray, col: int, limit: int, what: str) -> np.ndarray:
    """Column `col` of `arr` as 0-based int64 indices, checked to be integers in [1, limit]."""
    vals = arr[:, col]
    bad = ~((vals >= 1) & (vals <= limit) & (vals == np.floor(vals)))  # before any cast: 1e300 too
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}:{_nth_data_line(path, first + 1)}: {what} index {vals[first]:g} "
            f"out of range 1..{limit}"
        )
    return vals.astype(np.int64) - 1


def read_triples(
    path: str | os.PathLike[str], nrows: int | None, ncols: int
) -> sp.csr_matrix:
    """Read 1-based (row, col, value) triples into a float32 CSR matrix.

    `nrows=None` sizes the matrix by the largest row index (input files list only the
    images they hold), up to `MAX_INPUT_ROWS`. A file without entries is refused (no layer or
    inputs file is empty), as are duplicate (row, col) entries: the challenge files have none.
    """
    path = Path(path)
    arr = read_numeric_table(path, 3)
    if not len(arr):
        raise InputError(f"{path}: no entries (the file is empty)")
    rows = _indices(path, arr, 0, MAX_INPUT_ROWS if nrows is None else nrows, "row")
    cols = _indices(path, arr, 1, ncols, "column")
    if nrows is None:
        nrows = int(rows.max()) + 1
    big = np.abs(arr[:, 2]) > np.finfo(np.float32).max  # finite here, inf as float32
    if big.any():
        first = int(np.flatnonzero(big)[0])
        raise InputError(f"{path}:{_nth_data_line(path, first + 1)}: value {arr[first, 2]:g} does not fit float32")
    vals = arr[:, 2].astype(np.float32)
    mat = sp.csr_matrix((vals, (rows, cols)), shape=(nrows, ncols), dtype=np.float32)
    if mat.nnz != len(vals):
        mat.sum_duplicates()
        flat = rows * ncols + cols
        _, first, counts = np.unique(flat, return_index=True, return_counts=True)
        dup_rows = np.sort(np.flatnonzero(np.isin(flat, flat[first[counts > 1]])))
        line = _nth_data_line(path, int(dup_rows[1]) + 1)
        raise InputError(f"{path}:{line}: duplicate entry for row {rows[dup_rows[1]] + 1}, "
                         f"column {cols[dup_rows[1]] + 1}")
    mat.sort_indices()
    return mat


def write_triples(path: str | os.PathLike[str], mat: sp.spmatrix, value_fmt: str = "%.9g") -> None:
    """Write a sparse matrix as 1-based triples, row-major, atomically."""
    coo = sp.csr_matrix(mat).tocoo()
    order = np.lexsort((coo.col, coo.row))
    table = np.column_stack([coo.row[order] + 1, coo.col[order] + 1, coo.data[order]])
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, fmt=["%d", "%d", value_fmt], delimiter="\t")


def read_categories(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a categories file (one 1-based row id per line) as sorted 0-based int64 ids."""
    path = Path(path)
    arr = read_numeric_table(path, 1)[:, 0]
    bad = ~((arr >= 1) & (arr <= MAX_INPUT_ROWS) & (arr == np.floor(arr)))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}:{_nth_data_line(path, first + 1)}: "
                         f"category {arr[first]:g} is not an integer in 1..{MAX_INPUT_ROWS}")
    return np.sort(arr.astype(np.int64) - 1)


def write_categories(path: str | os.PathLike[str], categories: np.ndarray) -> None:
    """Write 0-based category ids as 1-based, one per line, atomically."""
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.asarray(categories, dtype=np.int64) + 1, fmt="%d")
