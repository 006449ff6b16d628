"""Documents to vectors: tokens, a vocabulary, word-count vectors, TF-IDF and LSA.

The bag-of-words input of the semantic-hashing models: each document becomes a vector of counts
over the ``N`` most frequent non-stop words of the training corpus (2000 in Salakhutdinov &
Hinton 2009). The counts feed a replicated-softmax RBM (``RBMSpec(visible="softmax")``, which
scales the hidden biases by the document length); TF-IDF and LSA are the baselines::

    tokens = [text.tokenize(d) for d in train.documents]
    vocabulary = text.build_vocabulary(tokens, size=2000)
    counts = text.count_vectors(tokens, vocabulary, empty="keep")   # [n_docs, 2000] float32
    keep = counts.sum(axis=1) > 0                                    # drop docs with no words
    counts, labels = counts[keep], train.labels[keep]
    idf = text.inverse_document_frequency(counts)
    lsa = text.fit_lsa(text.tfidf(counts, idf), 128)
    codes = text.lsa_encode(lsa, text.tfidf(counts, idf))             # [n_docs, 128]

References:
  Salakhutdinov & Hinton, "Semantic hashing", International Journal of Approximate Reasoning
  50(7), 2009 (2000-word count vectors, stop words removed).
  Deerwester, Dumais, Furnas, Landauer & Harshman, "Indexing by latent semantic analysis",
  JASIS 41(6), 1990 (LSA: truncated SVD of the weighted term-document matrix).
  Salton & Buckley, "Term-weighting approaches in automatic text retrieval", 1988 (TF-IDF).
"""

from __future__ import annotations

import collections
import functools
import re
import sys
import unicodedata
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse

from jaxae.validation import check_array, check_positive_int

__all__ = [
    "ENGLISH_STOP_WORDS",  # noqa: F822 (provided lazily by the module __getattr__)
    "LSA",
    "build_vocabulary",
    "count_vectors",
    "fit_lsa",
    "inverse_document_frequency",
    "lsa_encode",
    "tfidf",
    "tokenize",
]


@functools.cache
def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as words

    return frozenset(words)


def __getattr__(name: str):
    # ENGLISH_STOP_WORDS, scikit-learn's English stop list (318 words, from the Glasgow
    # Information Retrieval Group), is read on first use: importing sklearn takes a second or
    # two, which `import jaxae` should not pay.
    if name == "ENGLISH_STOP_WORDS":
        return _english_stop_words()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Runs of letters (any script); digits, underscores and punctuation separate words.
_WORD = re.compile(r"[^\W\d_]+")


@functools.cache
def _word_with_marks() -> re.Pattern:
    """A letter, then letters or combining marks (Unicode category M): ``re``'s letters leave
    out marks, which would split "नमस्ते" (its vowel signs) or a decomposed "café". Built once,
    on the first non-ASCII document (a scan of the code points, a fraction of a second)."""
    marks, start = [], None
    for code in range(sys.maxunicode + 2):
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return re.compile(rf"[^\W\d_](?:[^\W\d_]|[{''.join(marks)}])*")


def tokenize(
    document: str,
    *,
    stop_words: Collection[str] | None = None,
    min_length: int = 2,
) -> list[str]:
    """Lower-cased words of ``document``, stop words and words shorter than ``min_length`` removed.

    A word is a maximal run of letters, so ``"don't"`` gives ``"don"`` and ``"t"`` (the latter
    dropped by ``min_length=2``), as in the corpora's own preprocessing. Non-ASCII text is
    NFC-normalised first, and a word's combining marks stay in it (a decomposed ``"café"``, the
    vowel signs of Devanagari).

    Args:
      document: the text.
      stop_words: words to drop (compared after lower-casing); ``None``: scikit-learn's English
        stop list, ``jaxae.text.ENGLISH_STOP_WORDS`` (318 words); ``()`` keeps every word.
      min_length: the shortest word kept, in characters.

    Returns:
      The words in document order (possibly empty).
    """
    if not isinstance(document, str):
        raise TypeError(f"document: expected a str, got {type(document).__name__}")
    check_positive_int(min_length, "min_length")
    if stop_words is None:
        stop_words = _english_stop_words()
    text = document.lower()
    if not text.isascii():  # composed where Unicode can compose, and marks kept in their word
        text = unicodedata.normalize("NFC", text)
        words = _word_with_marks().findall(text)
    else:
        words = _WORD.findall(text)
    return [w for w in words if len(w) >= min_length and w not in stop_words]


def _check_token_lists(documents: Sequence[Sequence[str]]) -> None:
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise TypeError(
            f"documents: expected a sequence of token lists, got {type(documents).__name__}"
        )
    if len(documents) == 0:
        raise ValueError("documents: expected at least one document, got none")
    for i, doc in enumerate(documents):
        # A str is itself a sequence of str; counting its characters would be a silent mistake.
        if isinstance(doc, str) or not isinstance(doc, Sequence):
            raise TypeError(
                f"documents[{i}]: expected a list of tokens (call jaxae.text.tokenize on each "
                f"document first), got {type(doc).__name__}"
            )


def build_vocabulary(documents: Sequence[Sequence[str]], size: int = 2000) -> tuple[str, ...]:
    """The ``size`` most frequent words of a corpus, most frequent first.

    Frequency is the total number of occurrences in the corpus; ties are broken alphabetically,
    so the vocabulary is a deterministic function of the corpus (not of document order).

    Args:
      documents: token lists, e.g. ``[tokenize(d) for d in corpus.documents]``.
      size: the number of words to keep.

    Returns:
      ``size`` distinct words.

    Raises:
      ValueError: ``size`` exceeds the number of distinct words, or there are no documents.
    """
    _check_token_lists(documents)
    check_positive_int(size, "size")
    frequency = collections.Counter()
    for doc in documents:
        frequency.update(doc)
    if size > len(frequency):
        raise ValueError(
            f"size: the corpus has only {len(frequency)} distinct words (after tokenizing), so a "
            f"vocabulary of {size} is impossible; ask for at most {len(frequency)}"
        )
    ranked = sorted(frequency.items(), key=lambda item: (-item[1], item[0]))
    return tuple(word for word, _ in ranked[:size])


def count_vectors(
    documents: Sequence[Sequence[str]],
    vocabulary: Sequence[str],
    *,
    empty: str = "error",
) -> np.ndarray:
    """Word-count vectors: how often each vocabulary word occurs in each document.

    Words outside the vocabulary are ignored. A document with no vocabulary word at all (an empty
    document, or one whose words are all rare) gets an all-zero row, which has no length for a
    replicated-softmax RBM and no direction for cosine similarity; by default it is an error.

    Args:
      documents: ``n_docs`` token lists.
      vocabulary: ``vocab`` distinct words; column ``j`` counts ``vocabulary[j]``.
      empty: ``"error"`` raises on an all-zero row; ``"keep"`` returns it (then drop such rows
        yourself, together with their labels: ``keep = counts.sum(axis=1) > 0``).

    Returns:
      float32 ``[n_docs, vocab]`` counts.

    Raises:
      ValueError: a document has no vocabulary word (with ``empty="error"``), the vocabulary has
        repeated words, or ``empty`` is unknown.
    """
    _check_token_lists(documents)
    if empty not in ("error", "keep"):
        raise ValueError(f"empty: expected 'error' or 'keep', got {empty!r}")
    if isinstance(vocabulary, str) or len(vocabulary) == 0:
        raise ValueError("vocabulary: expected a non-empty sequence of words")
    column = {word: j for j, word in enumerate(vocabulary)}
    if len(column) != len(vocabulary):
        repeated = sorted(w for w, c in collections.Counter(vocabulary).items() if c > 1)
        raise ValueError(f"vocabulary: expected distinct words, got repeats {repeated[:10]}")
    rows, cols = [], []
    for i, doc in enumerate(documents):
        hits = [column[w] for w in doc if w in column]
        rows.extend([i] * len(hits))
        cols.extend(hits)
    counts = np.zeros((len(documents), len(vocabulary)), np.float32)
    np.add.at(counts, (np.asarray(rows, np.int64), np.asarray(cols, np.int64)), 1.0)
    if empty == "error":
        empty_rows = np.flatnonzero(counts.sum(axis=1) == 0)
        if empty_rows.size:
            no_tokens = sum(len(documents[i]) == 0 for i in empty_rows)
            raise ValueError(
                f"documents: {empty_rows.size} of {len(documents)} documents have no vocabulary "
                f"word ({no_tokens} of them have no tokens at all), first at indices "
                f"{empty_rows[:5].tolist()}; pass empty='keep' and drop the rows with "
                "counts.sum(axis=1) == 0 together with their labels"
            )
    return counts


def inverse_document_frequency(counts: np.ndarray) -> np.ndarray:
    """Smoothed inverse document frequency of each word, ``1 + log((1 + n) / (1 + df))``.

    Args:
      counts: float ``[n_docs, vocab]`` word counts of the corpus the weights are learnt from
        (the training set; apply the same weights to the queries).

    Returns:
      float32 ``[vocab]``; ``df`` is the number of documents containing the word. This is
      scikit-learn's ``TfidfTransformer(smooth_idf=True)`` weighting.
    """
    counts = np.asarray(counts)
    check_array(counts, "counts", rank=2, value_range=(0, np.inf))
    n = counts.shape[0]
    df = np.count_nonzero(counts, axis=0)
    return (1.0 + np.log((1.0 + n) / (1.0 + df))).astype(np.float32)


def tfidf(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """TF-IDF vectors with unit Euclidean norm: ``counts * idf``, each row scaled to length 1.

    Args:
      counts: float ``[n_docs, vocab]`` word counts.
      idf: float ``[vocab]`` weights from :func:`inverse_document_frequency`.

    Returns:
      float32 ``[n_docs, vocab]``; an all-zero row stays zero.
    """
    counts = np.asarray(counts)
    idf = np.asarray(idf)
    check_array(counts, "counts", rank=2, value_range=(0, np.inf))
    check_array(idf, "idf", rank=1, value_range=(0, np.inf))
    if idf.shape[0] != counts.shape[1]:
        raise ValueError(
            f"idf: expected {counts.shape[1]} weights (one per vocabulary word), got {idf.shape[0]}"
        )
    weighted = counts.astype(np.float32) * idf[None, :].astype(np.float32)
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    return weighted / np.maximum(norms, np.float32(np.finfo(np.float32).tiny))


class LSA(NamedTuple):
    """A fitted latent semantic analysis: the top right singular vectors of a document matrix.

    Attributes:
      components: float32 ``[dim, vocab]`` orthonormal rows, largest singular value first.
      singular_values: float32 ``[dim]``.
    """

    components: np.ndarray
    singular_values: np.ndarray


def fit_lsa(x: np.ndarray, dim: int) -> LSA:
    """LSA: the rank-``dim`` truncated SVD of a (TF-IDF) document matrix, uncentred.

    Unlike PCA (:func:`jaxae.fit_pca`) the data are not centred, as in LSA and in scikit-learn's
    ``TruncatedSVD``; centring would densify a sparse term matrix.

    Args:
      x: float ``[n_docs, vocab]``, usually :func:`tfidf` of the training counts.
      dim: the code dimension, at most ``min(n_docs, vocab)``.

    Returns:
      An :class:`LSA` whose component signs are fixed so each row's largest-magnitude entry is
      positive (the SVD's signs are arbitrary).
    """
    x = np.asarray(x)
    check_array(x, "x", rank=2, floating=True)
    check_positive_int(dim, "dim")
    if dim > min(x.shape):
        raise ValueError(f"dim: expected at most min(n_docs, vocab) = {min(x.shape)}, got {dim}")
    # The SVD of x is read off the top eigenvectors of the [vocab, vocab] Gram matrix, which
    # a sparse product forms cheaply (TF-IDF rows have few non-zeros).
    sparse = scipy.sparse.csr_matrix(x.astype(np.float64))
    gram = (sparse.T @ sparse).toarray()
    vocab = gram.shape[0]
    eigenvalues, eigenvectors = scipy.linalg.eigh(
        gram, subset_by_index=(vocab - dim, vocab - 1), driver="evr"
    )
    order = np.argsort(eigenvalues)[::-1]
    components = eigenvectors[:, order].T
    rows = np.arange(dim)
    signs = np.sign(components[rows, np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    singular_values = np.sqrt(np.maximum(eigenvalues[order], 0.0))
    return LSA(components.astype(np.float32), singular_values.astype(np.float32))


def lsa_encode(lsa: LSA, x: np.ndarray) -> np.ndarray:
    """LSA codes ``x @ components.T``: float32 ``[n_docs, dim]`` from ``x [n_docs, vocab]``."""
    x = np.asarray(x)
    check_array(x, "x", rank=2, floating=True, last_dim=lsa.components.shape[1])
    return (x.astype(np.float32) @ lsa.components.T).astype(np.float32)
