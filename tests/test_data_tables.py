"""Tests for weightscape.data.tables: every supported format, label handling and error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from weightscape.data import load_table_task
from weightscape.errors import WeightscapeError

TEXTS = ["a fine film", 'he said "meh"', "awful, just awful", "12", "great\tacting"]
LABELS = ["pos", "neg", "neg", "pos", "pos"]


def frame(**columns: list) -> pd.DataFrame:
    return pd.DataFrame(columns or {"text": TEXTS, "label": LABELS})


def check_sentiment(task, name: str) -> None:
    assert task.name == name
    assert task.text_a == tuple(TEXTS) and task.text_b is None
    assert all(type(text) is str for text in task.text_a)
    assert task.label_names == ("neg", "pos")  # sorted unique strings
    assert task.labels.tolist() == [1, 0, 0, 1, 1]
    assert task.ids.tolist() == [0, 1, 2, 3, 4]


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    frame().to_csv(path, index=False)
    check_sentiment(load_table_task(path), "reviews")


def test_tsv_is_read_without_quoting(tmp_path: Path) -> None:
    # Plain TSV (as in GLUE): a quote is an ordinary character; no tabs inside fields.
    texts = [text.replace("\t", " ") for text in TEXTS]
    rows = ["text\tlabel", *(f"{t}\t{lab}" for t, lab in zip(texts, LABELS, strict=True))]
    path = tmp_path / "reviews.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    task = load_table_task(path)
    assert task.text_a == tuple(texts) and task.labels.tolist() == [1, 0, 0, 1, 1]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_json_lines_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"reviews{suffix}"
    frame().to_json(path, orient="records", lines=True, force_ascii=False)
    check_sentiment(load_table_task(path), "reviews")


def test_json_array_of_records(tmp_path: Path) -> None:
    path = tmp_path / "reviews.json"
    records = [{"text": t, "label": lab} for t, lab in zip(TEXTS, LABELS, strict=True)]
    path.write_text(json.dumps(records), encoding="utf-8")
    check_sentiment(load_table_task(path), "reviews")


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "reviews.parquet"
    frame().to_parquet(path)
    check_sentiment(load_table_task(path, name="custom"), "custom")


def test_saved_dataset_with_class_label_names(tmp_path: Path) -> None:
    import datasets

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    data = {"premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"], "label": [2, 0, 1]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(tmp_path / "nli")
    task = load_table_task(tmp_path / "nli")
    assert task.name == "nli" and task.is_pair
    assert task.text_a == ("p0", "p1", "p2") and task.text_b == ("h0", "h1", "h2")
    assert task.label_names == ("entailment", "neutral", "contradiction")
    assert task.labels.tolist() == [2, 0, 1]


def test_saved_dataset_dict_needs_a_split(tmp_path: Path) -> None:
    import datasets

    def part(offset: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"sentence": [f"s{offset}", "t"], "label": [1, 0]})

    datasets.DatasetDict({"train": part(0), "validation": part(1)}).save_to_disk(tmp_path / "d")
    by_syntax = load_table_task(f"{tmp_path / 'd'}::validation")
    by_argument = load_table_task(tmp_path / "d", split="validation")
    assert by_syntax == by_argument
    assert by_syntax.name == "d:validation" and by_syntax.text_a == ("s1", "t")
    assert by_syntax.label_names == ("0", "1") and by_syntax.labels.tolist() == [1, 0]
    with pytest.raises(WeightscapeError, match=r"splits train, validation"):
        load_table_task(tmp_path / "d")
    with pytest.raises(WeightscapeError, match=r"Unknown split 'test'.*train, validation"):
        load_table_task(f"{tmp_path / 'd'}::test")
    with pytest.raises(WeightscapeError, match=r"Two different splits"):
        load_table_task(f"{tmp_path / 'd'}::train", split="validation")


def test_sentence_pair_columns_and_explicit_columns(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    frame(sentence1=["a", "b"], sentence2=["c", "d"], gold=["yes", "no"]).to_csv(path, index=False)
    task = load_table_task(path, label_column="gold", label_names=["no", "yes"])
    assert task.text_a == ("a", "b") and task.text_b == ("c", "d")
    assert task.labels.tolist() == [1, 0]
    single = load_table_task(path, text_columns="sentence2", label_column="gold")
    assert single.text_a == ("c", "d") and not single.is_pair


def test_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "ints.csv"
    frame(text=["a", "b", "c"], label=[2, 0, 1]).to_csv(path, index=False)
    task = load_table_task(path)
    assert task.labels.tolist() == [2, 0, 1] and task.label_names == ("0", "1", "2")
    named = load_table_task(path, label_names=("neg", "neu", "pos"))
    assert named.label_names == ("neg", "neu", "pos")


def test_one_based_integer_labels_need_label_names(tmp_path: Path) -> None:
    path = tmp_path / "stars.parquet"
    frame(text=["a", "b", "c"], label=[1, 2, 2]).to_parquet(path)
    with pytest.raises(WeightscapeError, match=r"missing: \[0\].*Pass label_names"):
        load_table_task(path)
    with pytest.raises(WeightscapeError, match=r"outside range"):
        load_table_task(path, label_names=("one", "two"))


def test_string_label_outside_given_label_set(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    frame().to_csv(path, index=False)
    with pytest.raises(WeightscapeError, match=r"Labels \['neg'\].*\['positive', 'pos'\]"):
        load_table_task(path, label_names=("positive", "pos"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightscapeError, match=r"No file or directory at .*nowhere.csv"):
        load_table_task(tmp_path / "nowhere.csv")


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(WeightscapeError, match=r"Unsupported table format '\.xlsx'.*\.csv.*\.tsv"):
        load_table_task(path)


def test_missing_columns_list_available(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    frame(body=["a", "b"], label=[0, 1]).to_csv(path, index=False)
    with pytest.raises(WeightscapeError, match=r"Could not guess.*Available columns: body, label"):
        load_table_task(path)
    with pytest.raises(WeightscapeError, match=r"'title' .*Available columns: body, label"):
        load_table_task(path, text_columns="title")
    with pytest.raises(WeightscapeError, match=r"'gold' \(label_column\).*body, label"):
        load_table_task(path, text_columns="body", label_column="gold")


def test_empty_files(tmp_path: Path) -> None:
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(WeightscapeError, match=r"is empty"):
        load_table_task(blank)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    with pytest.raises(WeightscapeError, match=r"Task 'header' has no examples"):
        load_table_task(header_only)


def test_missing_values_are_reported_by_row(tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    path.write_text("text,label\na,1\n,0\nc,\n")
    with pytest.raises(WeightscapeError, match=r"Column 'text' .* rows 1 "):
        load_table_task(path)
    path.write_text("text,label\na,1\nb,0\nc,\n")
    with pytest.raises(WeightscapeError, match=r"Label column 'label' .* rows 2 "):
        load_table_task(path)


def test_split_for_a_plain_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    frame().to_csv(path, index=False)
    with pytest.raises(WeightscapeError, match=r"only apply to a saved DatasetDict"):
        load_table_task(f"{path}::train")


def test_directory_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(WeightscapeError, match=r"not a dataset written by datasets' save_to_disk"):
        load_table_task(tmp_path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(WeightscapeError, match=r"Could not read .*broken.parquet.* as PARQUET"):
        load_table_task(path)
