"""A stored .npz written in pieces (``dataset.npz_pieces``): CRC-32 combine, the layout,
reading with numpy and zipfile, the same bytes however the rows were cut."""

import hashlib
import zipfile
import zlib

import numpy as np
import pytest

from imitation_learning.dataset import npz_pieces as nz


def test_crc32_combine_matches_zlib():
    rng = np.random.default_rng(0)
    for n1, n2 in [(0, 0), (0, 5), (5, 0), (1, 1), (17, 1000), (4096, 3), (100_000, 77_777)]:
        a = rng.integers(0, 256, n1, dtype=np.uint8).tobytes()
        b = rng.integers(0, 256, n2, dtype=np.uint8).tobytes()
        assert nz.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    pieces = [rng.integers(0, 256, int(k), dtype=np.uint8).tobytes() for k in [3, 0, 900, 1]]
    crc = nz.crc32_of_pieces(zlib.crc32(b"head"), [(zlib.crc32(p), len(p)) for p in pieces])
    assert crc == zlib.crc32(b"head" + b"".join(pieces))


def _arrays(n):
    rng = np.random.default_rng(n)
    return {
        "action_type": rng.integers(-1, 4, n).astype(np.int16),
        "gems_removed": rng.random((n, 84)) < 0.3,
        "noble": rng.random((n, 5)) < 0.5,
    }


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_loads_as_any_npz(tmp_path, n):
    arrays = _arrays(n)
    path = tmp_path / "a.npz"
    nz.write_npz_stored(path, arrays)
    with np.load(path, allow_pickle=False) as z:
        assert z.files == list(arrays)
        for k, a in arrays.items():
            got = z[k]
            assert got.dtype == a.dtype and got.shape == a.shape
            np.testing.assert_array_equal(got, a)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # every CRC checked
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    assert path.stat().st_size == nz.NpzLayout.of(nz.members_of(arrays)).size


def test_pieces_in_any_order_same_bytes(tmp_path):
    n = 1001
    arrays = _arrays(n)
    whole = tmp_path / "whole.npz"
    nz.write_npz_stored(whole, arrays)
    digest = hashlib.sha256(whole.read_bytes()).hexdigest()
    layout = nz.NpzLayout.of(nz.members_of(arrays))
    rng = np.random.default_rng(1)
    for trial in range(3):
        cuts = np.sort(rng.choice(np.arange(1, n), size=trial * 5 + 1, replace=False))
        bounds = [0, *cuts.tolist(), n]
        path = tmp_path / f"p{trial}.npz"
        nz.preallocate(path, layout)
        pieces = [[None] * (len(bounds) - 1) for _ in arrays]
        order = rng.permutation(len(bounds) - 1)  # writers finish in any order
        for j in order:
            a, b = bounds[j], bounds[j + 1]
            for i, arr in enumerate(arrays.values()):
                pieces[i][j] = nz.write_rows(path, layout, i, a, arr[a:b])
        nz.seal(path, layout, pieces)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_damaged_row_is_caught(tmp_path):
    arrays = _arrays(50)
    path = tmp_path / "a.npz"
    nz.write_npz_stored(path, arrays)
    layout = nz.NpzLayout.of(nz.members_of(arrays))
    with open(path, "r+b") as f:
        f.seek(layout.data_offsets[1] + 10)
        f.write(b"\x07")
    with np.load(path) as z, pytest.raises(zipfile.BadZipFile):
        z["gems_removed"]


def test_missing_rows_refuse_to_seal(tmp_path):
    arrays = _arrays(10)
    layout = nz.NpzLayout.of(nz.members_of(arrays))
    path = tmp_path / "a.npz"
    nz.preallocate(path, layout)
    pieces = [[nz.write_rows(path, layout, i, 0, a[:5])] for i, a in enumerate(arrays.values())]
    with pytest.raises(AssertionError):
        nz.seal(path, layout, pieces)
    with pytest.raises(ValueError):
        nz.write_rows(path, layout, 0, 8, arrays["action_type"][:5])
