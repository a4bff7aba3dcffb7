"""`TabularGPT`: GPT-2 over a table's rows with each column marker folded into the token before it.

A row is laid out ``<bos> [c1] v1 [c2] v2a v2b ... <eos>`` (`tabline.training.tokenizer`). The markers say
which column comes next, which the model must know when columns come in a random order, but a marker is
never predicted and adds a position: a third or more of every sequence, paid at every training step and at
every sampling step. So the model never sees a marker as a position of its own: each marker's embedding is
added to the token before it, and ``<eos>`` (never scored) is dropped:

    logical  <bos>  [c1]  v1  [c2]  v2a  v2b  <eos>
    model    <bos>+[c1]   v1+[c2]   v2a  v2b

Same information, 1 + (value tokens) positions instead of 2 + columns + (value tokens). Callers still pass
and get the logical layout: ``forward(input_ids=logical ids)`` returns logits laid out as if every position
had been fed (zeros where a marker would be predicted; those are never scored), so `row_logprob`, the
training loss and TabGRAA's losses read it as before. Measured on diamonds (10 columns): 27 positions become
16; see docs/tabular-lm.md for what that did to fit and sampling speed.

A model saved before this layout existed has no ``marker_ids`` in its config and runs unfolded, as it was
trained.

Example:
    >>> import torch
    >>> from transformers import GPT2Config
    >>> gpt = TabularGPT(GPT2Config(vocab_size=12, n_positions=8, n_embd=8, n_layer=1, n_head=2, bos_token_id=1,
    ...                             eos_token_id=2, marker_ids=[4, 5])).eval()
    >>> ids = torch.tensor([[1, 4, 7, 5, 9, 2]])          # <bos> [c0] 7 [c1] 9 <eos>
    >>> gpt.folded_length(ids.shape[1])
    3
    >>> out = gpt(input_ids=ids)
    >>> # logits at t predict t + 1: at 1 and 3 the values; at 2 (predicting the marker [c1]) nothing is computed
    >>> out.logits.shape, [bool(out.logits[0, t].abs().sum() > 0) for t in range(5)]
    (torch.Size([1, 6, 12]), [False, True, False, True, False])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel
from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions

from tabline.training.codec import EOS


def folded_length(logical_length: int, n_markers: int) -> int:
    """Positions a folded model runs for a whole row of ``logical_length`` tokens holding ``n_markers`` markers
    (no markers: nothing is folded, every token is a position).

    Example:
        >>> folded_length(27, 10), folded_length(27, 0)
        (16, 27)
    """
    return logical_length - n_markers - 1 if n_markers else logical_length


class TabularGPT(GPT2LMHeadModel):
    """GPT-2 with folded column markers (see the module docstring); plain GPT-2 when ``config.marker_ids`` is
    empty or absent (models saved before the folded layout)."""

    def __init__(self, config):
        super().__init__(config)
        # a plain tuple, not a buffer: from_pretrained builds modules on the meta device and would leave a
        # non-persistent buffer uninitialised
        self.marker_ids: tuple[int, ...] = tuple(int(m) for m in getattr(config, "marker_ids", None) or ())

    @property
    def folded(self) -> bool:
        return bool(self.marker_ids)

    def folded_length(self, logical_length: int) -> int:
        """Model positions for a full logical row of ``logical_length`` tokens (<bos>, markers, values, <eos>)."""
        return folded_length(logical_length, len(self.marker_ids))

    def fold(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logical ids (B, T) -> (kept positions (B, K), kept ids (B, K), the marker after each or -1 (B, K)).

        Every row holds the same number of markers (every column once), so K is the same for all rows."""
        b, t = ids.shape
        markers = torch.tensor(self.marker_ids, dtype=ids.dtype, device=ids.device)
        is_marker = torch.isin(ids, markers)  # (B, T)
        drop = is_marker | (ids == EOS)
        k = int((~drop[0]).sum())
        if bool(((~drop).sum(1) != k).any()):
            raise ValueError("rows in one batch must hold the same number of markers")
        arange = torch.arange(t, device=ids.device)
        # kept positions in order: sort dropped ones to the end, then cut
        kept = torch.sort(torch.where(drop, t + arange, arange), dim=1).values[:, :k]  # (B, K)
        after = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], EOS)], dim=1)  # (B, T) the next logical token
        nxt = after.gather(1, kept)
        plus = torch.where(torch.isin(nxt, markers), nxt, torch.full_like(nxt, -1))
        return kept, ids.gather(1, kept), plus

    def embed(self, ids: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the following marker's added: (B, K), (B, K) -> (B, K, D)."""
        wte = self.transformer.wte
        extra = wte(plus.clamp(min=0)) * (plus >= 0).unsqueeze(-1).to(wte.weight.dtype)
        return wte(ids) + extra

    def forward(self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **kwargs):
        if not self.folded or input_ids is None:
            return super().forward(input_ids=input_ids, labels=labels, **kwargs)
        if kwargs.get("attention_mask") is not None or kwargs.get("past_key_values") is not None:
            raise ValueError("a folded TabularGPT takes whole rows: no attention_mask or past_key_values")
        kwargs.pop("attention_mask", None)
        kwargs.pop("past_key_values", None)
        b, t = input_ids.shape
        kept, ids, plus = self.fold(input_ids)  # (B, K) each
        out = super().forward(inputs_embeds=self.embed(ids, plus), use_cache=False, **kwargs)
        short = out.logits  # (B, K, V): position i predicts the token at logical position kept[i + 1]
        loss = None
        if labels is not None:
            target = labels.gather(1, kept[:, 1:])  # (B, K - 1)
            loss = F.cross_entropy(short[:, :-1].reshape(-1, short.shape[-1]).float(), target.reshape(-1),
                                   ignore_index=-100)
        # logical layout for the callers: logits at t predict the token at t + 1
        full = short.new_zeros(b, t, short.shape[-1])
        full.scatter_(1, (kept[:, 1:] - 1)[..., None].expand(-1, -1, short.shape[-1]), short[:, :-1])
        return CausalLMOutputWithCrossAttentions(loss=loss, logits=full)
