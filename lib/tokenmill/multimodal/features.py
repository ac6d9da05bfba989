"""Reading what `audio_features` wrote: spectrograms as a fixed-shape tensor column, or numpy arrays.

The stage writes each spectrogram as little-endian float32 bytes, `n_mels` x `n_frames` mel-major (one
Parquet value per clip: an array column of 240,000 floats per 30 s clip cost the JVM a write per float)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_tensor(table: pa.Table, column: str = "mel") -> pa.Table:
    """``table`` with its spectrograms as Arrow's fixed-shape tensor (n_mels, n_frames) when every row has the
    same shape (`frames: N` in the stage); otherwise unchanged (use `mel_arrays`)."""
    mels, frames = pc.unique(table.column("n_mels")), pc.unique(table.column("n_frames"))
    if table.num_rows == 0 or len(mels) != 1 or len(frames) != 1 or table.column(column).null_count:
        return table
    shape = [mels[0].as_py(), frames[0].as_py()]
    blobs = table.column(column).combine_chunks()
    values = np.frombuffer(b"".join(blobs.to_pylist()), dtype="<f4")
    storage = pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), shape[0] * shape[1])
    tensor = pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), shape), storage)
    return table.set_column(table.schema.get_field_index(column), column, tensor)


def read_features(path: str, columns: list[str] | None = None, filesystem=None) -> pa.Table:
    """The Parquet output of an `audio_features` run (its `data` folder) as an Arrow table, spectrograms as
    a fixed-shape tensor column when their shape is fixed."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns, filesystem=filesystem)
    if "mel" in table.column_names and {"n_mels", "n_frames"} <= set(table.column_names):
        table = as_tensor(table)
    return table


def mel_array(blob: bytes, n_mels: int, n_frames: int) -> np.ndarray:
    """One written spectrogram as a float32 (n_mels, n_frames) array."""
    return np.frombuffer(blob, dtype="<f4").reshape(n_mels, n_frames)


def mel_arrays(table: pa.Table, column: str = "mel") -> list[np.ndarray]:
    """Each row's spectrogram as a float32 (n_mels, n_frames) numpy array (shapes may differ)."""
    return [mel_array(b, n, f) for b, n, f in zip(table.column(column).to_pylist(), table.column("n_mels").to_pylist(),
                                                 table.column("n_frames").to_pylist(), strict=True)]
