import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import retrieval


def _codes(seed, n, bits):
    return np.random.default_rng(seed).integers(0, 2, (n, bits)).astype(np.uint8)


def _reference_pack(codes):
    """NumPy's own bit packer, little-endian bits and bytes, read as uint32 words."""
    n, bits = codes.shape
    padded = np.zeros((n, -(-bits // 32) * 32), np.uint8)
    padded[:, :bits] = codes
    return np.packbits(padded, axis=1, bitorder="little").view("<u4")


# --------------------------------------------------------------------------- packing, Hamming


@pytest.mark.parametrize("bits", [1, 20, 32, 70, 128])
def test_pack_bits_matches_numpy_packbits(bits):
    codes = _codes(bits, 9, bits)
    expected = _reference_pack(codes)
    got = retrieval.pack_bits(codes)
    assert got.dtype == jnp.uint32 and got.shape == (9, -(-bits // 32))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(jax.jit(retrieval.pack_bits)(codes), expected)
    np.testing.assert_array_equal(retrieval.pack_bits(codes.astype(bool)), expected)
    np.testing.assert_array_equal(retrieval.pack_bits(codes.astype(np.float32)), expected)


def test_pack_bits_places_bit_j_at_word_j_div_32_bit_j_mod_32():
    codes = np.zeros((1, 40), np.uint8)
    codes[0, [0, 31, 33]] = 1
    np.testing.assert_array_equal(retrieval.pack_bits(codes), [[1 + 2**31, 2]])


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        (
            np.array([[0, 1, 2]]),
            r"codes: expected binary codes .* found 1 other entries, e.g. \[2\]",
        ),
        (np.array([[0.0, 0.7]]), r"e.g. \[0.7.*threshold_codes"),
        (np.array([[0, -1]]), r"e.g. \[-1\]"),
        (np.array([0, 1]), "codes: expected rank 2"),
        (np.zeros((0, 4)), "codes: expected a non-empty array"),
    ],
)
def test_pack_bits_refuses_non_binary_codes(codes, match):
    with pytest.raises(ValueError, match=match):
        retrieval.pack_bits(codes)


@pytest.mark.parametrize("bits", [7, 32, 128, 200])
def test_hamming_distance_matches_a_numpy_bit_count(bits):
    queries, database = _codes(1, 6, bits), _codes(2, 50, bits)
    expected = (queries[:, None, :] != database[None, :, :]).sum(axis=-1)
    qw, dw = retrieval.pack_bits(queries), retrieval.pack_bits(database)
    got = jax.jit(retrieval.hamming_distance)(qw, dw)
    assert got.dtype == jnp.int32 and got.shape == (6, 50)
    np.testing.assert_array_equal(got, expected)
    # An independent popcount: NumPy's bit unpacking of the XOR.
    xor = np.asarray(qw)[:, None, :] ^ np.asarray(dw)[None, :, :]
    np.testing.assert_array_equal(got, np.unpackbits(xor.view(np.uint8), axis=-1).sum(-1))


def test_hamming_distance_bad_inputs():
    words = retrieval.pack_bits(_codes(0, 3, 64))
    with pytest.raises(TypeError, match="query_words: expected uint32 words from pack_bits"):
        retrieval.hamming_distance(np.asarray(words).astype(np.int32), words)
    with pytest.raises(ValueError, match="expected the same code length, got 1 and 2"):
        retrieval.hamming_distance(words[:, :1], words)


# --------------------------------------------------------------------------- real distances, kNN


def test_real_distances_match_numpy():
    rng = np.random.default_rng(3)
    q, x = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)
    euclid = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    cos = 1 - (q @ x.T) / np.linalg.norm(q, axis=1)[:, None] / np.linalg.norm(x, axis=1)[None, :]
    sq = jax.jit(retrieval.squared_euclidean_distance)
    np.testing.assert_allclose(sq(q, x), euclid, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(retrieval.cosine_distance)(q, x), cos, atol=1e-6)
    assert float(retrieval.squared_euclidean_distance(q, q).diagonal().min()) >= 0.0
    with pytest.raises(ValueError, match="metric: expected one of hamming, euclidean, cosine"):
        retrieval.pairwise_distance(q, x, metric="manhattan")


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "hamming"])
def test_nearest_neighbors_is_the_brute_force_order(metric):
    rng = np.random.default_rng(4)
    if metric == "hamming":
        q_codes, x_codes = _codes(5, 11, 40), _codes(6, 30, 40)
        queries, database = retrieval.pack_bits(q_codes), retrieval.pack_bits(x_codes)
        full = (q_codes[:, None, :] != x_codes[None, :, :]).sum(-1)
    else:
        queries, database = rng.normal(size=(11, 3)), rng.normal(size=(30, 3))
        full = np.asarray(retrieval.pairwise_distance(queries, database, metric=metric))
    ids, dists = retrieval.nearest_neighbors(queries, database, k=5, metric=metric, batch_size=4)
    assert ids.shape == (11, 5) and ids.dtype == np.int32
    expected = np.argsort(full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(dists, np.take_along_axis(full, expected, 1), rtol=1e-5)
    with pytest.raises(ValueError, match="k: expected at most the database size 30"):
        retrieval.nearest_neighbors(queries, database, k=31, metric=metric)


def test_rerank_orders_a_shortlist_by_the_finer_code():
    database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    got = retrieval.rerank(np.array([1.0, 0.1]), database, np.array([3, 1, 2, 0]), metric="cosine")
    np.testing.assert_array_equal(got, [0, 2, 1, 3])
    long_codes = _codes(7, 20, 64)
    words = retrieval.pack_bits(long_codes)
    shortlist = np.array([5, 9, 2, 17])
    got = retrieval.rerank(words[0], words, shortlist, metric="hamming")
    dist = (long_codes[shortlist] != long_codes[0]).sum(-1)
    np.testing.assert_array_equal(got, shortlist[np.argsort(dist, kind="stable")])
    assert retrieval.rerank(words[0], words, np.zeros(0, int), metric="hamming").size == 0
    with pytest.raises(ValueError, match=r"candidates: expected indices in \[0, 20\)"):
        retrieval.rerank(words[0], words, np.array([20]), metric="hamming")


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "hamming"])
def test_rerank_matches_pairwise_distance_on_the_host_for_every_shortlist_length(metric):
    rng = np.random.default_rng(3)
    if metric == "hamming":
        _, database = _packed(rng, 40, 70)
    else:
        database = rng.normal(size=(40, 6)).astype(np.float32)
    query = database[0] if metric == "hamming" else rng.normal(size=6).astype(np.float32)
    full = np.asarray(retrieval.pairwise_distance(query[None, :], database, metric=metric))[0]
    # NumPy only: a host loop over shortlists of every length must not compile (or transfer)
    # anything per length, which jnp would.
    with jax.transfer_guard("disallow"):
        for m in range(1, 40, 3):
            shortlist = rng.permutation(40)[:m]
            got = retrieval.rerank(query, database, shortlist, metric=metric)
            assert got.dtype == np.int64
            np.testing.assert_allclose(full[got], np.sort(full[shortlist]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="metric: expected one of"):
        retrieval.rerank(query, database, np.array([1]), metric="manhattan")


def test_rerank_refuses_words_that_are_not_uint32():
    words = np.asarray(retrieval.pack_bits(_codes(2, 5, 40)))
    with pytest.raises(TypeError, match="database: expected uint32 words"):
        retrieval.rerank(words[0], words.astype(np.int64), np.array([1, 2]), metric="hamming")
    with pytest.raises(ValueError, match="query and database: expected the same code length"):
        retrieval.rerank(words[0, :1], words, np.array([1, 2]), metric="hamming")


# --------------------------------------------------------------------------- Hamming-ball lookup


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_hamming_ball_lookup_returns_exactly_the_brute_force_set(radius):
    rng = np.random.default_rng(radius)
    centres = _codes(10, 4, 12)
    # Clusters of near-duplicates, so every radius finds several items, some at equal addresses.
    codes = centres[rng.integers(0, 4, 300)] ^ (rng.random((300, 12)) < 0.08).astype(np.uint8)
    table = retrieval.build_hamming_table(codes)
    assert table.size == 300 and table.n_bits == 12
    for query in [*codes[:5], *_codes(11, 5, 12)]:
        dist = (codes != query[None, :]).sum(axis=1)
        expected = np.flatnonzero(dist <= radius)
        ids, distances = retrieval.hamming_ball_lookup(table, query, radius)
        assert sorted(ids.tolist()) == expected.tolist()
        np.testing.assert_array_equal(distances, dist[ids])
        order = np.lexsort((ids, distances))
        np.testing.assert_array_equal(order, np.arange(ids.size))  # by distance, then id
    some = retrieval.hamming_ball_lookup(table, codes[0], radius)[0]
    assert some.size > 0 and 0 in some.tolist()


def test_hamming_ball_lookup_over_all_bits_returns_everything():
    codes = _codes(12, 40, 6)
    table = retrieval.build_hamming_table(codes)
    ids, _ = retrieval.hamming_ball_lookup(table, codes[0], 6)
    assert sorted(ids.tolist()) == list(range(40))
    empty = retrieval.build_hamming_table(np.zeros((3, 6), np.uint8))
    ids, distances = retrieval.hamming_ball_lookup(empty, np.ones(6, np.uint8), 2)
    assert ids.size == 0 and distances.size == 0


def test_hamming_table_bad_inputs():
    table = retrieval.build_hamming_table(_codes(0, 5, 8))
    with pytest.raises(ValueError, match=r"radius: expected 0 <= radius <= 8, got 9"):
        retrieval.hamming_ball_lookup(table, np.zeros(8, np.uint8), 9)
    with pytest.raises(ValueError, match="radius: expected an integer"):
        retrieval.hamming_ball_lookup(table, np.zeros(8, np.uint8), 1.5)
    with pytest.raises(ValueError, match="query_code: expected 8 bits .* got 9"):
        retrieval.hamming_ball_lookup(table, np.zeros(9, np.uint8), 1)
    with pytest.raises(ValueError, match="query_code: expected binary codes"):
        retrieval.hamming_ball_lookup(table, np.full(8, 0.5), 1)
    big = retrieval.build_hamming_table(_codes(0, 2, 64))
    with pytest.raises(ValueError, match="radius: a radius-6 ball around a 64-bit address has"):
        retrieval.hamming_ball_lookup(big, np.zeros(64, np.uint8), 6)
    with pytest.raises(ValueError, match="at most 64 bits, got 65"):
        retrieval.build_hamming_table(_codes(0, 2, 65))


# --------------------------------------------------------------------------- precision, recall


RELEVANCE = np.array(
    [
        [1, 0, 1, 0, 0, 1],  # R = 3
        [0, 0, 0, 1, 1, 0],  # R = 2
        [0, 0, 0, 0, 0, 0],  # no relevant item
    ],
    bool,
)


def test_precision_at_recall_hand_computed():
    levels = np.array([0.2, 1 / 3, 0.5, 0.6, 1.0], np.float32)
    got = jax.jit(retrieval.precision_at_recall)(RELEVANCE, levels)
    expected = [
        # m = ceil(r * 3) relevant items: 1, 1, 2, 2, 3, reached at ranks 1, 1, 3, 3, 6.
        [1.0, 1.0, 2 / 3, 2 / 3, 3 / 6],
        # m = ceil(r * 2): 1, 1, 1, 2, 2 at ranks 4, 4, 4, 5, 5.
        [1 / 4, 1 / 4, 1 / 4, 2 / 5, 2 / 5],
        [np.nan] * 5,
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_precision_at_recall_is_not_fooled_by_float_rounding():
    relevance = np.ones((1, 10), bool)
    # 0.3 * 10 is 3.0000001 in float32: 3 items are needed, not 4 (precision 1 either way, so
    # look at where recall is reached through a row with irrelevant items in between).
    relevance = np.array([[1, 0] * 10], bool)
    got = retrieval.precision_at_recall(relevance, np.array([0.3, 0.7], np.float32))
    np.testing.assert_allclose(got, [[3 / 5, 7 / 13]], rtol=1e-6)


def test_shortlist_precision_at_recall_hand_computed():
    database_labels = np.array([0, 1, 0, 1, 0, 2, 0, 1])  # R: label 0: 4, 1: 3, 2: 1, 3: 0
    ranked = [
        np.array([2, 1, 4, 5]),  # label 0: relevant at ranks 1 and 3, then nothing
        np.zeros(0, np.int64),  # an empty ball
        np.array([0, 1, 5]),  # label 2: its only item at rank 3
        np.array([0]),  # label 3: nothing relevant in the database
        np.array([7, 3, 1]),  # label 1: every item relevant
    ]
    levels = np.array([0.25, 0.5, 0.75, 1.0], np.float32)
    got = retrieval.shortlist_precision_at_recall(ranked, [0, 1, 2, 3, 1], database_labels, levels)
    nan = np.nan
    expected = [
        [1.0, 2 / 3, nan, nan],  # m = 1, 2, 3, 4: the shortlist holds 2 of the 4
        [nan] * 4,
        [1 / 3] * 4,  # m = 1 at every level
        [nan] * 4,
        [1.0] * 4,  # m = 1, 2, 3, 3
    ]
    assert got.dtype == np.float32 and got.shape == (5, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_shortlist_precision_at_recall_is_precision_at_recall_cut_at_the_shortlist():
    rng = np.random.default_rng(0)
    n_queries, n = 30, 50
    distances = rng.random((n_queries, n))
    query_labels, database_labels = rng.integers(0, 4, n_queries), rng.integers(0, 4, n)
    levels = np.array([0.01, 0.1, 0.3, 0.5, 0.7, 1.0], np.float32)
    order = np.argsort(distances, axis=1, kind="stable")
    relevance = np.asarray(retrieval.ranked_relevance(distances, query_labels, database_labels))
    full = np.asarray(retrieval.precision_at_recall(relevance, levels))
    got = retrieval.shortlist_precision_at_recall(order, query_labels, database_labels, levels)
    np.testing.assert_allclose(got, full, rtol=1e-6)  # the whole database: the same numbers
    cut = rng.integers(0, n + 1, n_queries)
    got = retrieval.shortlist_precision_at_recall(
        [row[:k] for row, k in zip(order, cut, strict=True)], query_labels, database_labels, levels
    )
    total = relevance.sum(axis=1)
    found = np.array([relevance[i, : cut[i]].sum() for i in range(n_queries)])
    needed = np.maximum(np.ceil(levels[None, :] * total[:, None] - 1e-4), 1)
    reached = needed <= found[:, None]
    assert reached.any() and not reached.all()
    np.testing.assert_array_equal(np.isnan(got), ~reached)
    np.testing.assert_allclose(got[reached], full[reached], rtol=1e-6)


def test_shortlist_precision_at_recall_bad_inputs():
    labels = np.array([0, 1, 0])
    levels = np.array([0.5], np.float32)
    with pytest.raises(ValueError, match=r"ranked_ids: expected one shortlist per query \(2\)"):
        retrieval.shortlist_precision_at_recall([np.array([0])], [0, 1], labels, levels)
    with pytest.raises(ValueError, match=r"ranked_ids: expected indices in \[0, 3\)"):
        retrieval.shortlist_precision_at_recall([np.array([0, 3])], [0], labels, levels)
    with pytest.raises(TypeError, match=r"ranked_ids\[0\]: expected integer indices"):
        retrieval.shortlist_precision_at_recall([np.array([0.0])], [0], labels, levels)
    # A repeated index would count one relevant item twice (recall 1.0 from 1 of 2 items).
    with pytest.raises(ValueError, match=r"ranked_ids\[0\]: expected distinct .* 2 repeats"):
        retrieval.shortlist_precision_at_recall([np.array([0, 0, 0])], [0], labels, levels)


def test_scoring_refuses_nan_codes_instead_of_ranking_them_arbitrarily():
    queries = np.array([[np.nan, 0.0], [1.0, 0.0]], np.float32)
    database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]], np.float32)
    with pytest.raises(ValueError, match="queries: expected finite values, found 1 NaN"):
        retrieval.evaluate_retrieval(
            queries, database, np.array([0, 0]), np.array([1, 1, 0]), metric="euclidean",
            ks=(1,), recall_levels=(1.0,),
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"non-finite distances to candidates \[0, 2\]"):
        retrieval.rerank(queries[0], database, np.array([0, 2]), metric="cosine")
    bad_row = database.copy()
    bad_row[1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite distances to candidates \[1\]"):
        retrieval.rerank(queries[1], bad_row, np.array([0, 1, 2]), metric="euclidean")
    np.testing.assert_array_equal(  # rows outside the shortlist are not read
        retrieval.rerank(queries[1], bad_row, np.array([2, 0]), metric="euclidean"), [0, 2]
    )
    with pytest.raises(ValueError, match="x: expected codes without NaN, found 1"):
        retrieval.threshold_codes(np.array([[np.nan, 0.7], [np.inf, 0.2]]))


def test_precision_at_k_and_average_precision_hand_computed():
    p = jax.jit(retrieval.precision_at_k, static_argnames="ks")(RELEVANCE, ks=(1, 3, 6))
    np.testing.assert_allclose(p, [[1, 2 / 3, 3 / 6], [0, 0, 2 / 6], [0, 0, 0]], rtol=1e-6)
    ap = jax.jit(retrieval.average_precision)(RELEVANCE)
    expected = [(1 / 1 + 2 / 3 + 3 / 6) / 3, (1 / 4 + 2 / 5) / 2, np.nan]
    np.testing.assert_allclose(ap, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="ks: expected values <= 6, got 7"):
        retrieval.precision_at_k(RELEVANCE, (7,))


def test_ranked_relevance_sorts_by_distance_with_ties_by_index():
    distances = np.array([[0.5, 0.1, 0.1, 0.9, 0.0]])
    got = jax.jit(retrieval.ranked_relevance)(distances, np.array([1]), np.array([1, 0, 1, 1, 0]))
    # Order: 4 (0.0), 1 (0.1), 2 (0.1), 0 (0.5), 3 (0.9).
    np.testing.assert_array_equal(got, [[False, False, True, True, True]])


@pytest.mark.parametrize(
    "distances",
    [
        np.round(np.random.default_rng(0).random((5, 300)), 1).astype(np.float32),  # many ties
        np.random.default_rng(1).integers(0, 9, (5, 300)).astype(np.int32),  # uint16 radix path
        np.random.default_rng(2).integers(-70_000, 70_000, (5, 300)).astype(np.int32),
    ],
    ids=["float-ties", "small-int", "wide-int"],
)
def test_the_cpu_ranking_in_evaluate_retrieval_matches_ranked_relevance(distances):
    labels, q_labels = np.arange(300) % 3, np.arange(5) % 3
    expected = retrieval.ranked_relevance(distances, q_labels, labels)
    got = retrieval._rank(jnp.asarray(distances), q_labels, labels)
    np.testing.assert_array_equal(got, expected)


def test_evaluate_retrieval_batches_give_the_same_scores_as_a_numpy_reference():
    codes, q_codes = _codes(20, 23, 16), _codes(21, 7, 16)
    labels, q_labels = np.arange(23) % 3, np.arange(7) % 3
    words, queries = retrieval.pack_bits(codes), retrieval.pack_bits(q_codes)
    levels = (0.1, 0.5, 1.0)
    kwargs = dict(metric="hamming", recall_levels=levels, ks=(1, 5))
    small = retrieval.evaluate_retrieval(queries, words, q_labels, labels, batch_size=3, **kwargs)
    exact = retrieval.evaluate_retrieval(queries, words, q_labels, labels, batch_size=7, **kwargs)
    for a, b in zip(small, exact, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    distances = (q_codes[:, None, :] != codes[None, :, :]).sum(-1)
    for i in range(7):
        relevant = labels[np.argsort(distances[i], kind="stable")] == q_labels[i]
        hits = np.cumsum(relevant)
        total = hits[-1]
        ranks = np.arange(1, 24)
        ap = np.sum(hits / ranks * relevant) / total
        needed = [max(1, int(np.ceil(r * total - 1e-9))) for r in levels]
        at_recall = [m / (np.searchsorted(hits, m) + 1) for m in needed]
        np.testing.assert_allclose(small.average_precision[i], ap, rtol=1e-6)
        np.testing.assert_allclose(small.precision_at_recall[i], at_recall, rtol=1e-6)
        np.testing.assert_allclose(small.precision_at_k[i], [hits[0], hits[4] / 5], rtol=1e-6)


def test_evaluate_retrieval_bad_inputs():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"query_labels: labels \[5\] never occur"):
        retrieval.evaluate_retrieval(x, x, np.array([0, 1, 5, 0]), np.arange(4), metric="cosine")
    with pytest.raises(ValueError, match="query_labels: expected last dimension 4"):
        retrieval.evaluate_retrieval(x, x, np.arange(3), np.arange(4), metric="cosine")
    with pytest.raises(ValueError, match="metric: expected one of"):
        retrieval.evaluate_retrieval(x, x, np.arange(4), np.arange(4), metric="l1")
    with pytest.raises(ValueError, match="ks: expected cut-offs <= the database size 4, got 10"):
        retrieval.evaluate_retrieval(x, x, np.arange(4), np.arange(4), metric="cosine")


# --------------------------------------------------------------------------- code makers


def test_threshold_codes_lsh_and_binariness(key):
    x = np.array([[0.05, 0.5, 0.95], [0.2, 0.51, -1.0]], np.float32)
    np.testing.assert_array_equal(retrieval.threshold_codes(x), [[0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(
        retrieval.threshold_codes(x, threshold=0.0), [[1, 1, 1], [1, 1, 0]]
    )
    assert retrieval.code_binariness(np.array([[0.05, 0.5, 0.95, 0.2]])) == 0.5
    with pytest.raises(ValueError, match=r"activations: expected values in \[0.0, 1.0\]"):
        retrieval.code_binariness(x)
    planes = retrieval.random_hyperplanes(key, 5, 64)
    assert planes.shape == (5, 64) and planes.dtype == jnp.float32
    # Sign random projections: the Hamming distance estimates the angle (Charikar 2002).
    big = retrieval.random_hyperplanes(key, 2, 4000)
    a, b = np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])
    codes = retrieval.threshold_codes(np.concatenate([a, b]) @ np.asarray(big), threshold=0.0)
    angle_fraction = float(np.mean(codes[0] != codes[1]))
    assert abs(angle_fraction - 0.25) < 0.03  # 45 degrees of 180


def test_hamming_ball_precision_recall_matches_a_brute_force_scan():
    rng = np.random.default_rng(30)
    centres = _codes(31, 3, 10)
    labels = rng.integers(0, 3, 200)
    codes = centres[labels] ^ (rng.random((200, 10)) < 0.1).astype(np.uint8)
    queries = np.concatenate([codes[:6], 1 - centres[:1]])  # the last one finds nothing
    q_labels = np.array([*labels[:6], 0])
    table = retrieval.build_hamming_table(codes)
    precision, recall = retrieval.hamming_ball_precision_recall(
        table, queries, q_labels, labels, radius=1
    )
    for i, (query, label) in enumerate(zip(queries, q_labels, strict=True)):
        found = (codes != query[None, :]).sum(axis=1) <= 1
        relevant = labels == label
        if found.any():
            assert precision[i] == pytest.approx((found & relevant).sum() / found.sum())
        else:
            assert np.isnan(precision[i])
        assert recall[i] == pytest.approx((found & relevant).sum() / relevant.sum())
    assert np.isnan(precision[-1]) and recall[-1] == 0.0


def test_evaluate_retrieval_compiles_once_per_shape():
    words = retrieval.pack_bits(_codes(40, 20, 32))
    labels = np.arange(20) % 2
    jitted = (retrieval._batch_distances, retrieval._relevance_scores)
    before = [f._cache_size() for f in jitted]
    for n_queries in (5, 8, 3):  # every batch is padded to batch_size rows
        retrieval.evaluate_retrieval(
            words[:n_queries], words, labels[:n_queries], labels, metric="hamming", batch_size=4,
            ks=(1, 5),
        )  # fmt: skip
    assert [f._cache_size() for f in jitted] == [b + 1 for b in before]


# --------------------------------------------------------------------------- two-stage search


def _packed(rng, n, bits):
    codes = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    return codes, np.asarray(retrieval.pack_bits(codes))


def _reference_two_stage_ranking(q_short, q_long, db_short, db_long, shortlist):
    """The two-stage ranking by NumPy sorts over unpacked bits, one query at a time."""
    rankings = []
    for qs, ql in zip(q_short, q_long, strict=True):
        d_short = (db_short != qs).sum(axis=1)
        d_long = (db_long != ql).sum(axis=1)
        by_short = np.lexsort((np.arange(len(db_short)), d_short))
        head = by_short[:shortlist]
        head = head[np.lexsort((head, d_short[head], d_long[head]))]
        rankings.append(np.concatenate([head, by_short[shortlist:]]))
    return np.stack(rankings)


def _two_stage_case(seed=0):
    rng = np.random.default_rng(seed)
    db_short, db_short_words = _packed(rng, 300, 6)  # 6 bits: many ties in the short distance
    db_long, db_long_words = _packed(rng, 300, 40)
    q_short, q_short_words = _packed(rng, 7, 6)
    q_long, q_long_words = _packed(rng, 7, 40)
    expected = _reference_two_stage_ranking(q_short, q_long, db_short, db_long, shortlist=50)
    return (q_short_words, q_long_words, db_short_words, db_long_words), expected


def test_shortlist_rerank_matches_a_numpy_reference():
    words, expected = _two_stage_case()
    ids = retrieval.shortlist_rerank(*words, short_bits=6, shortlist=50, k=20, batch_size=4)
    assert ids.shape == (7, 20)
    assert all(len(set(row)) == 20 for row in ids.tolist())  # k distinct database items
    np.testing.assert_array_equal(ids, expected[:, :20])

    distance = jax.jit(retrieval.two_stage_distance, static_argnames=("short_bits", "shortlist"))
    d = np.asarray(distance(*words, short_bits=6, shortlist=50))
    np.testing.assert_array_equal(np.argsort(d, axis=1, kind="stable"), expected)


def test_evaluate_two_stage_scores_the_reference_ranking():
    words, expected = _two_stage_case(1)
    labels, q_labels = np.arange(300) % 4, np.arange(7) % 4
    levels, ks = (0.1, 0.5, 1.0), (1, 10, 100)
    scores = retrieval.evaluate_two_stage(
        *words, q_labels, labels, short_bits=6, shortlist=50, recall_levels=levels, ks=ks,
        batch_size=3,
    )  # fmt: skip
    relevant = labels[expected] == q_labels[:, None]
    hits = np.cumsum(relevant, axis=1)
    ap = np.sum(hits / np.arange(1, 301) * relevant, axis=1) / hits[:, -1]
    np.testing.assert_allclose(scores.average_precision, ap, rtol=1e-6)
    np.testing.assert_allclose(
        scores.precision_at_k, hits[:, [k - 1 for k in ks]] / np.array(ks), rtol=1e-6
    )
    assert scores.precision_at_recall.shape == (7, 3)
    # A query whose label no database item has would score NaN and vanish from every mean.
    with pytest.raises(ValueError, match=r"query_labels: labels \[9\] never occur"):
        retrieval.evaluate_two_stage(
            *words, np.where(q_labels == 3, 9, q_labels), labels, short_bits=6, shortlist=50
        )
    with pytest.raises(ValueError, match="ks: expected cut-offs <= the database size 300"):
        retrieval.evaluate_two_stage(
            *words, q_labels, labels, short_bits=6, shortlist=50, ks=(400,)
        )


def test_shortlist_rerank_checks_its_sizes_and_dtypes():
    rng = np.random.default_rng(1)
    _, words = _packed(rng, 10, 8)
    with pytest.raises(ValueError, match="shortlist"):
        retrieval.shortlist_rerank(words, words, words, words, short_bits=8, shortlist=20, k=5)
    with pytest.raises(ValueError, match="k"):
        retrieval.shortlist_rerank(words, words, words, words, short_bits=8, shortlist=4, k=5)
    with pytest.raises(TypeError, match="query_short: expected uint32"):
        retrieval.shortlist_rerank(
            words.astype(np.int32), words, words, words, short_bits=8, shortlist=4, k=2
        )
    # short_bits must be the short codes' length: the shortlist counts distances up to it.
    with pytest.raises(ValueError, match="short_bits: 1 packed words hold codes of 1 to 32"):
        retrieval.shortlist_rerank(words, words, words, words, short_bits=40, shortlist=4, k=2)
    with pytest.raises(ValueError, match="a code has a bit set past short_bits=2"):
        retrieval.shortlist_rerank(words, words, words, words, short_bits=2, shortlist=4, k=2)
    _, long_words = _packed(rng, 10, 40)  # 40-bit codes in 2 words
    labels = np.arange(10) % 2
    with pytest.raises(ValueError, match="a code has a bit set past short_bits=33"):
        retrieval.evaluate_two_stage(
            long_words, words, long_words, words, labels, labels, short_bits=33, shortlist=4,
            recall_levels=(0.5,), ks=(1,),
        )  # fmt: skip


# --------------------------------------------------------------------------- noisy-code loss


def test_noisy_code_loss_matches_a_numpy_forward_pass():
    import jaxae

    model = jaxae.MLPAutoencoder((6, 5, 3), code_activation="sigmoid")
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(4, 6)).astype(np.float32)
    noise = (4.0 * rng.standard_normal((4, 3))).astype(np.float32)

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    enc = [(np.asarray(layer["w"]), np.asarray(layer["b"])) for layer in params["encoder"]]
    dec = [np.asarray(layer["w"]) for layer in params["decoder"]]
    dec_b = [np.asarray(layer["b"]) for layer in params["decoder"]]
    h = sigmoid(x @ enc[0][0] + enc[0][1])
    code = sigmoid(h @ enc[1][0] + enc[1][1] + noise)
    logits = sigmoid(code @ dec[0] + dec_b[0]) @ dec[1] + dec_b[1]
    p = sigmoid(logits)
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)

    loss = jax.jit(functools.partial(retrieval.noisy_code_loss, model))(params, x, noise)
    assert loss.shape == (4,)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    # No noise and the model's own code activation: the plain reconstruction loss.
    plain = retrieval.noisy_code_loss(model, params, x, np.zeros((4, 3), np.float32))
    np.testing.assert_allclose(
        plain, jaxae.sigmoid_cross_entropy(model.reconstruct(params, x, logits=True), x), rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"noise: expected shape \(4, 3\)"):
        retrieval.noisy_code_loss(model, params, x, noise[:, :2])
