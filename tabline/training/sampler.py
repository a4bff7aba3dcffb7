"""Constrained, batched decoding with a KV cache (`Decoder`).

At every step the sampler knows which column and slot comes next (it chose the column order), so it
looks only at that slot's contiguous slice of the vocabulary and masks what the schema forbids: the
missing-value token of a column without missing values, and fine tokens past the chosen coarse bin's
count. Every sampled row is therefore schema-valid by construction. Markers and conditioned values are
*forced*: a marker rides on the token before it (`tabline.training.gpt`; older models feed it as a token of its
own) and conditioned values are fed in one forward call together with the next free step, so a row costs one
model call per free slot.

Device: everything the steps touch (token ids, masks, the generator's draws) lives on the decoder's device;
each chosen token comes back to the CPU so the next slot's fine mask and the result are NumPy, as decoding
needs. On the CPU those moves are no-ops, so its numbers and speed are what they were.

Example (internal; `TabularLM.sample` is the public entry point):
    >>> import torch
    >>> top_p_filter(torch.tensor([[2.0, 1.0, -5.0]]), 0.5).isinf().tolist()
    [[False, True, True]]
"""
from __future__ import annotations

import numpy as np
import torch

from tabline.training.decoder import Decoder
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


def pick(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
    """Sample one index per row from masked logits (B, K) -> (B,): inverse CDF, one uniform draw per row.

    `torch.multinomial` draws an exponential per allowed token (it was 11 % of sampling time); the inverse
    CDF needs one uniform per row. A token of probability 0 is never picked: the first cumulative sum
    strictly above the draw always adds probability.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> pick(torch.tensor([[0.0, float("-inf"), 0.0]] * 1000), 1.0, 1.0, g).bincount(minlength=3)[1].item()
        0
    """
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(top_p_filter(logits / temperature, top_p), dim=-1)  # (B, K)
    cum = probs.cumsum(-1)  # (B, K)
    u = torch.rand((len(cum), 1), generator=gen, device=cum.device, dtype=cum.dtype) * cum[:, -1:]  # (B, 1)
    return torch.searchsorted(cum, u, right=True).squeeze(1).clamp_(max=cum.shape[1] - 1)


def fine_masks(code) -> torch.Tensor:
    """Allowed fine tokens per coarse token of a two-token column, (n_values + 1, fine_size + 1) bool.

    Row c < n_values: the fine tokens that exist in coarse bin c; the last row (the missing-value token) allows
    only the 'no fine value' token. Precomputed once per batch so decoding is one gather per step.
    """
    k = torch.arange(code.fine_size + 1)[None, :]  # (1, F + 1)
    n_fine = torch.from_numpy(code.n_fine())[:, None]  # (n_values, 1)
    present = k < n_fine  # (n_values, F + 1)
    none_only = (k == code.fine_size)  # (1, F + 1)
    return torch.cat([present, none_only], dim=0)


@torch.inference_mode()
def sample_values(
    decoder: Decoder,
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
    ``generator`` lives on the decoder's device.
    """
    b, dev = forced.shape[0], decoder.device
    values = np.where(forced >= 0, forced, PAD)  # (B, d, 2)
    decoder.start(b, decoder.positions(tok.row_length()))
    none = torch.full((b, 1), -1, dtype=torch.long, device=dev)
    # tokens not fed yet, and the marker folded into each (-1: none; folded decoders only)
    pending, plus = [torch.full((b, 1), BOS, dtype=torch.long, device=dev)], [none]
    for j in order:
        code = tok.codes[j]
        marker = torch.full((b, 1), code.marker, dtype=torch.long, device=dev)
        if decoder.folded:
            plus[-1] = marker  # the marker rides on the token before it
        else:
            pending.append(marker)
            plus.append(none)
        for slot in range(code.slots):
            if forced[0, j, slot] >= 0:
                pending.append(torch.from_numpy(forced[:, j, slot : slot + 1]).long().to(dev))
                plus.append(none)
                continue
            hidden = decoder.step(torch.cat(pending, dim=1),
                                  torch.cat(plus, dim=1) if decoder.folded else None)  # (B, D)
            if slot == 0:
                lo, hi = code.slot0_range
                part = decoder.logits(hidden, lo, hi)  # (B, n_values [+1 for NA])
            else:
                lo, hi = code.fine_first, code.fine_none_id + 1
                coarse = torch.from_numpy(values[:, j, 0] - code.first).to(dev)  # (B,) NA token: index n_values
                allowed = fine_masks(code).to(dev)[coarse]  # (B, fine_size + 1)
                part = decoder.logits(hidden, lo, hi).masked_fill(~allowed, float("-inf"))
            choice = pick(part, temperature, top_p, generator) + lo  # (B,)
            values[:, j, slot] = choice.cpu().numpy()
            pending, plus = [choice[:, None]], [none]
    return values
