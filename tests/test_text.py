import numpy as np
import pytest

from jaxae import text

DOCS = [
    "The cat sat on the mat. The cat purred!",
    "Dogs chase cats; a dog barks at 3 cats.",
    "Stock markets fell: the dog-days of trading.",
    "Cat, cat, CAT and dog",
]


def test_tokenize_lowercases_splits_on_non_letters_and_drops_stop_words():
    assert text.tokenize(DOCS[0]) == ["cat", "sat", "mat", "cat", "purred"]
    assert text.tokenize(DOCS[2]) == ["stock", "markets", "fell", "dog", "days", "trading"]
    assert text.tokenize("don't x2y a_b") == ["don"]  # 't', 'x', 'y', 'a', 'b' are too short
    assert text.tokenize("the cat", stop_words=()) == ["the", "cat"]
    assert text.tokenize("a b cd", stop_words=(), min_length=1) == ["a", "b", "cd"]
    assert text.tokenize("Über naïve café") == ["über", "naïve", "café"]
    assert text.tokenize("") == [] and text.tokenize("the of and 123") == []
    assert "the" in text.ENGLISH_STOP_WORDS and len(text.ENGLISH_STOP_WORDS) == 318


def test_vocabulary_is_most_frequent_first_with_alphabetical_ties():
    tokens = [text.tokenize(d) for d in DOCS]
    # cat 5, dog 3 (one in each of three docs), cats 2, then 1-count words alphabetically.
    assert text.build_vocabulary(tokens, 5) == ("cat", "dog", "cats", "barks", "chase")
    # Document order does not matter.
    assert text.build_vocabulary(tokens[::-1], 5) == text.build_vocabulary(tokens, 5)


def test_count_vectors_on_a_handful_of_documents():
    tokens = [text.tokenize(d) for d in DOCS]
    vocabulary = ("cat", "dog", "cats", "stock")
    counts = text.count_vectors(tokens, vocabulary)
    expected = np.array(
        [
            [2, 0, 0, 0],  # cat cat
            [0, 1, 2, 0],  # "dogs" is not "dog"; dog; cats cats
            [0, 1, 0, 1],  # dog (from dog-days), stock
            [3, 1, 0, 0],  # Cat cat CAT dog
        ],
        np.float32,
    )
    assert counts.dtype == np.float32
    np.testing.assert_array_equal(counts, expected)


def test_empty_documents_are_an_error_unless_kept():
    tokens = [["cat"], [], ["zebra"]]
    with pytest.raises(ValueError, match=r"2 of 3 documents have no vocabulary word \(1 of them"):
        text.count_vectors(tokens, ("cat", "dog"))
    with pytest.raises(ValueError, match=r"first at indices \[1, 2\]; pass empty='keep'"):
        text.count_vectors(tokens, ("cat", "dog"))
    counts = text.count_vectors(tokens, ("cat", "dog"), empty="keep")
    np.testing.assert_array_equal(counts, [[1, 0], [0, 0], [0, 0]])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: text.build_vocabulary([["a", "b"], ["b"]], 3),
            ValueError,
            "only 2 distinct words",
        ),
        (lambda: text.build_vocabulary([], 3), ValueError, "at least one document"),
        (lambda: text.build_vocabulary(["a cat"], 1), TypeError, r"documents\[0\]: .*tokenize"),
        (lambda: text.build_vocabulary("abc", 1), TypeError, "sequence of token lists"),
        (lambda: text.build_vocabulary([["a"]], 0), ValueError, "size: expected a positive"),
        (lambda: text.count_vectors([["a"]], ("a", "a")), ValueError, r"repeats \['a'\]"),
        (lambda: text.count_vectors([["a"]], ()), ValueError, "vocabulary: expected a non-empty"),
        (lambda: text.count_vectors([["a"]], ("a",), empty="drop"), ValueError, "empty: expected"),
        (lambda: text.tokenize(["a"]), TypeError, "document: expected a str"),
        (lambda: text.tfidf(np.ones((2, 3)), np.ones(2)), ValueError, "idf: expected 3 weights"),
        (lambda: text.tfidf(-np.ones((2, 3)), np.ones(3)), ValueError, r"counts: expected values"),
        (lambda: text.fit_lsa(np.ones((3, 4)), 4), ValueError, r"dim: expected at most .* = 3"),
    ],
)
def test_bad_inputs_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_tfidf_matches_scikit_learn():
    from sklearn.feature_extraction.text import TfidfTransformer

    counts = np.random.default_rng(0).poisson(0.7, (30, 12)).astype(np.float32)
    counts[:, 3] = 0  # a word no document uses
    counts[0] = 0  # an empty document stays zero
    idf = text.inverse_document_frequency(counts)
    got = text.tfidf(counts, idf)
    reference = TfidfTransformer().fit(counts)
    np.testing.assert_allclose(idf, reference.idf_, rtol=1e-6)
    np.testing.assert_allclose(got, reference.transform(counts).toarray(), rtol=1e-5, atol=1e-7)
    assert got.dtype == np.float32


def test_lsa_is_the_truncated_svd():
    x = np.random.default_rng(1).random((40, 15)).astype(np.float32)
    lsa = text.fit_lsa(x, 4)
    _, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(lsa.singular_values, s[:4], rtol=1e-5)
    np.testing.assert_allclose(np.abs(lsa.components @ vt[:4].T), np.eye(4), atol=1e-4)
    codes = text.lsa_encode(lsa, x)
    assert codes.shape == (40, 4) and codes.dtype == np.float32
    # Each row's largest-magnitude entry is positive.
    rows = np.arange(4)
    assert np.all(lsa.components[rows, np.abs(lsa.components).argmax(axis=1)] > 0)
    with pytest.raises(ValueError, match="x: expected last dimension 15"):
        text.lsa_encode(lsa, x[:, :5])


def test_tokenize_keeps_combining_marks_in_their_word():
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "Café résumé naïve")
    assert text.tokenize(decomposed, stop_words=()) == ["café", "résumé", "naïve"]  # composed
    assert text.tokenize("नमस्ते दुनिया", stop_words=()) == ["नमस्ते", "दुनिया"]  # vowel signs kept
    assert text.tokenize("don't 42abc", stop_words=()) == ["don", "abc"]  # ASCII as before
