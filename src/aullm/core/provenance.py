"""Which models are reconstructions rather than reimplementations of published code, and the note that says so.

Kept free of heavy imports so scoring and reporting can label such runs without loading a model.
"""

from __future__ import annotations

from typing import Optional

AULLMPP_NOTE = (
    "AULLM++ here is our reconstruction from the paper's abstract and framework figure (no public code or method "
    "text); its numbers are those of the reconstruction, not of the published model"
)

# model.name -> why its numbers must not be read as the published method's.
RECONSTRUCTIONS: dict[str, str] = {"aullmpp": AULLMPP_NOTE}


def reconstruction_note(model_name: Optional[str]) -> Optional[str]:
    """The reconstruction note for `model_name`, or None for models that follow published code or text."""
    return RECONSTRUCTIONS.get(model_name or "")
