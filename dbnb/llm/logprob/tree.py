"""The token tree: every tokenisation of every candidate string, built as a walk reaches it.

A candidate of the grammar (a word, an expression) can be produced by many token sequences;
the tree holds them all, one node per partial tokenisation, sharing prefixes. Only token
texts matter here (no model): the tree is built from the model's ``pieces`` (token text ->
token ids, :class:`dbnb.llm.logprob.model.LoadedModel`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

__all__ = ["TokenTree", "build_tree"]


class TokenTree:
    """All tokenisations of the candidates as a token tree (node 0 = root), built on demand.

    A node is one partial tokenisation: its ``token`` (id), ``parent``, ``depth`` (tokens),
    ``text`` (the characters produced so far) and ``word`` (candidate index when ``text`` is a
    complete candidate, else -1). Its children are the tokens the grammar allows next: every
    non-EOG token whose text ``e`` keeps ``text + e`` a prefix of some candidate. They are
    created the first time :meth:`children` is asked, so a pruned walk only materialises the
    part of the (exponentially large, for long candidates) tree that it visits. Parents always
    have smaller indices than their children.
    """

    def __init__(self, candidates: Sequence[str], pieces: dict[str, list[int]], max_piece: int):
        self._trie: dict = {}
        for w in candidates:
            node = self._trie
            for c in w:
                node = node.setdefault(c, {})
            node[""] = True
        self._index = {w: i for i, w in enumerate(candidates)}
        self._pieces = pieces
        self._max_piece = max_piece
        self._ext: dict[int, list[tuple[str, dict]]] = {}
        self._below: dict[str, np.ndarray] = {}
        self._sorted = sorted(self._index)
        self.parent: list[int] = [-1]
        self.token: list[int] = [-1]
        self.depth: list[int] = [0]
        self.text: list[str] = [""]
        self.word: list[int] = [self._index.get("", -1)]
        self._node: list[dict] = [self._trie]
        self._kids: list[list[int] | None] = [None]

    @property
    def size(self) -> int:
        """Nodes materialised so far."""
        return len(self.parent)

    def _extensions(self, cnode: dict) -> list[tuple[str, dict]]:
        """Strings ``e`` (at most ``max_piece`` characters) that stay inside the trie."""
        key = id(cnode)
        out = self._ext.get(key)
        if out is None:
            out = []
            frontier = [("", cnode)]
            while frontier:
                e, node = frontier.pop()
                for c, sub in node.items():
                    if c == "":
                        continue
                    out.append((e + c, sub))
                    if len(e) + 1 < self._max_piece:
                        frontier.append((e + c, sub))
            out = [(e, sub) for e, sub in sorted(out, key=lambda a: a[0], reverse=True)
                   if e in self._pieces]
            self._ext[key] = out
        return out

    def children(self, n: int) -> list[int]:
        """Child nodes of ``n`` (created on the first call)."""
        kids = self._kids[n]
        if kids is None:
            kids = []
            text = self.text[n]
            for e, sub in self._extensions(self._node[n]):
                t2 = text + e
                for tok in self._pieces[e]:
                    kids.append(self.size)
                    self.parent.append(n)
                    self.token.append(tok)
                    self.depth.append(self.depth[n] + 1)
                    self.text.append(t2)
                    self.word.append(self._index[t2] if "" in sub else -1)
                    self._node.append(sub)
                    self._kids.append(None)
            self._kids[n] = kids
        return kids

    def path(self, n: int) -> list[int]:
        """The token ids from the root to node ``n`` (``[]`` for the root)."""
        toks = []
        while n > 0:
            toks.append(self.token[n])
            n = self.parent[n]
        return toks[::-1]

    def completions(self, text: str) -> np.ndarray:
        """Indices of the candidates that start with ``text``."""
        out = self._below.get(text)
        if out is None:
            lo = bisect.bisect_left(self._sorted, text)
            hi = lo
            while hi < len(self._sorted) and self._sorted[hi].startswith(text):
                hi += 1
            out = np.array([self._index[w] for w in self._sorted[lo:hi]], dtype=np.int64)
            self._below[text] = out
        return out

    def expand_all(self) -> TokenTree:
        """Materialise the whole tree (small candidate sets only)."""
        n = 0
        while n < self.size:
            self.children(n)
            n += 1
        return self


def build_tree(words: Sequence[str], pieces: dict[str, list[int]], max_piece: int) -> TokenTree:
    """The complete token tree of ``words`` (every tokenisation of every candidate)."""
    return TokenTree(words, pieces, max_piece).expand_all()

