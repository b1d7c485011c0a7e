"""Embeddings for the QPU routes: found once per solver graph and K, cached, packed side by side.

A *slot* is one embedding of the problem's source graph (for qfsel's dense
problems: the complete graph ``K_K``) onto the QPU's working graph. Slots are
found one after the other on the qubits the previous ones left free, so the
slots of a solver are pairwise disjoint and ``n`` problems can share one QPU
job (one programming cycle) by taking ``n`` slots. How many slots fit is the
route's per-job capacity for that solver and ``K`` (:func:`capacity`).

* ``method="clique"`` (route ``"dwave-clique"``): minorminer's busclique
  clique embeddings (even chain lengths), as ``DWaveCliqueSampler`` uses, on
  Chimera and Pegasus graphs. On Zephyr graphs the heuristic below is used:
  busclique aborted the process (``std::bad_alloc``) on Zephyr graphs with
  minorminer 0.2.22 and dwave-graphs 1.2.0, the versions this was tested with.
* ``method="heuristic"`` (route ``"dwave"``): ``minorminer.find_embedding``,
  as ``EmbeddingComposite`` uses, seeded for reproducibility.

The cache lives for the process (keyed by a SHA-256 fingerprint of the working
graph: topology, qubits and couplers, so a change in yield is a new key) and,
with ``cache_dir``, on disk as one JSON file per key. Embeddings read from disk
are checked against the current graph before use.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EmbeddingCache", "graph_fingerprint", "capacity", "default_cache"]


def graph_fingerprint(graph: Any) -> str:
    """SHA-256 of a working graph's topology, qubits and couplers (first 24 hex digits)."""
    topo = {k: graph.graph.get(k) for k in ("family", "rows", "columns", "tile") if k in graph.graph}
    h = hashlib.sha256()
    h.update(json.dumps(topo, sort_keys=True, default=str).encode())
    nodes = np.sort(np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes()))
    edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    edges.sort(axis=1)
    edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))]
    h.update(nodes.tobytes())
    h.update(edges.tobytes())
    return h.hexdigest()[:24]


def _source_digest(num_variables: int, edges: frozenset[tuple[int, int]]) -> str:
    complete = len(edges) == num_variables * (num_variables - 1) // 2
    if complete:
        return "complete"
    return hashlib.sha256(json.dumps(sorted(edges)).encode()).hexdigest()[:16]


@dataclass
class _Entry:
    slots: list[dict[int, tuple[int, ...]]] = field(default_factory=list)
    full: bool = False  # no further slot fits


class EmbeddingCache:
    """Process-wide cache of packed embeddings, optionally mirrored on disk."""

    def __init__(self) -> None:
        self._mem: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        #: number of embeddings searched for (found or not) since creation -- for tests and reports
        self.searches = 0

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()

    @staticmethod
    def key(fingerprint: str, method: str, num_variables: int, edges: frozenset[tuple[int, int]]) -> str:
        return f"{fingerprint}-{method}-K{num_variables}-{_source_digest(num_variables, edges)}"

    def slots(
        self,
        graph: Any,
        num_variables: int,
        edges: frozenset[tuple[int, int]],
        wanted: int,
        *,
        method: str,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        embedding_parameters: dict[str, Any] | None = None,
    ) -> list[dict[int, tuple[int, ...]]]:
        """At least one and at most ``wanted`` disjoint embeddings (fewer when the graph is full).

        Returns an empty list when not even one embedding was found.
        """
        fp = graph_fingerprint(graph)
        key = self.key(fp, method, num_variables, edges)
        with self._lock:
            entry = self._mem.get(key)
            if entry is None:
                entry = _load(cache_dir, key, graph, num_variables, edges) or _Entry()
                self._mem[key] = entry
            if len(entry.slots) < wanted and not entry.full:
                before = len(entry.slots)
                self._extend(entry, graph, num_variables, edges, wanted, method, seed, embedding_parameters)
                if len(entry.slots) != before or entry.full:
                    _store(cache_dir, key, fp, method, num_variables, entry)
            return list(entry.slots[:wanted])

    def _extend(self, entry, graph, n, edges, wanted, method, seed, params) -> None:
        # One working copy of the graph; each slot's qubits are removed from it as it is placed.
        work = graph.copy()
        work.remove_nodes_from([q for s in entry.slots for chain in s.values() for q in chain])
        while len(entry.slots) < wanted:
            self.searches += 1
            emb = _find(work, n, edges, method, seed + len(entry.slots), params) if work.number_of_nodes() >= n else {}
            if not emb:
                entry.full = True
                return
            entry.slots.append(emb)
            work.remove_nodes_from([q for chain in emb.values() for q in chain])


def _find(sub, n, edges, method, seed, params) -> dict[int, tuple[int, ...]]:
    nx = importlib.import_module("networkx")

    if method == "clique" and sub.graph.get("family") in ("chimera", "pegasus"):
        busclique = importlib.import_module("minorminer.busclique")

        emb = busclique.find_clique_embedding(n, sub, use_cache=False)
    else:
        minorminer = importlib.import_module("minorminer")

        source = nx.Graph()
        source.add_nodes_from(range(n))
        source.add_edges_from(edges)
        kwargs = {"random_seed": seed, "tries": 10, "timeout": 60}
        kwargs.update(params or {})
        emb = minorminer.find_embedding(source, sub, **kwargs)
    if not emb or len(emb) != n:
        return {}
    return {int(v): tuple(int(q) for q in chain) for v, chain in emb.items()}


def _valid(emb: dict[int, tuple[int, ...]], graph: Any, n: int, edges: frozenset[tuple[int, int]]) -> bool:
    from dwave.embedding import is_valid_embedding

    nx = importlib.import_module("networkx")

    source = nx.Graph()
    source.add_nodes_from(range(n))
    source.add_edges_from(edges)
    try:
        return set(emb) == set(range(n)) and bool(is_valid_embedding(emb, source, graph))
    except Exception:  # noqa: BLE001 - a malformed file is just not used
        return False


def _path(cache_dir, key: str) -> str:
    return os.path.join(os.fspath(cache_dir), f"qfsel-embedding-{key}.json")


def _load(cache_dir, key, graph, n, edges) -> _Entry | None:
    if cache_dir is None:
        return None
    try:
        with open(_path(cache_dir, key)) as f:
            data = json.load(f)
        slots = [{int(v): tuple(int(q) for q in c) for v, c in s.items()} for s in data["slots"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    used: set[int] = set()
    for s in slots:
        qubits = {q for c in s.values() for q in c}
        if qubits & used or not _valid(s, graph, n, edges):
            return None
        used |= qubits
    return _Entry(slots, bool(data.get("full", False)))


def _store(cache_dir, key, fp, method, n, entry: _Entry) -> None:
    if cache_dir is None:
        return
    os.makedirs(cache_dir, exist_ok=True)
    data = {"graph": fp, "method": method, "num_variables": n, "full": entry.full,
            "slots": [{str(v): list(c) for v, c in s.items()} for s in entry.slots]}
    tmp = _path(cache_dir, key) + f".{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, _path(cache_dir, key))


#: The process-wide cache every route uses.
default_cache = EmbeddingCache()


def capacity(num_variables: int, qpu: Any, *, route: str = "dwave-clique", cache_dir: str | os.PathLike | None = None,
             limit: int = 10_000, seed: int = 0) -> int:
    """How many dense problems of ``num_variables`` variables fit in one QPU job on ``qpu``.

    Args:
        num_variables: ``K``.
        qpu: a structured sampler (``DWaveSampler``, ``MockDWaveSampler``).
        route: ``"dwave-clique"`` (clique embeddings) or ``"dwave"`` (minorminer heuristic).
        cache_dir: directory of the on-disk embedding cache (``None``: process only).
        limit: stop counting at this many.
        seed: minorminer's seed for the heuristic route.
    """
    from ..._checks import check_positive_int

    n = check_positive_int("num_variables", num_variables)
    if route not in ("dwave", "dwave-clique"):
        raise ValueError(f"route: expected 'dwave' or 'dwave-clique', got {route!r}")
    method = "clique" if route == "dwave-clique" else "heuristic"
    limit = check_positive_int("limit", limit)
    graph = qpu.to_networkx_graph()
    if n > graph.number_of_nodes():  # cannot embed; building K_n's edges alone hung for n = 10**6
        return 0
    edges = frozenset((i, j) for i in range(n) for j in range(i + 1, n))
    return len(default_cache.slots(graph, n, edges, limit, method=method, seed=seed, cache_dir=cache_dir))
