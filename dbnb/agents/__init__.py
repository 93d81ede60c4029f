"""LLM-driven agents: the pure parts (prompts, reply parsing, schedules, counting).

word    the conditioned-word agent of the Letter (states: words whose letters sum to 100)
"""

from . import word

__all__ = ["word"]
