"""LLM-driven agents: prompts, reply parsing and counting (pure), and the runner.

base      the Agent protocol, a parsed reply, reply parameters, the one records-to-counts loop
word      the conditioned-word agent of the Letter (states: words whose letters sum to 100)
symbolic  the symbolic-regression agent (states: fitting expressions), a package by concern
run       a schedule (:mod:`dbnb.schedules`) drained over an LLM into a response store
"""

from . import word

__all__ = ["word"]
