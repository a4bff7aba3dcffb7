"""An inference-only GPT-2 forward for sampling: the trained weights, none of the training machinery.

`transformers`' GPT-2 is what tabline trains and saves, but for decoding a few thousand short rows at once
its generality costs more than the arithmetic: cache objects rebuilt per call, attention masks built per
call, logits over the whole vocabulary at every position. `Decoder` reads the same weights once and runs
the same maths with a preallocated key/value cache, computing logits only for the vocabulary slice the
next column may take.

Precision: where the CPU multiplies bfloat16 in hardware (AVX512-BF16 / AMX; measured 5-8x the float32
matmul rate on such a CPU, benchmarks/RESULTS.md) the layers run in bfloat16 (layer norms and softmax
accumulate in float32 inside their kernels); attention scores, the final layer norm and the logits are
float32. Elsewhere everything is float32. tests/training/test_decoder.py bounds the difference to the
float32 next-token distributions.

Device: the weights are copied to the device given (default: where the model is), so a model resting on the
CPU samples on a GPU; there "auto" precision is bfloat16 when the GPU supports it, and a batch is sized from
the GPU's free memory (`tabline.training.device.gpu_batch_rows`).

Example:
    >>> import torch
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> gpt = GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=8, n_embd=16, n_layer=1, n_head=2)).eval()
    >>> dec = Decoder(gpt, precision="float32")
    >>> dec.start(batch=3, length=8)
    >>> h = dec.step(torch.tensor([[1, 5]] * 3))  # two tokens in, the last position's hidden state out
    >>> ref = gpt(input_ids=torch.tensor([[1, 5]] * 3)).logits[:, -1, 4:9]
    >>> bool(torch.allclose(dec.logits(h, 4, 9), ref, atol=1e-4))
    True
"""
from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F

from tabline.training.device import gpu_batch_rows
from tabline.training.gpt import folded_length

Precision = Literal["auto", "float32", "bfloat16"]


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16; Linux flags).

    Without them bfloat16 matmuls are emulated and slower than float32, so ``precision="auto"`` needs this.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """The matmul dtype for ``precision`` on ``device``: bfloat16 only where it is fast there.

    Example:
        >>> resolve_precision("float32", torch.device("cpu"))
        torch.float32
    """
    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


class _Layer:
    def __init__(self, block, dtype: torch.dtype, device: torch.device):
        def get(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(device=device, dtype=dtype)

        self.ln1 = (get(block.ln_1.weight), get(block.ln_1.bias), block.ln_1.eps)
        self.ln2 = (get(block.ln_2.weight), get(block.ln_2.bias), block.ln_2.eps)
        # transformers' Conv1D stores (in, out): x @ W + b
        self.w_qkv, self.b_qkv = get(block.attn.c_attn.weight), get(block.attn.c_attn.bias)
        self.w_out, self.b_out = get(block.attn.c_proj.weight), get(block.attn.c_proj.bias)
        self.w_fc, self.b_fc = get(block.mlp.c_fc.weight), get(block.mlp.c_fc.bias)
        self.w_proj, self.b_proj = get(block.mlp.c_proj.weight), get(block.mlp.c_proj.bias)


class Decoder:
    """Batched incremental GPT-2 decoding over a preallocated KV cache. See the module docstring."""

    def __init__(self, model: torch.nn.Module, precision: Precision = "auto",
                 device: torch.device | str | None = None):
        cfg = model.config
        if getattr(cfg, "activation_function", "gelu") not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"unsupported activation {cfg.activation_function!r}")
        if cfg.scale_attn_by_inverse_layer_idx or cfg.reorder_and_upcast_attn or not cfg.scale_attn_weights:
            raise ValueError("only GPT-2's standard attention scaling is supported")
        body = model.transformer
        self.device = torch.device(device) if device is not None else body.wte.weight.device
        self.mm = resolve_precision(precision, self.device)
        self.n_head, self.n_embd = cfg.n_head, cfg.n_embd
        self.head_dim = cfg.n_embd // cfg.n_head
        self.gelu = "none" if cfg.activation_function == "gelu" else "tanh"
        def f32(t: torch.Tensor) -> torch.Tensor:  # no copy when already float32 on this device (the CPU path)
            return t.detach().to(device=self.device, dtype=torch.float32)

        self.wte = f32(body.wte.weight)  # (V, D) float32: the tied output head
        self.wte_in = self.wte.to(self.mm)
        # markers folded into the token before them (tabline.training.gpt); the extra zero row is "no marker"
        self.markers = len(getattr(model, "marker_ids", ()))  # 0: a plain GPT-2, markers fed as tokens
        self.wte_plus = torch.cat([self.wte_in, self.wte_in.new_zeros(1, self.n_embd)])  # (V + 1, D)
        self.wpe = body.wpe.weight.detach().to(device=self.device, dtype=self.mm)  # (P, D)
        self.ln_f = (f32(body.ln_f.weight), f32(body.ln_f.bias), body.ln_f.eps)
        self.layers = [_Layer(block, self.mm, self.device) for block in body.h]
        self.keys: list[torch.Tensor] = []
        self.vals: list[torch.Tensor] = []
        self.pos = 0

    @property
    def folded(self) -> bool:
        """True when markers are added to the token before them instead of being fed (`TabularGPT`)."""
        return self.markers > 0

    def positions(self, logical_length: int) -> int:
        """Cache positions a whole row of ``logical_length`` tokens needs (<bos>, markers, values, <eos>)."""
        return folded_length(logical_length, self.markers)

    def batch_for(self, length: int, budget_bytes: int = 256 * 2**20, most: int = 4096) -> int:
        """Rows per batch whose key/value cache for ``length`` tokens fits ``budget_bytes`` (64..``most``).

        On a GPU the budget is half its free memory instead, for the cache plus one step's activations (at
        worst a whole row fed at once: scores over the cache, the MLP's 4x width), at most 65,536 rows:
        thousands of rows in flight are what keep a GPU busy on a model this small."""
        per_row = 2 * len(self.layers) * length * self.n_embd * self.mm.itemsize
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            working = length * (8 * self.n_embd + self.n_head * length) * 4  # float32 upper bound, bytes
            return gpu_batch_rows(free, per_row + working)
        return int(min(most, max(64, budget_bytes // per_row)))

    def start(self, batch: int, length: int) -> None:
        """Empty the cache for ``batch`` new sequences of at most ``length`` tokens."""
        shape = (batch, self.n_head, length, self.head_dim)
        self.keys = [torch.empty(shape, dtype=self.mm, device=self.device) for _ in self.layers]
        self.vals = [torch.empty(shape, dtype=self.mm, device=self.device) for _ in self.layers]
        self.pos = 0

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, plus: torch.Tensor | None = None) -> torch.Tensor:
        """Feed ``ids`` (B, k), the next k tokens of every sequence, with ``plus`` (B, k) the marker folded into
        each (-1: none; folded models only); return the hidden state after the last one, (B, D) float32, ready
        for `logits`."""
        b, k = ids.shape
        p0, p1 = self.pos, self.pos + k
        emb = self.wte_in[ids] if plus is None else self.wte_in[ids] + self.wte_plus[plus]
        h = (emb + self.wpe[p0:p1]).view(b * k, self.n_embd)  # (B*k, D)
        # a new token sees the whole cache and the new tokens up to itself
        hidden = None if k == 1 else ~torch.ones(k, p1, dtype=torch.bool, device=self.device).tril(p0)
        scale = self.head_dim ** -0.5
        last = len(self.layers) - 1
        for i, (layer, kc, vc) in enumerate(zip(self.layers, self.keys, self.vals)):
            a = F.layer_norm(h, (self.n_embd,), *layer.ln1)
            qkv = torch.addmm(layer.b_qkv, a, layer.w_qkv).view(b, k, 3, self.n_head, self.head_dim)
            kc[:, :, p0:p1] = qkv[:, :, 1].transpose(1, 2)
            vc[:, :, p0:p1] = qkv[:, :, 2].transpose(1, 2)
            q = qkv[:, :, 0].transpose(1, 2)  # (B, H, k, hd)
            if i == last and k > 1:
                # only the last position's output is read: the rest of the last layer is done for it alone
                q, h, hidden, k = q[:, :, -1:], h.view(b, k, self.n_embd)[:, -1], None, 1
            # SDPA's CPU kernels are tuned for long queries; for 1-2 new tokens over a short cache two batched
            # matmuls over the cache as it lies (the key slice read transposed, no copy) measured ~2x faster
            scores = torch.matmul(q, kc[:, :, :p1].transpose(-1, -2)).float() * scale  # (B, H, k, p1)
            if hidden is not None:
                scores.masked_fill_(hidden, float("-inf"))
            att = torch.matmul(torch.softmax(scores, dim=-1).to(self.mm), vc[:, :, :p1])  # (B, H, k, hd)
            att = att.transpose(1, 2).reshape(b * k, self.n_embd)
            h = torch.addmm(h, att, layer.w_out).add_(layer.b_out)
            m = F.gelu(torch.addmm(layer.b_fc, F.layer_norm(h, (self.n_embd,), *layer.ln2), layer.w_fc),
                       approximate=self.gelu)
            h = torch.addmm(h, m, layer.w_proj).add_(layer.b_proj)
        self.pos = p1
        out = h.view(b, k, self.n_embd)[:, -1].float()
        return F.layer_norm(out, (self.n_embd,), *self.ln_f)  # (B, D)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """float32 logits of vocabulary ids [lo, hi) only: (B, D) -> (B, hi - lo)."""
        return hidden @ self.wte[lo:hi].T
