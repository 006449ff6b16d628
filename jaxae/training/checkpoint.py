"""Orbax checkpoints of ``(state, history)``, one per epoch; Orbax writes atomically.

The state is saved as global arrays (not per-device copies), so a data-parallel run resumes on
another device count or on one device. It holds everything a resumed run needs to continue as
the uninterrupted run would: parameters, optimizer state, step, ``aux`` (PCD chains) and
``model_state`` (e.g. BatchNorm statistics).

Damage is detected, not trusted: beside the arrays each checkpoint stores a digest (SHA-256 of
every leaf's bytes, with its path, shape and dtype). :meth:`Checkpointer.restore_latest` tries
the newest checkpoint first; one that cannot be read or whose digest differs is moved aside to
``damaged_epoch_<n>`` with a warning naming it, and the next older one is tried. A checkpoint of
another model or optimizer (other leaf paths or shapes) is refused with the differences, never
taken for damage.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxae.training.state import TrainState
from jaxae.validation import check_positive_int

__all__ = ["Checkpointer", "check_checkpoint_dir", "saved_training_seconds"]


def check_checkpoint_dir(directory: str | os.PathLike, name: str = "checkpoint_dir") -> str:
    """Creates ``directory`` if needed and checks a file can be written there.

    Returns:
      The absolute path.

    Raises:
      ValueError: the path, or a parent of it, is a regular file, or it cannot be created or
        written to (the message names ``name``, the path and the reason).
    """
    path = os.path.abspath(os.fspath(directory))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} is a regular file, expected a directory")
    parent = path
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and parent != path and not os.path.isdir(parent):
        raise ValueError(
            f"{name}: {path!r} lies below the regular file {parent!r}; expected a directory path"
        )
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(
            f"{name}: cannot write to {path!r} ({error.strerror or error}); pass a writable "
            "directory"
        ) from error
    return path


def saved_training_seconds(directory: str | os.PathLike) -> float:
    """Seconds of training checkpointed under ``directory``, at any depth.

    For each fit that saved below ``directory`` (a ``checkpoint_dir`` of :func:`jaxae.fit`),
    the ``time_s`` of the epochs its newest readable checkpoint holds. Read when a command
    starts, before its fits restore anything, it is the training that earlier processes of the
    same command did. 0.0 when ``directory`` does not exist or holds no checkpoint.
    """
    import orbax.checkpoint as ocp

    history_only = ocp.args.Composite(history=ocp.args.JsonRestore())
    total = 0.0
    for root, dirs, _ in os.walk(os.fspath(directory)):
        epochs = [
            d for d in dirs if d.isdigit() and os.path.isdir(os.path.join(root, d, "history"))
        ]
        if not epochs:
            continue
        dirs[:] = [d for d in dirs if d not in epochs]  # a fit's epochs hold no other fit
        manager = ocp.CheckpointManager(root)
        try:
            for epoch in sorted(map(int, epochs), reverse=True):
                try:
                    history = manager.restore(epoch, args=history_only).history
                    total += float(sum(row.get("time_s", 0.0) for row in history))
                    break
                except Exception:  # noqa: BLE001 - a damaged checkpoint: try the one before
                    continue
        finally:
            manager.close()
    return total


class Checkpointer:
    """Saves and restores ``(state, history)`` under ``directory``, keeping ``max_to_keep``.

    The directory is checked (created, written to) here, before any training.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int):
        import orbax.checkpoint as ocp

        check_positive_int(max_to_keep, "max_checkpoints")
        self.directory = check_checkpoint_dir(directory)
        self._ocp = ocp
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        """The last saved epoch, or None."""
        return self._manager.latest_step()

    def save(self, epoch: int, state: TrainState, history: list) -> None:
        ocp = self._ocp
        arrays = _state_to_arrays(state)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(arrays),
            history=ocp.args.JsonSave(history),
            digest=ocp.args.JsonSave(_digest(arrays)),
        )
        self._manager.save(epoch, args=args)
        self._manager.wait_until_finished()

    def restore(self, epoch: int, template: TrainState) -> tuple[TrainState, list]:
        """The state of ``epoch``, placed as ``template`` is (its shardings), and the history.

        Raises:
          ValueError: the checkpoint holds another tree (other paths, shapes or dtypes): the
            message lists the differences, expected vs found.
          Exception: whatever Orbax raises on a damaged checkpoint, or a ``_DamagedError`` when
            the restored bytes do not match the saved digest.
        """
        ocp = self._ocp
        target = _state_to_arrays(template)
        saved = self._read_digest(epoch)
        if saved is not None:
            expected = _digest(target, hash_bytes=False)
            _check_same_tree(saved["leaves"], expected["leaves"], self)
            _check_same_structure(saved.get("structure"), expected["structure"], self)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore()
        )
        try:
            restored = self._manager.restore(epoch, args=args)
        except ValueError as error:
            # A checkpoint saved before structures were recorded (no "structure" in its digest):
            # Orbax's own structure check is then the only one, and it is not damage.
            if "tree structures do not match" not in str(error):
                raise
            raise _TreeMismatchError(
                f"checkpoint_dir: {self.directory!r} holds a checkpoint of another model or "
                f"optimizer (Orbax: {_first_line(error)}). Pass another checkpoint_dir, or "
                "delete this one to start over"
            ) from None
        # Orbax may hand back plain tuples for NamedTuple nodes: rebuild the template's tree.
        leaves = jax.tree.leaves(restored.state)
        state = jax.tree.unflatten(jax.tree.structure(target), leaves)
        if saved is not None and saved.get("sha256") is not None:
            found = _digest(state)["sha256"]
            if found is not None and found != saved["sha256"]:
                raise _DamagedError("the restored arrays do not match the saved SHA-256 digest")
        history = restored.history
        if not isinstance(history, list):
            raise _DamagedError(f"history: expected a JSON list, got {type(history).__name__}")
        return _state_from_arrays(state, template), list(history)

    def restore_latest(self, template: TrainState) -> tuple[int, TrainState, list] | None:
        """The newest intact checkpoint as ``(epoch, state, history)``, or None if there is none.

        A damaged checkpoint is moved aside to ``damaged_epoch_<n>`` (with a warning naming it)
        and the next older one is tried.

        Raises:
          ValueError: checkpoints exist but none is intact (each damaged path is named), or the
            newest readable one belongs to another model or optimizer.
        """
        damaged = []
        for epoch in sorted(self._manager.all_steps(), reverse=True):
            path = os.path.join(self.directory, str(epoch))
            try:
                state, history = self.restore(epoch, template)
            except _TreeMismatchError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure to read is damage
                reason = f"{type(error).__name__}: {_first_line(error)}"
                aside = _free_path(os.path.join(self.directory, f"damaged_epoch_{epoch}"))
                try:
                    os.replace(path, aside)
                except OSError:
                    aside = path
                damaged.append(f"{path} ({reason})")
                warnings.warn(
                    f"checkpoint_dir: the checkpoint of epoch {epoch} at {path!r} is damaged "
                    f"({reason}); moved aside to {aside!r}, trying an earlier checkpoint",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self._manager.reload()
                continue
            return epoch, state, history
        if damaged:
            raise ValueError(
                "checkpoint_dir: no intact checkpoint in "
                f"{self.directory!r}; damaged: {'; '.join(damaged)}. Fix: delete the directory "
                "(or pass another checkpoint_dir) to start over, or restore it from a backup"
            )
        return None

    def _read_digest(self, epoch: int):
        path = os.path.join(self.directory, str(epoch), "digest")
        if not os.path.exists(path):
            return None  # a checkpoint written before digests were saved
        ocp = self._ocp
        digest = self._manager.restore(
            epoch, args=ocp.args.Composite(digest=ocp.args.JsonRestore())
        )
        digest = digest.digest
        if not isinstance(digest, dict) or not isinstance(digest.get("leaves"), list):
            raise _DamagedError("digest: expected a JSON object with 'leaves'")
        return digest

    def close(self) -> None:
        self._manager.close()


class _DamagedError(Exception):
    """A checkpoint's contents are not what was saved."""


class _TreeMismatchError(ValueError):
    """A checkpoint of another model or optimizer."""


def _free_path(path: str) -> str:
    """``path``, or ``path.1``, ``path.2``, ... when taken (a checkpoint damaged again after an
    earlier one of the same epoch was moved aside)."""
    candidate, n = path, 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.{n}"
    return candidate


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


def _digest(arrays, *, hash_bytes: bool = True) -> dict:
    """Each leaf's path, shape and dtype, the tree's structure (with its empty nodes, such as
    Optax's ``EmptyState``, which hold no leaf), and (for addressable arrays) a SHA-256 of the
    bytes."""
    leaves = jax.tree_util.tree_leaves_with_path(arrays)
    entries = [
        {"path": jax.tree_util.keystr(p), "shape": list(np.shape(x)), "dtype": str(x.dtype)}
        for p, x in leaves
    ]
    sha = None
    addressable = all(getattr(x, "is_fully_addressable", True) for _, x in leaves)
    if hash_bytes and addressable:
        h = hashlib.sha256()
        for _, x in leaves:
            h.update(np.ascontiguousarray(jax.device_get(x)).tobytes())
        sha = h.hexdigest()
    return {"leaves": entries, "structure": str(jax.tree.structure(arrays)), "sha256": sha}


def _check_same_tree(saved: list, expected: list, checkpointer: Checkpointer) -> None:
    found = {e["path"]: (tuple(e["shape"]), e["dtype"]) for e in saved}
    want = {e["path"]: (tuple(e["shape"]), e["dtype"]) for e in expected}
    if found == want:
        return
    lines = []
    for path in sorted(set(want) | set(found)):
        w, f = want.get(path), found.get(path)
        if w != f:
            show = lambda v: "absent" if v is None else f"{v[0]} {v[1]}"  # noqa: E731
            lines.append(f"  state{path}: expected {show(w)}, found {show(f)}")
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    raise _TreeMismatchError(
        f"checkpoint_dir: {checkpointer.directory!r} holds a checkpoint of another model or "
        "optimizer (expected = this run's state, found = the checkpoint):\n"
        + "\n".join(lines[:20])
        + more
        + "\nPass another checkpoint_dir, or delete this one to start over"
    )


def _check_same_structure(saved: str | None, expected: str, checkpointer: Checkpointer) -> None:
    """Two trees with the same leaves can still differ in their leafless nodes (``optax.adam``
    and ``optax.adamw`` keep the same arrays): a checkpoint of the other is refused, not read
    (Orbax would fail on it, and the failure would be taken for damage)."""
    if saved is None or saved == expected:  # None: saved before structures were recorded
        return
    raise _TreeMismatchError(
        f"checkpoint_dir: {checkpointer.directory!r} holds a checkpoint of another model or "
        "optimizer: the same arrays in another tree (for example optax.adam against "
        "optax.adamw, whose extra states hold no arrays).\n"
        f"  expected (this run's state): {_shorten(expected)}\n"
        f"  found (the checkpoint):      {_shorten(saved)}\n"
        "Pass another checkpoint_dir, or delete this one to start over"
    )


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 5] + " ..."


def _state_to_arrays(state: TrainState):
    """Typed PRNG keys in the state cannot be serialised: store their key data."""
    return jax.tree.map(
        lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
        state,
    )


def _state_from_arrays(arrays, template: TrainState) -> TrainState:
    return jax.tree.map(
        lambda x, t: (
            jax.random.wrap_key_data(x, impl=jax.random.key_impl(t))
            if jnp.issubdtype(t.dtype, jax.dtypes.prng_key)
            else x
        ),
        arrays,
        template,
    )
