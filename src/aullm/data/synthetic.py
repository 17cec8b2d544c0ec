"""Public entry point of SynME (DESIGN §7); the implementation lives in `aullm.data.synme`."""

from aullm.data.synme import SynMEParams, au_region, generate_synme, subject_face, written_with

__all__ = ["SynMEParams", "au_region", "generate_synme", "subject_face", "written_with"]
