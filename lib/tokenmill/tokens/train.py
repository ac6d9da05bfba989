"""Train a small byte-level BPE tokenizer and save it as a `transformers` tokenizer directory.

Used for the sample corpus, the tests and the benchmarks, which must not download a tokenizer; users point
the `tokens` stage at their production tokenizer instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def train_bpe(texts: Iterable[str], out_dir: str, vocab_size: int = 2000) -> str:
    """Train a GPT-2-style byte-level BPE on ``texts`` and `save_pretrained` it into ``out_dir``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # deterministic merges, no fork warnings
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")
    os.makedirs(out_dir, exist_ok=True)
    fast.save_pretrained(out_dir)
    return out_dir
