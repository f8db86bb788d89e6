"""Shared fixtures: tiny BERT classifiers built from a config and saved as safetensors.

No hub ids: the tokenizer is a WordPiece vocabulary written here, the models are random 2-layer,
hidden-32 BERTs, and the task is generated sentiment-like text over that vocabulary.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # CLI tests run in child processes too


def pytest_configure(config):
    """One torch thread: tiny-model points run ~5x faster than with 2 threads on 2 cores."""
    import torch

    torch.set_num_threads(1)


POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "boring", "dull"]
FILLER = ["the", "a", "movie", "film", "plot", "was", "very", "and", "story", "acting"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]


# The classes the tiny classifiers are built for, named in their configs (id2label) as every
# finetuned checkpoint is: outputs are matched to a task's labels by name.
LABEL_NAMES = {2: ("negative", "positive"), 3: ("entailment", "neutral", "contradiction")}


def tiny_config(num_labels: int = 2, hidden: int = 32):
    """A 2-layer BERT config small enough to evaluate in milliseconds."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    if num_labels in LABEL_NAMES:
        config.id2label = dict(enumerate(LABEL_NAMES[num_labels]))
        config.label2id = {name: i for i, name in config.id2label.items()}
    return config


def save_tiny_model(
    folder: Path, seed: int, tokenizer_dir: Path, num_labels: int = 2, hidden: int = 32
) -> Path:
    """Build a random tiny BERT classifier with ``seed`` and save it as an HF folder."""
    import shutil

    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(tiny_config(num_labels, hidden))
    model.save_pretrained(str(folder))
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def generated_texts(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Sentences whose label is whether a positive or negative word is in them."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 9))))
        words.insert(
            int(rng.integers(len(words) + 1)), str(rng.choice(POSITIVE if label else NEGATIVE))
        )
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A saved WordPiece tokenizer over the tiny vocabulary."""
    from transformers import BertTokenizerFast

    folder = tmp_path_factory.mktemp("tokenizer")
    # transformers 5 ignores vocab_file here (every word became [UNK]); pass the vocabulary.
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)})
    assert tokenizer("good movie")["input_ids"] == [2, VOCAB.index("good"), VOCAB.index("movie"), 3]
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, tokenizer_dir) -> list[Path]:
    """Three tiny BERT classifiers (seeds 0, 1, 2) saved as safetensors model folders."""
    root = tmp_path_factory.mktemp("models")
    return [save_tiny_model(root / f"m{seed}", seed, tokenizer_dir) for seed in range(3)]


@pytest.fixture(scope="session")
def tiny_task():
    """48 generated labelled sentences."""
    from weightscape.data import make_task

    texts, labels = generated_texts(48)
    return make_task("generated", texts, labels, ("negative", "positive"))


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    """The generated task as a CSV file (text,label) with named labels (negative, positive),
    which the tiny classifiers' configs name too."""
    import csv

    path = tmp_path_factory.mktemp("data") / "generated.csv"
    texts, labels = generated_texts(60, seed=1)
    names = [LABEL_NAMES[2][label] for label in labels]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, names, strict=True))
    return path


HIDDEN, FFN, HEAD_DIM = 32, 64, 16


def permuted_twin(state: dict) -> dict:
    """The same function from other weights: permute the feed-forward neurons of every layer and
    swap the two attention heads (permutation symmetries of a transformer). Averaging a model
    with its twin averages unrelated neurons: the line between them crosses a loss barrier."""
    import torch

    out = dict(state)
    generator = torch.Generator().manual_seed(1)
    heads = torch.cat([torch.arange(HEAD_DIM, HIDDEN), torch.arange(0, HEAD_DIM)])
    for layer in range(2):
        pre = f"bert.encoder.layer.{layer}."
        ffn = torch.randperm(FFN, generator=generator)
        out[pre + "intermediate.dense.weight"] = state[pre + "intermediate.dense.weight"][ffn]
        out[pre + "intermediate.dense.bias"] = state[pre + "intermediate.dense.bias"][ffn]
        out[pre + "output.dense.weight"] = state[pre + "output.dense.weight"][:, ffn]
        for part in ("query", "key", "value"):
            for kind in ("weight", "bias"):
                name = f"{pre}attention.self.{part}.{kind}"
                out[name] = state[name][heads]
        name = pre + "attention.output.dense.weight"
        out[name] = state[name][:, heads]
    return {k: v.contiguous() for k, v in out.items()}


@pytest.fixture(scope="session")
def trained_tiny(tiny_models, tiny_task, tmp_path_factory):
    """A tiny BERT finetuned on the generated task until it solves it."""
    from weightscape.training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(name="a", base=str(tiny_models[0]), steps=120, batch_size=16, lr=1e-3)
    return finetune(config, tiny_task, tmp_path_factory.mktemp("trained"))[-1]


@pytest.fixture(scope="session")
def barrier_pair(trained_tiny, tmp_path_factory):
    """The trained tiny model and its permuted twin: equal function, a barrier between them."""
    import shutil

    from safetensors.torch import load_file, save_file

    from weightscape.models.checkpoint import Checkpoint

    folder = tmp_path_factory.mktemp("twin") / "twin"
    shutil.copytree(trained_tiny.path, folder)
    twin = permuted_twin(load_file(trained_tiny.path / "model.safetensors"))
    save_file(twin, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return trained_tiny, Checkpoint.from_path(folder, name="twin")


def saved_tensors(checkpoint) -> dict:
    """A checkpoint's tensors under the tuned model's names: its model.safetensors, or for a
    LoRA run's peft adapter folder its base's frozen tensors and its own, as the engine reads
    them."""
    from safetensors.torch import load_file

    from weightscape.models.checkpoint import TensorReader

    if not (checkpoint.path / "adapter_config.json").is_file():
        return load_file(str(checkpoint.path / "model.safetensors"))
    reader = TensorReader(checkpoint)
    return {name: reader.get(name) for name in reader.keys()}  # noqa: SIM118
