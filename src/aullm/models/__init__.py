"""Models: AU-LLM and its parts (LED, 3D-CNN + SE backbone, projectors), the registry, and the shared base.

Model files are imported lazily by the registry, so importing `aullm.models` stays cheap.
"""

from aullm.models.base import AUModel, ModelOutput
from aullm.models.registry import build_model, list_models, model_needs_llm, register_model

__all__ = ["AUModel", "ModelOutput", "build_model", "list_models", "model_needs_llm", "register_model"]
