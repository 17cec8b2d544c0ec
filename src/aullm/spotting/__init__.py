"""Spotting: where in a long video the micro- and macro-expressions are, without training (docs/spotting.md)."""
