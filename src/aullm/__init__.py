"""aullm: micro-expression Action Unit detection with an LLM as the reasoning engine."""

__version__ = "0.1.0"
