"""Our DPO and KTO losses give the same number as trl's own trainers on the same batch.

`tabline.training.losses` re-implements DPO and KTO as small functions of summed row log-probs, so a sign, a β
in the wrong place or a wrong reference point would train the wrong objective without failing anything. Here
real `trl.DPOTrainer` / `trl.KTOTrainer` objects (trl's tokenization, collator, fused LM head and
`compute_loss`) score one batch from their own dataloader with a policy and a separate reference model, both
tiny random-weight GPT-2s built offline. The summed completion log-probs of both models are then computed
independently (plain forward, log-softmax, gather over trl's ``completion_mask``) on fresh copies of the same
models, fed to `dpo_loss` / `kto_loss`, and the results must equal trl's loss to ~1e-5.

The policy is the reference with seeded weight noise and its logits divided by a temperature (``ln_f`` scaled),
so every log-ratio is non-zero: at the reference every loss collapses to a constant and the check would prove
nothing.

KTO's reference point. trl 1.16 always estimates KL for ``loss_type="kto"`` (only ``"apo_zero_unpaired"``, a
different loss, turns it off), from *mismatched* pairs: the completions of a batch rotated by one, (x_i, y_{i-1}),
and uses z₀ = clamp(mean(log π(y_{i-1}|x_i) − log π_ref(y_{i-1}|x_i)), min=0), detached. So we recompute that
z₀ the same way from the batch's ``KL_*`` tensors and pass it as ``kl=``. A flatter policy (temperature 2) gives
z₀ > 0; a sharper one (temperature ½) makes the raw estimate negative, trl clamps it to 0, and that case checks our
default ``kl=0.0``. (Our trainer's own z₀, `kto_reference_point`, is taken from a batch's own rows instead: that
choice is not trl's and is not what is checked here.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, GPT2LMHeadModel
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer  # a hard dependency: no trl must fail, not skip

from tabline.training.losses import dpo_loss, kto_loss
from tabline.training.policies import checkpointing_setting

# tiny_hf lives with the LLM-backend tests; pytest only puts a test file's own folder on sys.path.
_LLM_TESTS = str(Path(__file__).resolve().parents[1] / "agents" / "llm")
if _LLM_TESTS not in sys.path:
    sys.path.insert(0, _LLM_TESTS)
from tiny_hf import make_tiny_chat_model  # noqa: E402

torch.set_num_threads(1)

# trl's trainers read `model.is_gradient_checkpointing`, which transformers 5 deprecated: trl's call, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

# Prompts end on a token boundary and completions start with a space, so trl's tokenized prompt is a prefix of
# prompt+completion (no tokens merge across the boundary). Lengths differ so right padding is exercised.
DPO_ROWS = {
    "prompt": ["age:", "region:", "name:"],
    "chosen": [" 42", " north", ' "x", "ok": true'],
    "rejected": [" -0.25 abc", " null", " false"],
}
# Labels out of order, so picking desirable / undesirable rows by label is exercised too.
KTO_ROWS = {
    "prompt": ["age:", "region:", "ok:", "name:"],
    "completion": [" 42", " north south", " false", ' "x"'],
    "label": [False, True, True, False],
}
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_chat_model(tmp_path_factory.mktemp("tiny-trl") / "tiny")


def _policy_and_reference(model_dir: Path, *, seed: int, temperature: float):
    """Fresh (policy, reference): reference = the saved weights; policy = them plus seeded noise, at ``temperature``.

    Deterministic, so calling it twice gives two identical, independent pairs (one for trl to patch, one for us).
    """
    reference = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    policy = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
        # ln_f feeds the (tied) LM head linearly: scaling it by 1/T divides the logits by T.
        policy.transformer.ln_f.weight.div_(temperature)
        policy.transformer.ln_f.bias.div_(temperature)
    return policy, reference


def _common_args(tmp_path: Path, n_rows: int) -> dict:
    """Config shared by both trainers: one batch holding every row, live reference forwards, plain float32.

    ``bf16=False`` matters: trl's configs default to bf16 even on CPU, and the trainer then wraps the reference
    model (``accelerator.prepare_model``) in a bf16 autocast while the policy forward of a bare ``compute_loss``
    call runs in float32. The reference log-probs would then be ~1e-3 off and no 1e-5 comparison could hold.
    """
    return dict(output_dir=str(tmp_path), per_device_train_batch_size=n_rows, precompute_ref_log_probs=False,
                use_cpu=True, bf16=False, report_to=[], save_strategy="no", seed=0)


def _summed_completion_logps(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """Σ_t log p(x_t | x_<t) over completion tokens, by a plain forward. (B, L) ints -> (B,)."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, L, V)
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, L-1, V) predicts tokens 1..L-1
    token_logps = logps.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, L-1)
    return (token_logps * completion_mask[:, 1:]).sum(-1)  # (B,)


def _completion_ids(input_ids, completion_mask) -> list[list[int]]:
    return [ids[m.bool()].tolist() for ids, m in zip(input_ids, completion_mask)]


@pytest.mark.parametrize("beta, seed", [
    pytest.param(0.3, 0, id="beta0.3"),
    pytest.param(2.5, 1, id="beta2.5"),
])
def test_dpo_loss_matches_trl_dpo_trainer(model_dir, tmp_path, beta, seed):
    # Setup: a real DPOTrainer with a separate reference model (sigmoid loss = standard DPO), one batch of 3 pairs
    # from its own dataloader: rows [chosen_0..2, rejected_0..2].
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    policy, reference = _policy_and_reference(model_dir, seed=seed, temperature=1.0)
    args = DPOConfig(beta=beta, loss_type=["sigmoid"], **_common_args(tmp_path, len(DPO_ROWS["prompt"])),
                     **checkpointing_setting(DPOConfig))
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=Dataset.from_dict(DPO_ROWS),
                         processing_class=tokenizer)
    trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    ids, attn, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    assert ids.shape[0] == 2 * len(DPO_ROWS["prompt"])

    # Run: trl's loss, then ours from independently computed log-probs of untouched copies of the same models.
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch)
    pol_model, ref_model = _policy_and_reference(model_dir, seed=seed, temperature=1.0)
    pol_chosen, pol_rejected = _summed_completion_logps(pol_model, ids, attn, comp).chunk(2)
    ref_chosen, ref_rejected = _summed_completion_logps(ref_model, ids, attn, comp).chunk(2)
    ours, metrics = dpo_loss(pol_chosen, ref_chosen, pol_rejected, ref_rejected, beta=beta)

    # Assert: the log-ratios are far from 0 (else both losses are log 2 and nothing is tested); trl's logged
    # log-probs and rewards agree with ours (locates a failure: log-probs vs formula); the losses are equal.
    margins = (pol_chosen - ref_chosen) - (pol_rejected - ref_rejected)
    assert margins.abs().min() > 1e-2
    logged = trainer._metrics["eval"]
    assert logged["logps/chosen"][-1] == pytest.approx(pol_chosen.mean().item(), abs=1e-4)
    assert logged["logps/rejected"][-1] == pytest.approx(pol_rejected.mean().item(), abs=1e-4)
    assert logged["rewards/chosen"][-1] == pytest.approx(beta * metrics["reward_high"], abs=1e-5)
    assert logged["rewards/margins"][-1] == pytest.approx(beta * metrics["margin"], abs=1e-5)
    torch.testing.assert_close(ours, trl_loss.float(), **TOL)
    assert abs(trl_loss.item() - torch.log(torch.tensor(2.0)).item()) > 1e-3


@pytest.mark.parametrize("beta, desirable_weight, undesirable_weight, temperature, kl_positive", [
    pytest.param(0.3, 1.5, 1.0, 2.0, True, id="kl-positive-desirable-weight1.5"),
    pytest.param(0.7, 1.0, 0.6, 0.5, False, id="kl-clamped-to-0-undesirable-weight0.6"),
])
def test_kto_loss_matches_trl_kto_trainer(model_dir, tmp_path, beta, desirable_weight, undesirable_weight,
                                          temperature, kl_positive):
    # Setup: a real KTOTrainer (loss_type="kto") with a separate reference, one batch of all 4 unpaired rows. trl
    # always estimates KL here; the collator adds KL_* tensors for the mismatched (prompt_i, completion_{i-1}) rows.
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    policy, reference = _policy_and_reference(model_dir, seed=0, temperature=temperature)
    args = KTOConfig(beta=beta, loss_type="kto", desirable_weight=desirable_weight,
                     undesirable_weight=undesirable_weight, **_common_args(tmp_path, len(KTO_ROWS["prompt"])),
                     **checkpointing_setting(KTOConfig))
    trainer = KTOTrainer(model=policy, ref_model=reference, args=args, train_dataset=Dataset.from_dict(KTO_ROWS),
                         processing_class=tokenizer)
    trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    ids, attn, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    kl_ids, kl_attn, kl_comp = batch["KL_input_ids"], batch["KL_attention_mask"], batch["KL_completion_mask"]
    label = batch["label"].bool()
    assert label.tolist() == KTO_ROWS["label"]
    completions = _completion_ids(ids, comp)
    assert _completion_ids(kl_ids, kl_comp) == completions[-1:] + completions[:-1]  # trl's KL pairs: rotate by one

    # Run: trl's loss; then ours, with z₀ recomputed as trl defines it (mean mismatched log-ratio, clamped at 0).
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch)
    pol_model, ref_model = _policy_and_reference(model_dir, seed=0, temperature=temperature)
    pol = _summed_completion_logps(pol_model, ids, attn, comp)  # (4,)
    ref = _summed_completion_logps(ref_model, ids, attn, comp)  # (4,)
    raw_kl = (_summed_completion_logps(pol_model, kl_ids, kl_attn, kl_comp)
              - _summed_completion_logps(ref_model, kl_ids, kl_attn, kl_comp)).mean()
    kl = raw_kl.clamp(min=0)
    weights = dict(desirable_weight=desirable_weight, undesirable_weight=undesirable_weight)
    if kl_positive:
        ours, _ = kto_loss(pol[label], ref[label], pol[~label], ref[~label], beta=beta, kl=kl, **weights)
    else:  # z₀ clamped to 0: our default kl=0.0 must be what trl used
        ours, _ = kto_loss(pol[label], ref[label], pol[~label], ref[~label], beta=beta, **weights)

    # Assert: the case is the one it claims (z₀ > 0, or a negative raw estimate clamped to 0); trl logged the same
    # z₀ we recomputed; the log-ratios are non-zero; the losses are equal.
    assert (raw_kl.item() > 1e-3) if kl_positive else (raw_kl.item() < -1e-3)
    assert trainer._metrics["eval"]["kl"][-1] == pytest.approx(kl.item(), abs=1e-5)
    assert (pol - ref).abs().min() > 1e-2
    torch.testing.assert_close(ours, trl_loss.float(), **TOL)

