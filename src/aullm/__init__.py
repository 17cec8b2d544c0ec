"""aullm: micro-expression Action Unit detection with an LLM as the reasoning engine."""

from aullm.version import __version__

__all__ = ["__version__"]
