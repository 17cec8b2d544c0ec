"""Datasets (DESIGN §3): annotation loaders, AU-code parsing, frame decoding, clip sampling, flow, cache.

Data flows one way: `load_index` (sheet → index) → `prepare_dataset` (decode once, cache) → `sample_batch`.
"""

from __future__ import annotations

from aullm.data.aus import AUCode, ParsedAUs, parse_au_string
from aullm.data.cache import PreparedDataset, prepare_dataset
from aullm.data.clips import list_frames, load_frames, sample_batch, sample_indices
from aullm.data.index import DatasetIndex, dataset_stats, load_index

__all__ = [
    "AUCode",
    "DatasetIndex",
    "ParsedAUs",
    "PreparedDataset",
    "dataset_stats",
    "list_frames",
    "load_frames",
    "load_index",
    "parse_au_string",
    "prepare_dataset",
    "sample_batch",
    "sample_indices",
]
