"""The containers :func:`jaxae.data.load` returns: :class:`Dataset` (images) and
:class:`TextCorpus` (documents), and :func:`select`, which takes a slice of either."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxae.validation import check_array

__all__ = ["Dataset", "TextCorpus", "make_read_only", "select"]


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image dataset.

    Attributes:
      images: float32 ``[N, H, W, C]`` in [0, 1]; read-only when it comes from :func:`load`.
      labels: int32 ``[N]``.
      name: the dataset name given to :func:`load`.
      split: the split given to :func:`load`, e.g. ``"train[50000:]"``.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str

    def __post_init__(self):
        check_array(self.images, "images", rank=4, floating=True, finite=False)
        check_array(self.labels, "labels", rank=1, finite=False)
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"images and labels: expected the same number of examples, got "
                f"{self.images.shape[0]} and {self.labels.shape[0]}"
            )

    @property
    def flat(self) -> np.ndarray:
        """The images flattened per example: float32 ``[N, H*W*C]``."""
        return self.images.reshape(len(self), -1)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class TextCorpus:
    """One split of a labelled text corpus.

    Attributes:
      documents: ``N`` strings: lower-case words separated by single spaces (see
        :func:`jaxae.text.tokenize` to split them and drop stop words).
      labels: int32 ``[N]`` in ``[0, len(label_names))``; read-only when it comes from
        :func:`load`.
      label_names: the topic of each label value, e.g. ``"sci.space"``.
      name: the corpus name given to :func:`load`.
      split: the split given to :func:`load`, e.g. ``"train[:1000]"``.
    """

    documents: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    split: str

    def __post_init__(self):
        if not isinstance(self.documents, tuple) or not all(
            isinstance(d, str) for d in self.documents
        ):
            raise TypeError("documents: expected a tuple of str")
        check_array(self.labels, "labels", rank=1, finite=False)
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise TypeError(f"labels: expected an integer dtype, got {self.labels.dtype}")
        if len(self.documents) != self.labels.shape[0]:
            raise ValueError(
                f"documents and labels: expected the same number of examples, got "
                f"{len(self.documents)} and {self.labels.shape[0]}"
            )
        check_array(self.labels, "labels", value_range=(0, len(self.label_names) - 1))

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def select(full: Dataset | TextCorpus, lo: int, hi: int, *, split: str) -> Dataset | TextCorpus:
    """Examples ``[lo:hi]`` of a full split, as the container for ``split`` (views, no copies)."""
    if isinstance(full, Dataset):
        return Dataset(full.images[lo:hi], full.labels[lo:hi], full.name, split)
    if isinstance(full, TextCorpus):
        return TextCorpus(
            full.documents[lo:hi], full.labels[lo:hi], full.label_names, full.name, split
        )
    raise TypeError(f"full: expected a Dataset or a TextCorpus, got {type(full).__name__}")


def make_read_only(container: Dataset | TextCorpus) -> Dataset | TextCorpus:
    """Marks every array field of ``container`` read-only (they live in a per-process cache)."""
    for field in dataclasses.fields(container):
        value = getattr(container, field.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return container
