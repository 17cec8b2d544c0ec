"""Why does a model (AULLM++ reconstruction, or AU-LLM for reference) underfit? One LOSO fold, instrumented.

Trains exactly as a fold of `aullm train` does (same reset seed, validation split, prior hook, batches, Adam, ASL)
and records per epoch: the main loss (ASL) and CCR's λ·L_cf separately, the gradient norm and the relative Adam
update ‖Δθ‖/‖θ‖ of each part, the norms of the tokens handed to the LLM against the LLM's own word embeddings, and
(at the start and the end) how much attention the position the classifier reads pays to the structured tokens.
Ends with the held-out subject's AUC and the training clips' main loss in eval mode. Output: one JSON file.

    PYTHONPATH=src python benchmarks/diag_aullmpp.py configs/synme_demo_aullmpp.yaml --data /work/data31/synme_demo \
        --fold 1 --out /work/runs31/diag/base.json [--set model.ccr.enabled=false ...] [--lr-scale graph=3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from aullm.config import Config, load_config
from aullm.core.runtime import seed_everything
from aullm.data.cache import prepare_dataset
from aullm.data.clips import sample_batch
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.training.fold import fold_seed, validation_split
from aullm.training.losses import build_loss, training_loss
from aullm.training.session import subject_key
from aullm.training.trainer import _batches, make_optimizer


def part_of(name: str) -> str:
    """Fine-grained part of a parameter name (AULLM++ and AU-LLM names)."""
    top = name.split(".", 1)[0]
    if top == "reasoner":
        return "lora"
    if top == "graph":
        return "graph." + name.split(".")[1]
    if top == "evidence":
        sub = name.split(".")[1]
        return "evidence.branches" if sub in ("paths", "harmonise", "gate") else f"evidence.{sub}"
    if top == "backbone":
        return "backbone"
    return top


def grouped(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    groups: dict[str, list[nn.Parameter]] = defaultdict(list)
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[part_of(name)].append(p)
    return dict(groups)


def norm(ps: list[Tensor]) -> float:
    return float(torch.sqrt(sum((t.float() ** 2).sum() for t in ps)).item()) if ps else 0.0


def _tokens_to_llm(model: nn.Module, x: Tensor) -> Tensor:
    """The token tensor [B, n, d] the model hands its reasoner (captured by a pre-hook)."""
    seen: list[Tensor] = []
    handle = model.reasoner.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


@torch.no_grad()
def attention_probe(model: nn.Module, x: Tensor) -> dict[str, Any]:
    """Attention (mean over heads, per layer) that the last sequence position — the one the head reads — pays to
    each structured token, and the mass it keeps on itself; eager attention so weights are returned."""
    reasoner = model.reasoner
    if not hasattr(reasoner, "decoder"):
        return {}
    tokens = _tokens_to_llm(model, x)[: x.shape[0]].to(reasoner.loaded.dtype)
    n = tokens.shape[1]
    prompt = reasoner._prompt_embeddings().expand(tokens.shape[0], -1, -1)
    order = getattr(model, "token_order", None)
    seq, positions = reasoner.layout(tokens) if hasattr(reasoner, "layout") else (None, None)
    if seq is None:
        if getattr(reasoner, "token_position", "append") == "append":
            seq = torch.cat([prompt, tokens], 1)
            positions = list(range(prompt.shape[1], prompt.shape[1] + n))
        else:
            seq = torch.cat([tokens, prompt], 1)
            positions = list(range(n))
            sink = getattr(reasoner, "_sink_ids", None)
            if sink is not None:
                emb = reasoner.decoder.get_input_embeddings()(sink).expand(tokens.shape[0], -1, -1)
                seq = torch.cat([emb.to(seq.dtype), seq], 1)
                positions = [p + sink.shape[1] for p in positions]
    config = reasoner.decoder.config
    before = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        out = reasoner.decoder(inputs_embeds=seq, use_cache=False, output_attentions=True)
    finally:
        config._attn_implementation = before
    per_layer = []
    for att in out.attentions:  # [B, heads, L, L]
        last = att[:, :, -1].float().mean(dim=(0, 1))  # [L]
        per_layer.append([float(last[p]) for p in positions] + [float(last[-1]), float(last[0])])
    arr = np.array(per_layer)
    return {
        "order": order,
        "positions": positions,
        "seq_len": int(seq.shape[1]),
        "per_layer_to_tokens": arr[:, : len(positions)].tolist(),
        "mean_to_tokens": arr[:, : len(positions)].mean(0).tolist(),
        "mean_to_self": float(arr[:, -2].mean()),
        "mean_to_first": float(arr[:, -1].mean()),
    }


def token_norms(model: nn.Module, x: Tensor) -> dict[str, float]:
    tokens = _tokens_to_llm(model, x)[: x.shape[0]]
    out = {f"token{i}": float(tokens[:, i].float().norm(dim=-1).mean()) for i in range(tokens.shape[1])}
    if hasattr(model.reasoner, "decoder"):
        emb = model.reasoner._prompt_embeddings()[0].float()
        out["prompt_embedding"] = float(emb.norm(dim=-1).mean())
    return out


def add_sink(reasoner: nn.Module, token: str) -> None:
    """Diagnostic only (`figure` order): a real first token (the tokenizer's `token`) before [CT][IT][prompt], so the
    structured tokens no longer sit at position 0, where a causal LM parks its attention sink."""
    ids = reasoner.loaded.tokenizer(token, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def forward_full(tokens: Tensor, last: int = 1) -> Tensor:
        emb = reasoner.decoder.get_input_embeddings()(ids.to(tokens.device)).to(tokens.dtype)
        prompt = reasoner._prompt_embeddings().expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        seq = torch.cat([emb.expand(tokens.shape[0], -1, -1), tokens, prompt], dim=1)
        return reasoner._call(inputs_embeds=seq, use_cache=False).last_hidden_state[:, -last:]

    assert reasoner.token_position == "prepend", "--sink is for the figure order"
    reasoner._forward_full = forward_full
    reasoner._sink_ids = ids


def run(cfg: Config, fold: str, lr_scale: dict[str, float], probe_every: int, sink: str = "") -> dict[str, Any]:
    torch.set_num_threads(max(1, cfg.train.threads))
    device = torch.device("cpu")
    data = prepare_dataset(cfg.data)
    aus = list(cfg.data.aus)
    llm = load_llm(cfg.llm, device) if cfg.model.needs_llm else None
    seed = int(cfg.seeds[0])
    names = sorted(set(data.subjects.tolist()))
    fold = next(n for n in names if subject_key(n) == subject_key(fold))
    s = fold_seed(seed, fold)
    seed_everything(s)
    model = build_model(cfg, aus, llm, seed=s)
    model.reset(s)
    if sink:
        add_sink(model.reasoner, sink)
    rows = np.arange(len(data))
    train_rows, test_rows = rows[data.subjects != fold], rows[data.subjects == fold]
    fit_rows, val_rows = validation_split(data, train_rows, cfg.eval.validation_subjects, s)
    model.on_fold_start(data.labels[fit_rows])

    groups = grouped(model)
    base = cfg.train.lr
    param_groups = [
        {"params": ps, "lr": base * lr_scale.get(g, lr_scale.get(g.split(".")[0], 1.0))} for g, ps in groups.items()
    ]
    optimizer = make_optimizer([p for ps in groups.values() for p in ps], base, cfg.train.weight_decay)
    # Per-group learning rates: rebuild with groups when scaled (fused Adam takes param groups too).
    if lr_scale:
        optimizer = torch.optim.Adam(param_groups, lr=base, weight_decay=cfg.train.weight_decay)
    loss_fn = build_loss(cfg.train.loss)
    labels = torch.from_numpy(data.labels)
    rng = np.random.default_rng(s)
    probe_x = sample_batch(data, fit_rows[:8], train=False, rng=np.random.default_rng(0), frames=cfg.data.frames)

    log: dict[str, Any] = {"fold": fold, "seed": seed, "epochs": [], "probes": {}}
    model.eval()
    log["probes"]["start"] = {"attention": attention_probe(model, probe_x), "norms": token_norms(model, probe_x)}
    model.train()
    start = time.perf_counter()
    steps_per_epoch = -(-len(fit_rows) // cfg.train.batch_size)
    for epoch in range(cfg.train.epochs):
        sums: dict[str, float] = defaultdict(float)
        steps = 0
        main_total, aux_total, node_total, count = 0.0, 0.0, 0.0, 0
        for batch_rows in _batches(fit_rows, cfg.train.batch_size, rng):
            x = sample_batch(data, batch_rows, train=True, rng=rng, frames=cfg.data.frames)
            y = labels[batch_rows]
            out = model(x)
            main = loss_fn(out.logits.float(), y)
            loss = training_loss(loss_fn, out, y)  # main + CCR's λ·L_cf + the node states' weighted loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for g, ps in groups.items():
                sums[f"grad/{g}"] += norm([p.grad for p in ps if p.grad is not None])
            if steps == 0:  # relative update on the epoch's first step only (a copy of every weight is slow)
                before = {g: [p.detach().clone() for p in ps] for g, ps in groups.items()}
                optimizer.step()
                for g, ps in groups.items():
                    delta = norm([p.detach() - b for p, b in zip(ps, before[g])])
                    sums[f"update/{g}"] += steps_per_epoch * delta / max(norm([p.detach() for p in ps]), 1e-12)
                del before
            else:
                optimizer.step()
            steps += 1
            main_total += main.item() * len(batch_rows)
            aux = out.aux_loss.item() if out.aux_loss is not None else 0.0
            aux_total += aux * len(batch_rows)
            node_total += (loss.item() - main.item() - aux) * len(batch_rows)  # what training_loss adds beyond
            count += len(batch_rows)
        # aux: CCR's λ·L_cf; node: the node states' weighted loss (model.graph.supervision)
        entry = {"epoch": epoch + 1, "main": main_total / count, "aux": aux_total / count, "node": node_total / count}
        entry.update({k: v / steps for k, v in sums.items()})
        log["epochs"].append(entry)
        main_, aux_, node_ = entry["main"], entry["aux"], entry["node"]
        print(f"epoch {epoch + 1}: main {main_:.4f} aux {aux_:.2e} node {node_:.4f}", flush=True)
        if probe_every and (epoch + 1) % probe_every == 0 and epoch + 1 < cfg.train.epochs:
            model.eval()
            log["probes"][f"epoch{epoch + 1}"] = {"attention": attention_probe(model, probe_x)}
            model.train()
    log["train_seconds"] = time.perf_counter() - start
    model.eval()
    log["probes"]["end"] = {"attention": attention_probe(model, probe_x), "norms": token_norms(model, probe_x)}

    def probs(r: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = []
            for i in range(0, len(r), 16):
                xb = sample_batch(
                    data, r[i : i + 16], train=False, rng=np.random.default_rng(0), frames=cfg.data.frames
                )
                out.append(torch.sigmoid(model(xb).logits.float()).numpy())
            return np.concatenate(out)

    def auc(p: np.ndarray, y: np.ndarray) -> float:
        vals = [roc_auc_score(y[:, k], p[:, k]) for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)]
        return float(np.mean(vals)) if vals else float("nan")

    p_fit = probs(fit_rows)
    with torch.no_grad():
        log["eval_train_main_loss"] = float(
            loss_fn(torch.logit(torch.from_numpy(p_fit).clamp(1e-6, 1 - 1e-6)), labels[fit_rows]).item()
        )
    log["train_auc"] = auc(p_fit, data.labels[fit_rows])
    held = np.concatenate([test_rows, val_rows])
    p_held = probs(held)
    log["heldout_auc"] = auc(p_held, data.labels[held])  # test + validation subjects (40 clips): less noisy
    log["test_auc"] = auc(p_held[: len(test_rows)], data.labels[test_rows])
    print(
        json.dumps(
            {k: log[k] for k in ("eval_train_main_loss", "train_auc", "heldout_auc", "test_auc", "train_seconds")}
        )
    )
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--data", required=True)
    parser.add_argument("--fold", default="1")
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--lr-scale", action="append", default=[], help="PART=FACTOR, e.g. graph=3 evidence=0.3")
    parser.add_argument("--probe-every", type=int, default=0)
    parser.add_argument("--sink", default="", help="figure order only: a real token before [CT][IT][prompt]")
    args = parser.parse_args()
    cfg = load_config(Path(args.config), [f"data.root={args.data}", "train.threads=1", *args.overrides])
    scale = {k: float(v) for k, v in (item.split("=", 1) for item in args.lr_scale)}
    log = run(cfg, args.fold, scale, args.probe_every, args.sink)
    log["overrides"], log["lr_scale"], log["config"], log["sink"] = args.overrides, scale, args.config, args.sink
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
