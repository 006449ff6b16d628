"""Retrieval with codes: bit packing, Hamming search, Hamming-ball lookup, kNN and precision-recall.

Semantic hashing maps each item to a short binary code and finds similar items by looking at
nearby codes: either by ranking the whole database by Hamming distance (XOR + popcount on
packed 32-bit words, jit-compiled over the database), or, for codes short enough to be memory
addresses, by looking up every address within Hamming radius ``r`` of the query in a hash table
(:func:`build_hamming_table`, :func:`hamming_ball_lookup`), which costs time independent of the
database size. A short code can shortlist candidates that longer codes or TF-IDF then rerank
(:func:`rerank` for one query's given candidates; :func:`shortlist_rerank` scans short codes and
reranks by long ones for a batch of queries, jit-compiled). Codes are trained for hashing by
:func:`noisy_code_loss`. Retrieval is scored with the labels: a retrieved item is relevant when it
shares the query's label (:func:`evaluate_retrieval`; :func:`shortlist_precision_at_recall` for
shortlists that stop short of the database).

Bit order: bit ``j`` of a code is bit ``j % 32`` (least significant first) of word ``j // 32``,
and of the integer address in a :class:`HammingTable`.

References:
  Salakhutdinov & Hinton, "Semantic hashing", International Journal of Approximate Reasoning
  50(7), 2009.
  Krizhevsky & Hinton, "Using very deep autoencoders for content-based image retrieval",
  ESANN 2011 (a short code shortlists, long codes rerank).
  Charikar, "Similarity estimation techniques from rounding algorithms", STOC 2002 (sign random
  projections, the LSH baseline).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import math
import operator
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.losses import sigmoid_cross_entropy
from jaxae.typing import Array, ArrayLike, Params, PRNGKey
from jaxae.validation import check_array, check_positive_int, is_concrete

__all__ = [
    "HammingTable",
    "RetrievalScores",
    "average_precision",
    "threshold_codes",
    "build_hamming_table",
    "code_binariness",
    "cosine_distance",
    "evaluate_retrieval",
    "evaluate_two_stage",
    "hamming_ball_lookup",
    "hamming_ball_precision_recall",
    "hamming_distance",
    "nearest_neighbors",
    "noisy_code_loss",
    "pack_bits",
    "pairwise_distance",
    "precision_at_k",
    "precision_at_recall",
    "random_hyperplanes",
    "ranked_relevance",
    "rerank",
    "shortlist_precision_at_recall",
    "shortlist_rerank",
    "squared_euclidean_distance",
    "two_stage_distance",
]

_METRICS = ("hamming", "euclidean", "cosine")
_WORD_BITS = 32
_MAX_PROBES = 1 << 22  # addresses one Hamming-ball lookup may enumerate


# --------------------------------------------------------------------------- codes


def threshold_codes(x: ArrayLike, *, threshold: float = 0.5) -> Array:
    """Binary codes ``x > threshold`` as uint8 {0, 1}, same shape as ``x``.

    Use ``threshold=0.5`` for logistic code units and ``threshold=0.0`` for signs (binarised LSA,
    random projections).
    """
    x = jnp.asarray(x)
    check_array(x, "x", rank=2, finite=False)
    if is_concrete(x) and bool(jnp.isnan(x).any()):  # NaN > t is False: a silent 0 bit
        raise ValueError(
            f"x: expected codes without NaN, found {int(jnp.isnan(x).sum())} NaN entries "
            "(a diverged encoder?)"
        )
    return (x > threshold).astype(jnp.uint8)


def code_binariness(activations: ArrayLike, *, margin: float = 0.1) -> float:
    """Fraction of code activations within ``margin`` of 0 or 1: how binary the codes already are.

    Args:
      activations: ``[n, bits]`` logistic code-unit activations in [0, 1].
      margin: an activation counts as binary when ``< margin`` or ``> 1 - margin``.
    """
    activations = np.asarray(activations)
    check_array(activations, "activations", rank=2, floating=True, value_range=(0.0, 1.0))
    if not 0.0 < margin < 0.5:
        raise ValueError(f"margin: expected a value in (0, 0.5), got {margin}")
    return float(np.mean((activations < margin) | (activations > 1.0 - margin)))


def _check_binary(codes, name: str) -> None:
    check_array(codes, name, rank=2, finite=False)
    if np.issubdtype(codes.dtype, jnp.complexfloating):
        raise TypeError(f"{name}: expected binary {{0, 1}} codes, got dtype {codes.dtype}")
    if is_concrete(codes):
        values = np.asarray(codes)
        bad = (values != 0) & (values != 1)
        if bad.any():
            examples = np.unique(values[bad])[:5].tolist()
            raise ValueError(
                f"{name}: expected binary codes with values in {{0, 1}}, found {int(bad.sum())} "
                f"other entries, e.g. {examples}; threshold real codes first "
                "(jaxae.retrieval.threshold_codes)"
            )


def pack_bits(codes: ArrayLike) -> Array:
    """Packs binary codes into uint32 words, 32 bits a word, least significant bit first.

    Args:
      codes: ``[n, bits]`` with values in {0, 1} (bool, integer or float dtype). Values are
        checked when ``codes`` is concrete (not under ``jit``).

    Returns:
      uint32 ``[n, ceil(bits / 32)]``; bit ``j`` of a code is bit ``j % 32`` of word ``j // 32``,
      and the unused high bits of the last word are 0.

    Raises:
      ValueError: ``codes`` is not rank 2 or has a value other than 0 and 1.
    """
    if is_concrete(codes):
        codes = np.asarray(codes)  # checked as given: float32 would show 0.7 as 0.699999988
    _check_binary(codes, "codes")
    return _pack(jnp.asarray(codes))


@jax.jit
def _pack(codes: Array) -> Array:
    n, bits = codes.shape
    n_words = -(-bits // _WORD_BITS)
    padded = jnp.zeros((n, n_words * _WORD_BITS), jnp.uint32).at[:, :bits].set(codes != 0)
    weights = jnp.left_shift(jnp.uint32(1), jnp.arange(_WORD_BITS, dtype=jnp.uint32))
    # Each bit has its own place value, so the sum is a bitwise OR and cannot overflow.
    words = padded.reshape(n, n_words, _WORD_BITS) * weights[None, None, :]
    return jnp.sum(words, axis=-1, dtype=jnp.uint32)


def random_hyperplanes(key: PRNGKey, n_features: int, n_bits: int) -> Array:
    """Gaussian random directions for sign-random-projection LSH: float32 ``[n_features, n_bits]``.

    ``threshold_codes(x @ planes, threshold=0.0)`` gives codes whose Hamming distances estimate the
    angle between the vectors (Charikar 2002): the LSH baseline of semantic hashing.
    """
    check_positive_int(n_features, "n_features")
    check_positive_int(n_bits, "n_bits")
    return jax.random.normal(key, (n_features, n_bits), jnp.float32)


# --------------------------------------------------------------------------- distances


def _check_pair(queries, database, query_name: str, database_name: str) -> None:
    check_array(queries, query_name, rank=2, finite=False)
    check_array(database, database_name, rank=2, finite=False)
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"{query_name} and {database_name}: expected the same code length, got "
            f"{queries.shape[1]} and {database.shape[1]}"
        )


def hamming_distance(query_words: ArrayLike, database_words: ArrayLike) -> Array:
    """Hamming distances between packed codes, by XOR and population count.

    Args:
      query_words: uint32 ``[q, words]`` from :func:`pack_bits`.
      database_words: uint32 ``[n, words]``.

    Returns:
      int32 ``[q, n]``: the number of differing bits between each query and database code.
    """
    query_words = jnp.asarray(query_words)
    database_words = jnp.asarray(database_words)
    _check_pair(query_words, database_words, "query_words", "database_words")
    for name, words in (("query_words", query_words), ("database_words", database_words)):
        if words.dtype != jnp.uint32:
            raise TypeError(f"{name}: expected uint32 words from pack_bits, got {words.dtype}")
    differing = query_words[:, None, :] ^ database_words[None, :, :]
    return jnp.sum(jax.lax.population_count(differing).astype(jnp.int32), axis=-1)


def squared_euclidean_distance(queries: ArrayLike, database: ArrayLike) -> Array:
    """Squared Euclidean distances ``|q - x|^2``: ``[q, n]`` from ``[q, d]`` and ``[n, d]``."""
    queries = jnp.asarray(queries)
    database = jnp.asarray(database)
    _check_pair(queries, database, "queries", "database")
    q_sq = jnp.sum(queries**2, axis=1)
    x_sq = jnp.sum(database**2, axis=1)
    cross = queries @ database.T
    # The expanded form can dip below 0 by rounding when q == x.
    return jnp.maximum(q_sq[:, None] + x_sq[None, :] - 2.0 * cross, 0.0)


def cosine_distance(queries: ArrayLike, database: ArrayLike) -> Array:
    """Cosine distances ``1 - cos(q, x)``: float ``[q, n]`` from ``[q, d]`` and ``[n, d]``.

    A zero vector has cosine 0 with everything (distance 1).
    """
    queries = jnp.asarray(queries)
    database = jnp.asarray(database)
    _check_pair(queries, database, "queries", "database")
    tiny = jnp.finfo(jnp.result_type(queries.dtype, jnp.float32)).tiny

    def unit(v):
        return v / jnp.maximum(jnp.linalg.norm(v, axis=1, keepdims=True), tiny)

    return 1.0 - unit(queries) @ unit(database).T


def pairwise_distance(queries: ArrayLike, database: ArrayLike, *, metric: str) -> Array:
    """Distances ``[q, n]`` by ``metric``: ``"hamming"`` (packed uint32 words), ``"euclidean"``
    (squared) or ``"cosine"``."""
    if metric == "hamming":
        return hamming_distance(queries, database)
    if metric == "euclidean":
        return squared_euclidean_distance(queries, database)
    if metric == "cosine":
        return cosine_distance(queries, database)
    raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {metric!r}")


def _query_batches(queries: np.ndarray, batch_size: int):
    """Yields (padded batch, number of real rows): every batch has ``batch_size`` rows, so a
    jitted function of the batch compiles once."""
    for start in range(0, queries.shape[0], batch_size):
        batch = queries[start : start + batch_size]
        real = batch.shape[0]
        if real < batch_size:
            pad = np.repeat(batch[:1], batch_size - real, axis=0)
            batch = np.concatenate([batch, pad])
        yield batch, real


@functools.partial(jax.jit, static_argnames=("k", "metric"))
def _nearest(queries, database, *, k, metric):
    distances = pairwise_distance(queries, database, metric=metric)
    # top_k of the negated distance; ties go to the lower database index.
    neg, ids = jax.lax.top_k(-distances.astype(jnp.float32), k)
    return ids.astype(jnp.int32), -neg


def nearest_neighbors(
    queries: ArrayLike,
    database: ArrayLike,
    *,
    k: int,
    metric: str = "euclidean",
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database items of each query by brute force, in batches of queries.

    Args:
      queries: ``[q, d]`` real codes, or uint32 ``[q, words]`` for ``metric="hamming"``.
      database: ``[n, d]`` (or ``[n, words]``).
      k: neighbours per query, at most ``n``.
      metric: ``"euclidean"``, ``"cosine"`` or ``"hamming"``.
      batch_size: queries per jitted call (bounds the ``[batch, n]`` distance matrix).

    Returns:
      ``(ids, distances)``: int32 ``[q, k]`` database indices, nearest first (ties: lower index
      first), and float32 ``[q, k]`` distances (squared for euclidean).
    """
    queries, database = np.asarray(queries), np.asarray(database)
    _check_pair(queries, database, "queries", "database")
    # NaN codes (a diverged encoder) would rank in an arbitrary order: refuse them here.
    check_array(queries, "queries")
    check_array(database, "database")
    check_positive_int(k, "k")
    check_positive_int(batch_size, "batch_size")
    if k > database.shape[0]:
        raise ValueError(f"k: expected at most the database size {database.shape[0]}, got {k}")
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {metric!r}")
    database = jnp.asarray(database)
    ids, dists = [], []
    for batch, real in _query_batches(queries, batch_size):
        i, d = _nearest(jnp.asarray(batch), database, k=k, metric=metric)
        ids.append(np.asarray(i)[:real])
        dists.append(np.asarray(d)[:real])
    return np.concatenate(ids), np.concatenate(dists)


# One byte's population count, for Hamming distances on the host.
_BYTE_POPCOUNT = np.array([bin(byte).count("1") for byte in range(256)], np.uint8)


def _host_distances(query: np.ndarray, rows: np.ndarray, *, metric: str) -> np.ndarray:
    """:func:`pairwise_distance` of one query on the host: ``[m]`` from ``[d]`` and ``[m, d]``.

    A host loop over queries reranks shortlists of a new length ``m`` nearly every time; the
    jnp functions would compile for each length (about 0.3 s a shape on CPU), NumPy does not.
    """
    if metric == "hamming":
        differing = np.ascontiguousarray(rows ^ query[None, :])
        return _BYTE_POPCOUNT[differing.view(np.uint8)].sum(axis=1, dtype=np.int32)
    if metric == "euclidean":
        diff = rows - query[None, :]
        return np.einsum("md,md->m", diff, diff)
    tiny = np.finfo(np.result_type(query.dtype, np.float32)).tiny
    norms = np.maximum(np.linalg.norm(rows, axis=1), tiny) * max(np.linalg.norm(query), tiny)
    return 1.0 - (rows @ query) / norms


def rerank(
    query: ArrayLike, database: ArrayLike, candidates: ArrayLike, *, metric: str
) -> np.ndarray:
    """Orders a shortlist by distance to the query under a (finer) code: hash, then rerank.

    E.g. shortlist with :func:`hamming_ball_lookup` on 28-bit codes, then rerank by 256-bit
    Hamming distance (Krizhevsky & Hinton 2011) or by TF-IDF cosine distance. Runs on the host
    (NumPy), so that a loop over queries with shortlists of every length compiles nothing; the
    distances are :func:`pairwise_distance`'s (cosine and squared Euclidean up to rounding).

    Args:
      query: ``[d]`` (uint32 ``[words]`` for ``metric="hamming"``).
      database: ``[n, d]`` codes of the whole database.
      candidates: int ``[m]`` database indices.
      metric: ``"hamming"``, ``"euclidean"`` or ``"cosine"``.

    Returns:
      int64 ``[m]``: ``candidates`` nearest first (ties keep their order in ``candidates``).
    """
    query, database = np.asarray(query), np.asarray(database)
    candidates = np.asarray(candidates)
    check_array(query, "query", rank=1, finite=False)
    _check_pair(query[None, :], database, "query", "database")
    check_array(candidates, "candidates", rank=1, nonempty=False)
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {metric!r}")
    if metric == "hamming":
        for name, words in (("query", query), ("database", database)):
            if words.dtype != np.uint32:
                raise TypeError(f"{name}: expected uint32 words from pack_bits, got {words.dtype}")
    if candidates.size == 0:
        return candidates.astype(np.int64)
    if not np.issubdtype(candidates.dtype, np.integer):
        raise TypeError(f"candidates: expected integer indices, got {candidates.dtype}")
    if candidates.min() < 0 or candidates.max() >= database.shape[0]:
        raise ValueError(
            f"candidates: expected indices in [0, {database.shape[0]}), got values in "
            f"[{candidates.min()}, {candidates.max()}]"
        )
    distances = _host_distances(query, database[candidates], metric=metric)
    if not np.all(np.isfinite(distances)):  # from NaN/inf codes: they would rank arbitrarily
        bad = candidates[~np.isfinite(distances)][:5].tolist()
        raise ValueError(
            f"query and database: expected finite codes, got non-finite distances to candidates "
            f"{bad} (NaN or inf in the query or in those database rows)"
        )
    return candidates[np.argsort(distances, kind="stable")].astype(np.int64)


# --------------------------------------------------------------------------- two-stage search


def _check_two_stage(short_bits: int, shortlist: int, k: int, q_short, db_short) -> None:
    """``k``, ``shortlist`` and ``short_bits`` against the packed short codes: a short code
    with a set bit past ``short_bits`` would have distances the shortlist's count cannot hold."""
    n = len(db_short)
    if not 1 <= k <= shortlist <= n:
        raise ValueError(f"expected 1 <= k ({k}) <= shortlist ({shortlist}) <= database ({n})")
    check_positive_int(short_bits, "short_bits")
    words = db_short.shape[1]
    if not _WORD_BITS * (words - 1) < short_bits <= _WORD_BITS * words:
        raise ValueError(
            f"short_bits: {words} packed words hold codes of {_WORD_BITS * (words - 1) + 1} to "
            f"{_WORD_BITS * words} bits, got short_bits={short_bits}"
        )
    spare = short_bits - _WORD_BITS * (words - 1)  # bits used in the last word
    if spare < _WORD_BITS:
        for name, codes in (("query_short", q_short), ("database_short", db_short)):
            if codes.size and int(np.bitwise_or.reduce(codes[:, -1])) >> spare:
                raise ValueError(
                    f"{name}: a code has a bit set past short_bits={short_bits}; pass the "
                    "short codes' length (pack_bits of [n, short_bits] codes)"
                )


def _check_words(short, long, short_name: str, long_name: str) -> None:
    for name, words in ((short_name, short), (long_name, long)):
        check_array(words, name, rank=2, finite=False)
        if words.dtype != np.uint32:
            raise TypeError(f"{name}: expected uint32 words from pack_bits, got {words.dtype}")
    if short.shape[0] != long.shape[0]:
        raise ValueError(
            f"{short_name} and {long_name}: expected one row per item in both, got "
            f"{short.shape[0]} and {long.shape[0]}"
        )


def _shortlist_mask(d_short: Array, *, short_bits: int, shortlist: int) -> Array:
    """bool ``[q, n]``: the ``shortlist`` items nearest each query by ``d_short``, ties to the
    lower index, found by counting (distances are integers in [0, short_bits]) instead of a
    sort."""
    counts = jax.vmap(lambda row: jnp.bincount(row, length=short_bits + 1))(d_short)
    at_most = jnp.cumsum(counts, axis=1)  # [q, short_bits + 1]: items within distance d
    cut = jnp.argmax(at_most >= shortlist, axis=1)  # the distance where the shortlist fills
    below = jnp.where(
        cut > 0, jnp.take_along_axis(at_most, jnp.maximum(cut - 1, 0)[:, None], 1)[:, 0], 0
    )
    at_cut = d_short == cut[:, None]
    room = (shortlist - below)[:, None]  # shortlist places left for items at distance ``cut``
    return (d_short < cut[:, None]) | (at_cut & (jnp.cumsum(at_cut, axis=1) <= room))


@functools.partial(jax.jit, static_argnames=("short_bits", "shortlist", "k"))
def _shortlist_rerank(q_short, q_long, db_short, db_long, *, short_bits, shortlist, k):
    d_short = hamming_distance(q_short, db_short)  # [b, n]
    mask = _shortlist_mask(d_short, short_bits=short_bits, shortlist=shortlist)
    candidates = jax.vmap(lambda m: jnp.nonzero(m, size=shortlist)[0])(mask)  # by index
    d_short_c = jnp.take_along_axis(d_short, candidates, axis=1)
    differing = q_long[:, None, :] ^ db_long[candidates]  # [b, shortlist, words]: only these
    d_long = jnp.sum(jax.lax.population_count(differing).astype(jnp.int32), axis=-1)
    # Rerank by long distance, ties by short distance, then index (top_k: lower position first).
    # float32 (exact for these small integers): XLA's CPU top_k is fast for floats.
    _, order = jax.lax.top_k(-(d_long * (short_bits + 1) + d_short_c).astype(jnp.float32), k)
    return jnp.take_along_axis(candidates, order, axis=1)


def shortlist_rerank(
    query_short: ArrayLike,
    query_long: ArrayLike,
    database_short: ArrayLike,
    database_long: ArrayLike,
    *,
    short_bits: int,
    shortlist: int,
    k: int,
    batch_size: int = 256,
) -> np.ndarray:
    """The ``k`` best database items per query: shortlist by short codes, rerank by long codes.

    Krizhevsky & Hinton (2011) shortlist with 28-bit codes and rerank the shortlist with 256-bit
    codes. Here the shortlist is the ``shortlist`` nearest items by short-code Hamming distance
    (a jit-compiled XOR + popcount scan; ties to the lower index), reordered by long-code
    Hamming distance (ties: short-code distance, then index), computed for the shortlist only.
    For one query's candidates from a :func:`hamming_ball_lookup`, use :func:`rerank`.

    Args:
      query_short: uint32 ``[q, w_s]`` packed short codes of the queries.
      database_short: uint32 ``[n, w_s]`` packed short codes of the database.
      query_long: uint32 ``[q, w_l]`` packed long codes of the queries.
      database_long: uint32 ``[n, w_l]`` packed long codes of the database.
      short_bits: bits in the short code (the largest short-code distance).
      shortlist: candidates kept per query, ``k <= shortlist <= n``.
      k: items returned per query.
      batch_size: queries per jitted call (the last batch is padded: one compilation).

    Returns:
      int32 ``[q, k]`` distinct database indices per query, best first.
    """
    q_short, q_long = np.asarray(query_short), np.asarray(query_long)
    db_short, db_long = np.asarray(database_short), np.asarray(database_long)
    _check_words(q_short, q_long, "query_short", "query_long")
    _check_words(db_short, db_long, "database_short", "database_long")
    _check_pair(q_short, db_short, "query_short", "database_short")
    _check_pair(q_long, db_long, "query_long", "database_long")
    _check_two_stage(short_bits, shortlist, k, q_short, db_short)
    check_positive_int(batch_size, "batch_size")
    db_short, db_long = jnp.asarray(db_short), jnp.asarray(db_long)
    out = []
    for (qs, real), (ql, _) in zip(
        _query_batches(q_short, batch_size), _query_batches(q_long, batch_size), strict=True
    ):
        ids = _shortlist_rerank(
            jnp.asarray(qs), jnp.asarray(ql), db_short, db_long,
            short_bits=short_bits, shortlist=shortlist, k=k,
        )  # fmt: skip
        out.append(np.asarray(ids)[:real])
    return np.concatenate(out)


def two_stage_distance(
    query_short: ArrayLike,
    query_long: ArrayLike,
    database_short: ArrayLike,
    database_long: ArrayLike,
    *,
    short_bits: int,
    shortlist: int,
) -> Array:
    """A distance whose stable ranking is :func:`shortlist_rerank`'s ranking of the database.

    Items in each query's shortlist come first, ordered by (long distance, short distance,
    index); the rest follow in (short distance, index) order, as if the search went on past the
    shortlist by the short codes (what a mean average precision over the whole database needs).

    Args:
      query_short: as for :func:`shortlist_rerank`.
      query_long: as for :func:`shortlist_rerank`.
      database_short: as for :func:`shortlist_rerank`.
      database_long: as for :func:`shortlist_rerank`.
      short_bits: bits in the short code.
      shortlist: candidates reranked per query.

    Returns:
      int32 ``[q, n]``.
    """
    d_short = hamming_distance(query_short, database_short)
    d_long = hamming_distance(query_long, database_long)
    in_shortlist = _shortlist_mask(d_short, short_bits=short_bits, shortlist=shortlist)
    beyond = (_WORD_BITS * jnp.shape(query_long)[1] + 1) * (short_bits + 1)  # above any kept key
    return jnp.where(in_shortlist, d_long * (short_bits + 1), beyond) + d_short


_two_stage_distances = jax.jit(two_stage_distance, static_argnames=("short_bits", "shortlist"))


# --------------------------------------------------------------------------- Hamming-ball lookup


@dataclasses.dataclass(frozen=True, eq=False)
class HammingTable:
    """A hash table from binary addresses to the database items stored there.

    Attributes:
      buckets: ``{address: int64 [m] item indices}`` (ascending) for every occupied address.
      n_bits: the address length, at most 64.
      size: the number of items in the table.
    """

    buckets: dict[int, np.ndarray]
    n_bits: int
    size: int


def _addresses(codes: np.ndarray) -> np.ndarray:
    """uint64 ``[n]`` addresses of binary ``[n, bits]`` codes: bit ``j`` has place value 2**j."""
    place = np.left_shift(np.uint64(1), np.arange(codes.shape[1], dtype=np.uint64))
    return np.bitwise_or.reduce(codes.astype(np.uint64) * place[None, :], axis=1)


def _check_address_codes(codes: np.ndarray, name: str) -> None:
    _check_binary(codes, name)
    if codes.shape[1] > 64:
        raise ValueError(
            f"{name}: addresses have at most 64 bits, got {codes.shape[1]}; use a short code "
            "for the lookup and rerank by the long one"
        )


def build_hamming_table(codes: ArrayLike) -> HammingTable:
    """Stores each item under its binary code, read as an integer address.

    Args:
      codes: binary ``[n, bits]`` codes of the database, ``bits <= 64`` (e.g. 20 or 28).

    Returns:
      A :class:`HammingTable` for :func:`hamming_ball_lookup`.
    """
    codes = np.asarray(codes)
    _check_address_codes(codes, "codes")
    addresses = _addresses(codes)
    order = np.argsort(addresses, kind="stable")
    unique, starts = np.unique(addresses[order], return_index=True)
    groups = np.split(order.astype(np.int64), starts[1:])
    buckets = dict(zip(unique.tolist(), groups, strict=True))
    return HammingTable(buckets=buckets, n_bits=codes.shape[1], size=codes.shape[0])


@functools.lru_cache(maxsize=32)
def _flip_masks(n_bits: int, radius: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """uint64 masks of every bit pattern of weight <= radius, by weight, and their weights."""
    masks, weights = [], []
    for weight in range(radius + 1):
        for positions in itertools.combinations(range(n_bits), weight):
            masks.append(sum(1 << p for p in positions))
            weights.append(weight)
    masks_array = np.array(masks, np.uint64)
    masks_array.flags.writeable = False
    return masks_array, tuple(weights)


def hamming_ball_lookup(
    table: HammingTable, query_code: ArrayLike, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every stored item within Hamming distance ``radius`` of the query's address.

    Enumerates the ``sum_{d <= radius} C(bits, d)`` addresses around the query (at most
    ``2**22``) and looks each up in the table: the cost depends on ``bits``, ``radius`` and the
    number of items found, not on the database size (the semantic-hashing memory lookup).

    Args:
      table: from :func:`build_hamming_table`.
      query_code: binary ``[bits]`` code of the query.
      radius: the largest Hamming distance returned, ``0 <= radius <= bits``.

    Returns:
      ``(ids, distances)``: int64 ``[m]`` item indices and int32 ``[m]`` their Hamming distances,
      ordered by distance, then index.
    """
    query_code = np.asarray(query_code)
    check_array(query_code, "query_code", rank=1, finite=False)
    _check_address_codes(query_code[None, :], "query_code")
    if query_code.shape[0] != table.n_bits:
        raise ValueError(
            f"query_code: expected {table.n_bits} bits (the table's), got {query_code.shape[0]}"
        )
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise ValueError(f"radius: expected an integer, got {radius!r}")
    if not 0 <= radius <= table.n_bits:
        raise ValueError(f"radius: expected 0 <= radius <= {table.n_bits}, got {radius}")
    n_probes = sum(math.comb(table.n_bits, d) for d in range(int(radius) + 1))
    if n_probes > _MAX_PROBES:
        raise ValueError(
            f"radius: a radius-{radius} ball around a {table.n_bits}-bit address has {n_probes} "
            f"addresses, more than {_MAX_PROBES} lookups; use a smaller radius or a shorter code "
            "(or rank by hamming_distance instead)"
        )
    masks, weights = _flip_masks(table.n_bits, int(radius))
    probes = (masks ^ _addresses(query_code[None, :])[0]).tolist()
    # map/compress run the dict probes in C: many times faster than a Python loop over them.
    buckets = list(map(table.buckets.get, probes))
    found = list(map(operator.is_not, buckets, itertools.repeat(None)))
    hits = list(itertools.compress(buckets, found))
    if not hits:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    ids_array = np.concatenate(hits)
    sizes = [bucket.size for bucket in hits]
    distances_array = np.repeat(list(itertools.compress(weights, found)), sizes).astype(np.int32)
    order = np.lexsort((ids_array, distances_array))
    return ids_array[order], distances_array[order]


def hamming_ball_precision_recall(
    table: HammingTable,
    query_codes: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    *,
    radius: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the set each query's Hamming-ball lookup returns.

    Args:
      table: from :func:`build_hamming_table` on the database codes.
      query_codes: binary ``[q, bits]``.
      query_labels: int ``[q]``.
      database_labels: int ``[table.size]``, in the order the table was built from.
      radius: the lookup radius (see :func:`hamming_ball_lookup`).

    Returns:
      ``(precision, recall)``, float64 ``[q]`` each: the fraction of retrieved items sharing the
      query's label (NaN when nothing is retrieved) and the fraction of the items with that label
      that are retrieved (NaN when the database has none).
    """
    query_codes = np.asarray(query_codes)
    query_labels, database_labels = np.asarray(query_labels), np.asarray(database_labels)
    _check_address_codes(query_codes, "query_codes")
    check_array(query_labels, "query_labels", rank=1, last_dim=query_codes.shape[0])
    check_array(database_labels, "database_labels", rank=1, last_dim=table.size)
    label_counts = collections.Counter(database_labels.tolist())
    precision = np.full(len(query_codes), np.nan)
    recall = np.full(len(query_codes), np.nan)
    for i, (code, label) in enumerate(zip(query_codes, query_labels.tolist(), strict=True)):
        ids, _ = hamming_ball_lookup(table, code, radius)
        hits = int(np.count_nonzero(database_labels[ids] == label))
        if ids.size:
            precision[i] = hits / ids.size
        if label_counts[label]:
            recall[i] = hits / label_counts[label]
    return precision, recall


# --------------------------------------------------------------------------- training codes


def noisy_code_loss(
    model,
    params: Params,
    x: ArrayLike,
    noise: ArrayLike,
    *,
    code_activation: Callable[[Array], Array] = jax.nn.sigmoid,
    reconstruction_loss: Callable[[Array, Array], Array] = sigmoid_cross_entropy,
) -> Array:
    """Per-example reconstruction loss with fixed noise added to the code units' inputs.

    ``code = code_activation(model.encode(params, x, logits=True) + noise)``, then
    ``reconstruction_loss(model.decode(params, code, logits=True), x)``. With ``noise`` drawn
    once per training example and kept for every epoch ("deterministic noise"), the decoder can
    only undo it if the logistic code units move into their flat tails, which makes the codes
    nearly binary before :func:`threshold_codes` thresholds them. Unreduced over the batch: take the
    mean (or a weighted sum) for a training loss.

    Args:
      model: anything with ``encode(params, x, *, logits)`` and ``decode(params, z, *, logits)``
        (e.g. :class:`jaxae.MLPAutoencoder` or an unrolled RBM stack).
      params: the model's parameters.
      x: ``[batch, n_in]`` inputs (what the model encodes).
      noise: ``[batch, n_code]`` noise for the code layer's pre-activation.
      code_activation: the code units' nonlinearity (a logistic for binary codes).
      reconstruction_loss: ``(logits, x) -> [batch]``, e.g. :func:`jaxae.sigmoid_cross_entropy`
        for pixels, or a softmax cross-entropy of word distributions for bag-of-words counts.

    Returns:
      ``[batch]`` losses.

    References:
      Salakhutdinov & Hinton, "Semantic hashing", Int. J. Approximate Reasoning 50(7), 2009,
      section 3 (deterministic Gaussian noise on the code units' inputs).
    """
    x, noise = jnp.asarray(x), jnp.asarray(noise)
    pre_code = model.encode(params, x, logits=True)
    if noise.shape != pre_code.shape:
        raise ValueError(
            f"noise: expected shape {tuple(pre_code.shape)} (batch, code units), got "
            f"{tuple(noise.shape)}"
        )
    logits = model.decode(params, code_activation(pre_code + noise), logits=True)
    return reconstruction_loss(logits, x)


# --------------------------------------------------------------------------- evaluation


def ranked_relevance(
    distances: ArrayLike, query_labels: ArrayLike, database_labels: ArrayLike
) -> Array:
    """Ranks the database for each query and marks the items sharing the query's label.

    Args:
      distances: ``[q, n]`` query-to-database distances (smaller is nearer).
      query_labels: int ``[q]``.
      database_labels: int ``[n]``.

    Returns:
      bool ``[q, n]``: entry ``[i, r]`` says whether the item at rank ``r`` (0 = nearest) for
      query ``i`` is relevant. Ties in distance are ranked by database index (a stable sort).
    """
    distances = jnp.asarray(distances)
    query_labels, database_labels = jnp.asarray(query_labels), jnp.asarray(database_labels)
    check_array(distances, "distances", rank=2, finite=False)
    check_array(query_labels, "query_labels", rank=1, last_dim=distances.shape[0])
    check_array(database_labels, "database_labels", rank=1, last_dim=distances.shape[1])
    order = jnp.argsort(distances, axis=1, stable=True)
    return database_labels[order] == query_labels[:, None]


def precision_at_recall(relevance: ArrayLike, recall_levels: ArrayLike) -> Array:
    """Precision at the rank where each recall level is first reached, per query.

    For a query with ``R`` relevant items and a level ``r``, retrieval stops at the first rank
    holding ``m = ceil(r * R)`` relevant items (at least 1); precision is ``m / rank``. This is
    the uninterpolated precision-recall curve, averaged over queries by the caller.

    Args:
      relevance: bool ``[q, n]`` from :func:`ranked_relevance`.
      recall_levels: ``[L]`` in (0, 1].

    Returns:
      float32 ``[q, L]``; NaN for a query with no relevant item.
    """
    relevance = jnp.asarray(relevance)
    recall_levels = jnp.asarray(recall_levels, jnp.float32)
    check_array(relevance, "relevance", rank=2)
    check_array(recall_levels, "recall_levels", rank=1, value_range=(1e-12, 1.0))
    hits = jnp.cumsum(relevance.astype(jnp.int32), axis=1)
    total = hits[:, -1].astype(jnp.float32)
    # 1e-4 absorbs float32 rounding in r * R, e.g. 0.3 * 10 = 3.0000001 must need 3 items.
    needed = jnp.maximum(jnp.ceil(recall_levels[None, :] * total[:, None] - 1e-4), 1.0)
    first = jax.vmap(jnp.searchsorted)(hits, needed.astype(jnp.int32))  # 0-based rank
    precision = needed / (first + 1).astype(jnp.float32)
    return jnp.where(total[:, None] > 0, precision, jnp.nan)


def shortlist_precision_at_recall(
    ranked_ids: Sequence[ArrayLike],
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    recall_levels: ArrayLike,
) -> np.ndarray:
    """Precision at each recall level of ranked shortlists, NaN where a shortlist stops short.

    Each query's shortlist (e.g. a :func:`hamming_ball_lookup` reordered by :func:`rerank`) is
    its whole ranked list: items outside it are never retrieved. As in
    :func:`precision_at_recall`, a query whose label has ``R`` database items needs
    ``m = ceil(r * R)`` (at least 1) relevant items for level ``r``, and its precision there is
    ``m / rank`` of the ``m``-th relevant item; a shortlist holding fewer than ``m`` relevant
    items does not reach the level. On a full ranking of the database the two functions agree.

    Args:
      ranked_ids: ``q`` int arrays ``[m_i]`` of distinct database indices, best first (a
        shortlist may be empty).
      query_labels: int ``[q]``.
      database_labels: int ``[n]``.
      recall_levels: ``[L]`` in (0, 1].

    Returns:
      float32 ``[q, L]``; NaN where the query's shortlist does not reach the level (and for a
      query whose label no database item has). The non-NaN entries of a column are the queries
      that level covers.
    """
    query_labels, database_labels = np.asarray(query_labels), np.asarray(database_labels)
    check_array(query_labels, "query_labels", rank=1, nonempty=False)
    check_array(database_labels, "database_labels", rank=1)
    levels = np.asarray(recall_levels, np.float32)
    check_array(levels, "recall_levels", rank=1, value_range=(1e-12, 1.0))
    if len(ranked_ids) != len(query_labels):
        raise ValueError(
            f"ranked_ids: expected one shortlist per query ({len(query_labels)}), got "
            f"{len(ranked_ids)}"
        )
    lists = [np.asarray(ids) for ids in ranked_ids]
    for i, ids in enumerate(lists):
        check_array(ids, f"ranked_ids[{i}]", rank=1, nonempty=False)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ranked_ids[{i}]: expected integer indices, got {ids.dtype}")
        if np.unique(ids).size != ids.size:  # a repeat would count one relevant item twice
            raise ValueError(
                f"ranked_ids[{i}]: expected distinct database indices, got "
                f"{ids.size - np.unique(ids).size} repeats (merge shortlists with np.unique "
                "or dict.fromkeys, keeping the first occurrence)"
            )
    lengths = np.array([ids.size for ids in lists], np.int64)
    flat = np.concatenate([np.zeros(0, np.int64), *lists]).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= database_labels.shape[0]):
        raise ValueError(
            f"ranked_ids: expected indices in [0, {database_labels.shape[0]}), got values in "
            f"[{flat.min()}, {flat.max()}]"
        )
    labels, counts = np.unique(database_labels, return_counts=True)
    where = np.minimum(np.searchsorted(labels, query_labels), len(labels) - 1)
    total = np.where(labels[where] == query_labels, counts[where], 0).astype(np.float32)
    # One cumulative count of relevant items over all shortlists, end to end: query i's
    # m-th relevant item is where it passes (the count before query i's list) + m.
    relevant = database_labels[flat] == np.repeat(query_labels, lengths)
    hits = np.concatenate([[0], np.cumsum(relevant)])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    before, found = hits[starts], hits[ends] - hits[starts]
    # As in precision_at_recall: 1e-4 absorbs float32 rounding in r * R.
    needed = np.maximum(np.ceil(levels[None, :] * total[:, None] - np.float32(1e-4)), 1.0)
    needed_int = needed.astype(np.int64)
    position = np.searchsorted(hits, before[:, None] + needed_int, side="left")
    rank = (position - starts[:, None]).astype(np.float32)  # 1-based, within the shortlist
    reached = (total[:, None] > 0) & (needed_int <= found[:, None])
    return np.where(reached, needed / rank, np.nan).astype(np.float32)


def precision_at_k(relevance: ArrayLike, ks: Sequence[int]) -> Array:
    """Fraction of relevant items among the top ``k``, per query: float32 ``[q, len(ks)]``.

    Args:
      relevance: bool ``[q, n]`` from :func:`ranked_relevance`.
      ks: static cut-offs, each ``1 <= k <= n``.
    """
    relevance = jnp.asarray(relevance)
    check_array(relevance, "relevance", rank=2)
    ks = tuple(ks)
    for k in ks:
        check_positive_int(k, "ks")
        if k > relevance.shape[1]:
            raise ValueError(f"ks: expected values <= {relevance.shape[1]}, got {k}")
    hits = jnp.cumsum(relevance.astype(jnp.int32), axis=1)
    columns = jnp.asarray([k - 1 for k in ks], jnp.int32)
    return hits[:, columns].astype(jnp.float32) / jnp.asarray(ks, jnp.float32)[None, :]


def average_precision(relevance: ArrayLike) -> Array:
    """Average precision per query: the mean of the precision at each relevant item's rank.

    Args:
      relevance: bool ``[q, n]`` from :func:`ranked_relevance` over the whole database.

    Returns:
      float32 ``[q]``; NaN for a query with no relevant item. Its mean is the mAP.
    """
    relevance = jnp.asarray(relevance)
    check_array(relevance, "relevance", rank=2)
    rel = relevance.astype(jnp.float32)
    ranks = jnp.arange(1, relevance.shape[1] + 1, dtype=jnp.float32)
    precision = jnp.cumsum(rel, axis=1) / ranks[None, :]
    total = rel.sum(axis=1)
    return jnp.where(total > 0, (precision * rel).sum(axis=1) / jnp.maximum(total, 1.0), jnp.nan)


class RetrievalScores(NamedTuple):
    """Per-query retrieval scores from :func:`evaluate_retrieval` (average over axis 0).

    Attributes:
      recall_levels: float32 ``[L]``.
      precision_at_recall: float32 ``[q, L]``.
      ks: int32 ``[K]``.
      precision_at_k: float32 ``[q, K]``.
      average_precision: float32 ``[q]``.
    """

    recall_levels: np.ndarray
    precision_at_recall: np.ndarray
    ks: np.ndarray
    precision_at_k: np.ndarray
    average_precision: np.ndarray


@functools.partial(jax.jit, static_argnames=("metric",))
def _batch_distances(queries, database, *, metric):
    return pairwise_distance(queries, database, metric=metric)


@functools.partial(jax.jit, static_argnames=("ks",))
def _relevance_scores(relevance, recall_levels, *, ks):
    return (
        precision_at_recall(relevance, recall_levels),
        precision_at_k(relevance, ks),
        average_precision(relevance),
    )


_ranked_relevance = jax.jit(ranked_relevance)


def _rank(distances: Array, query_labels: np.ndarray, database_labels: np.ndarray) -> Array:
    """:func:`ranked_relevance` of a batch, sorted where it is fastest.

    On CPU, NumPy's stable sort beats XLA's several times over (a 256 x 60,000 float batch:
    about 1.3 s against 6 s on 2 cores), and small non-negative integer distances (Hamming,
    two-stage) sort as uint16, which NumPy radix-sorts; the rows are split over the cores. On
    an accelerator the sort stays there. Both break ties by database index.
    """
    if {d.platform for d in distances.devices()} != {"cpu"}:
        return _ranked_relevance(distances, query_labels, database_labels)
    distances = np.asarray(distances)
    if np.issubdtype(distances.dtype, np.integer) and distances.size:
        if distances.min() >= 0 and distances.max() < 2**16:
            distances = distances.astype(np.uint16)
    # NumPy's sort releases the GIL: one block of query rows a core.
    n_blocks = min(_host_threads(), max(len(distances), 1))
    blocks = np.array_split(np.arange(len(distances)), n_blocks)
    with concurrent.futures.ThreadPoolExecutor(len(blocks)) as pool:
        orders = pool.map(lambda rows: np.argsort(distances[rows], axis=1, kind="stable"), blocks)
        order = np.concatenate(list(orders))
    return jnp.asarray(database_labels[order] == query_labels[:, None])


def _host_threads() -> int:
    """The cores this process may use (its CPU affinity where the OS says), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _check_scoring(
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    n_queries: int,
    n_database: int,
    recall_levels: Sequence[float],
    ks: Sequence[int],
    batch_size: int,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The scoring arguments shared by the evaluations, checked: ``(levels, ks)``. A query whose
    label no database item has would score NaN and drop silently out of every mean: refused."""
    check_array(query_labels, "query_labels", rank=1, last_dim=n_queries)
    check_array(database_labels, "database_labels", rank=1, last_dim=n_database)
    check_positive_int(batch_size, "batch_size")
    missing = np.setdiff1d(query_labels, database_labels)
    if missing.size:
        raise ValueError(
            f"query_labels: labels {missing[:10].tolist()} never occur in database_labels, so "
            "those queries have no relevant item"
        )
    levels = np.asarray(recall_levels, np.float32)
    check_array(levels, "recall_levels", rank=1, value_range=(1e-12, 1.0))
    for k in ks:
        check_positive_int(k, "ks")
        if k > n_database:
            raise ValueError(f"ks: expected cut-offs <= the database size {n_database}, got {k}")
    return levels, tuple(int(k) for k in ks)


def evaluate_retrieval(
    queries: ArrayLike,
    database: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    *,
    metric: str,
    recall_levels: Sequence[float] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    ks: Sequence[int] = (10, 100),
    batch_size: int = 256,
) -> RetrievalScores:
    """Ranks the whole database for every query and scores the ranking against the labels.

    A retrieved item is relevant when it has the query's label (test queries against the
    training set as database, as in Salakhutdinov & Hinton 2009).

    Args:
      queries: ``[q, d]`` codes (uint32 ``[q, words]`` for ``metric="hamming"``).
      database: ``[n, d]`` codes of the same kind.
      query_labels: int ``[q]``; every label must occur in ``database_labels``.
      database_labels: int ``[n]``.
      metric: ``"hamming"``, ``"euclidean"`` or ``"cosine"``.
      recall_levels: levels in (0, 1] for :func:`precision_at_recall`.
      ks: cut-offs for :func:`precision_at_k`, each at most ``n``.
      batch_size: queries ranked per jitted call (memory ``~ batch_size * n`` per array).

    Returns:
      :class:`RetrievalScores` with one row per query.
    """
    queries, database = np.asarray(queries), np.asarray(database)
    query_labels, database_labels = np.asarray(query_labels), np.asarray(database_labels)
    _check_pair(queries, database, "queries", "database")
    if metric != "hamming":  # NaN distances would rank in an arbitrary order
        check_array(queries, "queries")
        check_array(database, "database")
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {metric!r}")
    levels, ks = _check_scoring(
        query_labels, database_labels, len(queries), len(database), recall_levels, ks, batch_size
    )
    db = jnp.asarray(database)
    parts = []
    labels_batches = _query_batches(query_labels[:, None], batch_size)
    for (batch, real), (label_batch, _) in zip(
        _query_batches(queries, batch_size), labels_batches, strict=True
    ):
        distances = _batch_distances(jnp.asarray(batch), db, metric=metric)
        relevance = _rank(distances, label_batch[:, 0], database_labels)
        out = _relevance_scores(relevance, levels, ks=ks)
        parts.append([np.asarray(o)[:real] for o in out])
    par, pak, ap = (np.concatenate(p) for p in zip(*parts, strict=True))
    return RetrievalScores(levels, par, np.asarray(ks, np.int32), pak, ap)


def evaluate_two_stage(
    query_short: ArrayLike,
    query_long: ArrayLike,
    database_short: ArrayLike,
    database_long: ArrayLike,
    query_labels: ArrayLike,
    database_labels: ArrayLike,
    *,
    short_bits: int,
    shortlist: int,
    recall_levels: Sequence[float] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    ks: Sequence[int] = (10, 100),
    batch_size: int = 256,
) -> RetrievalScores:
    """:func:`evaluate_retrieval` for the shortlist-then-rerank ranking of
    :func:`two_stage_distance` (short codes shortlist, long codes rerank).

    Args:
      query_short: as for :func:`shortlist_rerank`.
      query_long: as for :func:`shortlist_rerank`.
      database_short: as for :func:`shortlist_rerank`.
      database_long: as for :func:`shortlist_rerank`.
      query_labels: int ``[q]``.
      database_labels: int ``[n]``.
      short_bits: bits in the short code.
      shortlist: candidates reranked per query, at most ``n``.
      recall_levels: as for :func:`evaluate_retrieval`.
      ks: as for :func:`evaluate_retrieval`.
      batch_size: as for :func:`evaluate_retrieval`.

    Returns:
      :class:`RetrievalScores` with one row per query.
    """
    q_short, q_long = np.asarray(query_short), np.asarray(query_long)
    db_short, db_long = np.asarray(database_short), np.asarray(database_long)
    _check_words(q_short, q_long, "query_short", "query_long")
    _check_words(db_short, db_long, "database_short", "database_long")
    _check_pair(q_short, db_short, "query_short", "database_short")
    _check_pair(q_long, db_long, "query_long", "database_long")
    _check_two_stage(short_bits, shortlist, 1, q_short, db_short)
    query_labels, database_labels = np.asarray(query_labels), np.asarray(database_labels)
    levels, ks = _check_scoring(
        query_labels, database_labels, len(q_short), len(db_short), recall_levels, ks, batch_size
    )
    dbs, dbl = jnp.asarray(db_short), jnp.asarray(db_long)
    parts = []
    batches = (_query_batches(a, batch_size) for a in (q_short, q_long, query_labels[:, None]))
    for (qs, real), (ql, _), (labels, _) in zip(*batches, strict=True):
        distances = _two_stage_distances(
            jnp.asarray(qs), jnp.asarray(ql), dbs, dbl, short_bits=short_bits, shortlist=shortlist
        )
        relevance = _rank(distances, labels[:, 0], database_labels)
        out = _relevance_scores(relevance, levels, ks=ks)
        parts.append([np.asarray(o)[:real] for o in out])
    par, pak, ap = (np.concatenate(p) for p in zip(*parts, strict=True))
    return RetrievalScores(levels, par, np.asarray(ks, np.int32), pak, ap)
