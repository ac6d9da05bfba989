"""Reading what `audio_features` wrote: spectrograms as a fixed-shape tensor column, or numpy arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_tensor(table: pa.Table, column: str = "mel") -> pa.Table:
    """``table`` with its flattened spectrograms as Arrow's fixed-shape tensor (n_mels, n_frames) when every
    row has the same shape (`frames: N` in the stage); otherwise unchanged (use `mel_arrays`)."""
    mels, frames = pc.unique(table.column("n_mels")), pc.unique(table.column("n_frames"))
    if table.num_rows == 0 or len(mels) != 1 or len(frames) != 1:
        return table
    shape = [mels[0].as_py(), frames[0].as_py()]
    flat = table.column(column).combine_chunks()
    storage = pa.FixedSizeListArray.from_arrays(flat.flatten(), shape[0] * shape[1])
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


def mel_arrays(table: pa.Table, column: str = "mel") -> list[np.ndarray]:
    """Each row's spectrogram as a float32 (n_mels, n_frames) numpy array (shapes may differ)."""
    flat = table.column(column).to_pylist()
    return [np.asarray(m, np.float32).reshape(n, f) for m, n, f in
            zip(flat, table.column("n_mels").to_pylist(), table.column("n_frames").to_pylist(), strict=True)]
