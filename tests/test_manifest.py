"""The prepared-data contract: clear errors for missing or empty splits, Utterance rows round-trip."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kidsasr.manifest import Utterance, load_split


def test_missing_and_empty_splits_are_clear_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no parquet shards for split 'dev'"):
        load_split(tmp_path, "dev")
    (tmp_path / "dataset" / "dev").mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), tmp_path / "dataset" / "dev" / "data-0.parquet")
    with pytest.raises(ValueError, match="split 'dev' is empty"):
        load_split(tmp_path, "dev")


def test_utterance_rows_round_trip_and_ignore_extra_columns():
    utt = Utterance("EP_0001", "EP", "train", "a.wav", 1.0, 2.5, "3개", "세 개", "(3개)/(세 개)", speaker_role="child")
    row = utt.to_row() | {"audio": {"bytes": b"", "path": None}, "snr_db": 20.0}
    assert Utterance.from_row(row) == utt and utt.duration == 1.5
