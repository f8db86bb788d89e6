"""Padding for classifiers that read the last token (GPT-2, Llama, Qwen2, Mistral, ...).

A decoder-only sequence classifier in transformers scores the rightmost token that is not the
pad token (``config.pad_token_id``); without a pad id it refuses batches of more than one
example. Its positions are numbered from the first token whatever the attention mask says, so
only right padding leaves a real token where it is in the unpadded input. So for these
classifiers batches are padded on the right with the model's own pad id, and a model saved
without one (GPT-2 as most users save it) follows the Hugging Face convention: the tokenizer's pad
token if it has one, else its end-of-sequence token, set as the working model's
``config.pad_token_id``. Then a padded batch gives each example the logits it has alone.

What is computed then depends on this rule as well as on the config and tokenizer files (both
already in store keys), so :func:`input_rules` names it in the keys of such models' points.
"""

from __future__ import annotations

import logging
from typing import Any

from weightscape.errors import WeightscapeError

logger = logging.getLogger(__name__)

# Bump when the rule below changes: keys of points computed under another rule never match.
DECODER_PADDING = "right, model pad id, else tokenizer pad, else eos/1"
# Decoder-only models whose classifier reads the last token, but which pad on the left by design
# (XLNet's summary takes the last position, whatever it holds).
_LEFT_PADDED = frozenset({"xlnet"})
_said: set[str] = set()  # one line per model and process, not one per point


def reads_last_token(config: Any) -> bool:
    """Whether the model is a decoder-only classifier scoring its last non-pad token.

    Decoder-only: transformers has a causal-LM class and no masked-LM class for the model type,
    and the model is not an encoder-decoder (BART scores its end-of-sequence token instead).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = getattr(config, "model_type", None)
    return (
        not getattr(config, "is_encoder_decoder", False)
        and kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        and kind not in _LEFT_PADDED
    )


def input_rules(config: Any) -> dict[str, str]:
    """Store-key entries for how inputs are padded for this model (empty for most models)."""
    return {"padding": DECODER_PADDING} if reads_last_token(config) else {}


def pad_for_last_token(tokenizer: Any, model: Any, name: str) -> None:
    """Make ``tokenizer`` pad on the right with ``model``'s pad id, filling a missing one (see
    the module docstring); says so once per model when the pad token is filled in.

    Raises:
        WeightscapeError: When the model and the tokenizer name no pad and no end-of-sequence
            token.
    """
    config = model.config
    if not reads_last_token(config):
        return
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    pad_id = text_config.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.pad_token_id
        source = "the tokenizer's pad token"
        if pad_id is None:
            pad_id = tokenizer.eos_token_id
            if pad_id is None:
                pad_id = text_config.eos_token_id
            source = "its end-of-sequence token"
        if isinstance(pad_id, list):
            pad_id = pad_id[0] if pad_id else None
        if pad_id is None:
            raise WeightscapeError(
                f"Checkpoint '{name}' is a decoder classifier with no pad token, and neither its "
                "config nor its tokenizer names a pad or end-of-sequence token to pad with. Set "
                "pad_token_id in its config.json, or give a tokenizer with a pad token "
                "(--tokenizer)."
            )
        config.pad_token_id = text_config.pad_token_id = pad_id
        _say_once(
            f"'{name}' has no pad token: padding with {source} (id {pad_id}), the Hugging Face "
            "convention; the classifier reads each example's last real token."
        )
    if tokenizer.pad_token_id != pad_id:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad_id)
    tokenizer.padding_side = "right"


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        logger.warning(message)
