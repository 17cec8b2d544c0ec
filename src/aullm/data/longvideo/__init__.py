"""Ground truth of long videos for spotting (docs/datasets.md, Long videos): CAS(ME)², SAMM Long Videos, SynME
long and plain truth CSVs, read into one table by `read_truth`."""

from aullm.data.longvideo.read import read_truth
from aullm.data.longvideo.truth import COLUMNS, KINDS

__all__ = ["COLUMNS", "KINDS", "read_truth"]
