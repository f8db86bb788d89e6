"""A toy zoo in a folder, in a fraction of a second: to try the API, and for its examples.

:func:`make_toy_zoo` writes tiny random BERT sentiment classifiers (2 layers, hidden 32, a
25-word WordPiece vocabulary), each a ``save_pretrained`` folder with safetensors weights and the
tokenizer, a ``zoo.yaml`` naming them, and ``reviews.csv``, 60 labelled sentences over the same
vocabulary. The models are untrained: their curves say nothing about language, but every call of
the API runs on them, offline, as on real checkpoints.

>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> manifest = make_toy_zoo(folder, models=2)
>>> manifest.name, sorted(p.name for p in folder.iterdir())
('zoo.yaml', ['reviews.csv', 'toy-0', 'toy-1', 'zoo.yaml'])
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

POSITIVE = ("good", "great", "fine", "lovely", "superb")
NEGATIVE = ("bad", "awful", "poor", "boring", "dull")
FILLER = ("the", "a", "movie", "film", "plot", "was", "very", "and", "story", "acting")
VOCABULARY = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER)
LABELS = ("negative", "positive")
TASK_FILE = "reviews.csv"


def make_toy_zoo(folder: str | Path, models: int = 3, examples: int = 60, seed: int = 0) -> Path:
    """Write ``models`` tiny random classifiers (``toy-0``, ``toy-1``, ... from seeds ``seed``,
    ``seed + 1``, ...), their ``zoo.yaml`` and ``reviews.csv`` into ``folder``.

    Returns:
        The manifest's path (``folder/zoo.yaml``); the task is ``folder/reviews.csv``.
    """
    import torch
    import yaml
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from weightscape.logs import quiet_libraries

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCABULARY)})
    config = BertConfig(
        vocab_size=len(VOCABULARY),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    entries = []
    for i in range(models):
        torch.manual_seed(seed + i)
        name = f"toy-{i}"
        with quiet_libraries("transformers"):  # no progress bar for writing the weights
            BertForSequenceClassification(config).save_pretrained(str(folder / name))
            tokenizer.save_pretrained(str(folder / name))
        entries.append({"name": name, "path": name, "tags": {"seed": seed + i}})
    manifest = folder / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": entries}, sort_keys=False))
    _write_reviews(folder / TASK_FILE, examples, seed)
    return manifest


def _write_reviews(path: Path, examples: int, seed: int) -> None:
    """Sentences labelled by the one positive or negative word each holds."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for _ in range(examples):
            label = rng.randrange(2)
            words = rng.choices(FILLER, k=rng.randint(3, 8))
            words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
            writer.writerow([" ".join(words), LABELS[label]])
