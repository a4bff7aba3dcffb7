"""Constrained, batched decoding with a KV cache.

At every step the sampler knows which column and slot comes next (it chose the column order), so it
looks only at that slot's contiguous slice of the vocabulary and masks what the schema forbids: the
missing-value token of a column without missing values, and fine tokens past the chosen coarse bin's
count. Every sampled row is therefore schema-valid by construction. Markers and conditioned values are
*forced*: they are fed in one forward call together with the next free step, so a row costs one model
call per free slot.

Example (internal; `TabularLM.sample` is the public entry point):
    >>> import torch
    >>> top_p_filter(torch.tensor([[2.0, 1.0, -5.0]]), 0.5).isinf().tolist()
    [[False, True, True]]
"""
from __future__ import annotations

import inspect

import numpy as np
import torch

from tabline.training.tokenizer import BOS, PAD, TableTokenizer


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf the logits outside the smallest set whose probability reaches ``top_p``. (B, K) -> (B, K)"""
    if top_p >= 1.0:
        return logits
    sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)  # (B, K)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)  # (B, K)
    drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keeps the token that crosses top_p
    drop[:, 0] = False
    out = logits.clone()
    out.scatter_(1, idx, sorted_logits.masked_fill(drop, float("-inf")))
    return out


def cache_keyword(model: torch.nn.Module) -> str:
    """The name under which ``model``'s forward takes and returns its KV cache.

    transformers 5 renamed ``past_key_values`` to ``cache``: the old name still works there but warns on every
    call (and is due to go), while 4.x knows only the old one, so the name is read off the signature.

    Example:
        >>> class Old(torch.nn.Module):
        ...     def forward(self, input_ids, past_key_values=None, use_cache=False): ...
        >>> cache_keyword(Old())
        'past_key_values'
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _pick(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """Sample one index per row from masked logits (B, K) -> (B,)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(top_p_filter(logits / temperature, top_p), dim=-1)  # (B, K)
    return torch.multinomial(probs, 1, generator=gen).squeeze(1)


@torch.no_grad()
def sample_values(
    model: torch.nn.Module,
    tok: TableTokenizer,
    forced: np.ndarray,
    order: list[int],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator,
) -> np.ndarray:
    """Sample value tokens for one batch.

    ``forced`` (B, d, 2) holds condition tokens, -1 where the model must choose. ``order`` lists modelled
    column indices in generation order (conditioned columns first). Returns (B, d, 2) value tokens.
    """
    b = forced.shape[0]
    values = np.where(forced >= 0, forced, PAD)  # (B, d, 2)
    pending = [torch.full((b, 1), BOS, dtype=torch.long)]
    past, cache = None, cache_keyword(model)
    for j in order:
        code = tok.codes[j]
        pending.append(torch.full((b, 1), code.marker, dtype=torch.long))
        for slot in range(code.slots):
            if forced[0, j, slot] >= 0:
                pending.append(torch.from_numpy(forced[:, j, slot : slot + 1]).long())
                continue
            out = model(input_ids=torch.cat(pending, dim=1), use_cache=True, **{cache: past})
            past = getattr(out, cache)
            logits = out.logits[:, -1, :].float()  # (B, V)
            if slot == 0:
                lo, hi = code.slot0_range
                part = logits[:, lo:hi].clone()  # (B, n_values [+1 for NA])
            else:
                lo, hi = code.fine_first, code.fine_none_id + 1
                part = logits[:, lo:hi].clone()  # (B, fine_size + 1)
                coarse = torch.from_numpy(values[:, j, 0] - code.first)  # (B,)
                is_na = coarse == code.n_values
                n_fine = torch.from_numpy(code.n_fine())[coarse.clamp(max=code.n_values - 1)]  # (B,)
                k = torch.arange(hi - lo)[None, :]  # (1, fine_size + 1)
                allowed = torch.where(is_na[:, None], k == hi - lo - 1, k < n_fine[:, None])
                part = part.masked_fill(~allowed, float("-inf"))
            choice = _pick(part, temperature, top_p, generator) + lo  # (B,)
            values[:, j, slot] = choice.numpy()
            pending = [choice[:, None]]
    return values
