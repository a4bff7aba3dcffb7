"""A tiny random-weight chat model directory, built offline in well under a second.

Tests of the ``hf:PATH`` backend need a real transformers directory (config, weights, tokenizer,
chat template) but cannot download one, and a real model would be far too slow anyway. The text it
writes is gibberish; what matters is that it goes through exactly the same loading, templating,
generation and decoding code as a real checkpoint.
"""
from __future__ import annotations

from pathlib import Path

# Every character an agent prompt or a JSON answer is likely to need, so nothing maps to <unk>.
_CORPUS = [
    'You are a careful data generator. Answer with JSON only.',
    '{"rows": [{"age": 42, "region": "north", "member": true, "income": 1234.5}]}',
    '{"name": "x", "score": -0.25, "ok": false, "note": null}',
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789",
    "[]{}()<>:;,.!?'\"-_+=*/\\|@#$%^&~` \n\t",
    "System: User: Assistant: system user assistant",
]

# Roles in plain text keep the template trivially readable; the trailing "assistant:" is the cue the
# generation prompt adds, exactly like real chat templates do.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def make_tiny_chat_model(path: str | Path, *, n_positions: int = 512) -> Path:
    """Write a 1-layer GPT-2 with a byte-level BPE tokenizer and a chat template to ``path``.

    Weights come from ``torch.manual_seed(0)``, so two calls give identical directories.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    special = ["<|bos|>", "<|eos|>", "<|pad|>"]
    raw = Tokenizer(models.BPE())
    # Byte-level: any input string encodes (no <unk>), and decoding round-trips exactly.
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(_CORPUS, trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=32,
        n_positions=n_positions,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    return path
