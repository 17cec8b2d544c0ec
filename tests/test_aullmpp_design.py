"""AULLM++ (our reconstruction): the designs the figure leaves open, as options (docs/aullmpp.md, Designs) — token
order, several content / instruction tokens, CCR's perturbation — each changes what it says it changes, and the
prompt-first orders share AU-LLM's cached prompt paths with the same logits as the uncached full sequence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aullm.config import Config, LLMConfig, LoraConfig, config_from_dict
from aullm.core.errors import ConfigError
from aullm.models.aullmpp.graph import RAUGNN
from aullm.models.aullmpp.modeling_aullmpp import AULLMPP
from aullm.models.factory import build_model
from aullm.models.llm.loading import load_llm
from aullm.models.llm.reasoner import LLMReasoner

CPU = torch.device("cpu")
AUS = ["AU1", "AU2", "AU4", "AU7"]
FRAMES, SIZE = 6, 32

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_llm(LLMConfig(name="tiny-random"), CPU)


def _cfg(prefix_cache: bool = True, **model: object) -> Config:
    return config_from_dict(
        {
            "data": {"frames": FRAMES, "size": SIZE, "aus": AUS},
            "model": {"name": "aullmpp", **model},
            "llm": {"name": "tiny-random", "lora": {"r": 4, "alpha": 8}, "prefix_cache": prefix_cache},
        }
    )


def _build(tiny, seed: int = 0, prefix_cache: bool = True, **model: object) -> AULLMPP:
    return build_model(_cfg(prefix_cache, **model), AUS, tiny, seed=seed)


def _no_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0


def _frozen_norms(model: nn.Module) -> None:
    """BatchNorm on running statistics, so a sample's output does not depend on the rest of its batch."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def _perturb_lora(module: nn.Module) -> None:
    """LoRA B starts at zero (the adapter is then a no-op); give it values so the paths are really compared."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


def _seen(model: AULLMPP) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.reasoner.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("order", ["figure", "prompt_ct_it", "prompt_it_ct"])
def test_token_order_places_the_structured_tokens(tiny, order: str) -> None:
    model = _build(tiny, token_order=order)
    _no_dropout(model)
    model.eval()
    # figure: [CT][IT][prompt] (prepend, no cache); the others: the prompt first, cached as AU-LLM's `append`.
    assert model.reasoner.token_position == ("prepend" if order == "figure" else "append")
    assert model.reasoner.uses_fast_path == (order != "figure")
    seen = _seen(model)
    x = torch.rand(3, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        model(x)
        ct, x_att = model.content_token(x)
        it = model.graph(x_att).tokens
    (tokens,) = seen
    assert tokens.shape == (3, 2, tiny.hidden_size)
    first, last = (it, ct) if order == "prompt_it_ct" else (ct, it)
    torch.testing.assert_close(tokens[:, :1], first, rtol=0, atol=0)
    torch.testing.assert_close(tokens[:, 1:], last, rtol=0, atol=0)


def test_figure_order_stays_available_by_name_and_old_configs_load() -> None:
    cfg = _cfg(token_order="figure")
    assert cfg.model.token_order == "figure"
    with pytest.raises(ConfigError, match=r"model\.token_order"):
        _cfg(token_order="ct_prompt_it")
    for key in ("ct_tokens", "it_tokens"):
        with pytest.raises(ConfigError, match=rf"model\.{key}"):
            _cfg(**{key: 0})
    with pytest.raises(ConfigError, match=r"model\.ccr\.perturb"):
        _cfg(ccr={"perturb": "labels"})


@pytest.mark.parametrize(
    ("order", "ccr", "readout"),
    [
        ("prompt_ct_it", False, "last"),
        ("prompt_ct_it", True, "last"),
        ("prompt_it_ct", False, "last"),
        ("prompt_it_ct", True, "last"),
        ("prompt_it_ct", True, "structured"),
        ("prompt_ct_it", True, "structured"),
    ],
)
def test_cached_and_uncached_prompt_paths_give_the_same_logits(tiny, order: str, ccr: bool, readout: str) -> None:
    """The prompt-first orders with the prefix cache (packed training pass, or the branch-sharing CCR pass; the
    key/value cache in evaluation) against the full sequence per sample (llm.prefix_cache: false): same logits, same
    CCR loss and the same gradients, to 1e-5 — with either read-out."""
    # Every sample gets a counterfactual (fraction 1; the default's quarter is tested below), so the CCR loss is
    # compared on four counterfactuals, not one.
    options = {
        "token_order": order,
        "readout": readout,
        # Hard flips: a fresh model's states are undecided, so soft flips give a CCR loss (~1e-7) at the level of
        # float32 rounding, where the two paths' sums in different orders cannot be compared relatively.
        "ccr": {"enabled": ccr, "flip_prob": 0.5, "lambda": 1.0, "fraction": 1.0, "flip": "hard"},
    }
    fast = _build(tiny, seed=3, **options)
    slow = _build(tiny, seed=3, prefix_cache=False, **options)
    assert fast.reasoner.uses_fast_path and not slow.reasoner.uses_fast_path
    for model in (fast, slow):
        _no_dropout(model)
        _perturb_lora(model)
    x = torch.rand(4, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    outs = []
    for model in (fast, slow):
        model.train()
        torch.manual_seed(11)  # the same counterfactual draw
        out = model(x)
        loss = out.logits.square().mean() + (out.aux_loss if out.aux_loss is not None else 0.0)
        model.zero_grad()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        outs.append((out, grads))
    (f_out, f_grads), (s_out, s_grads) = outs
    torch.testing.assert_close(f_out.logits, s_out.logits, rtol=0, atol=1e-5)
    assert (f_out.aux_loss is None) == (not ccr)
    if ccr:
        # A real counterfactual, compared for real. The paths' logits agree to 1e-5, so a loss at the level of
        # float32 rounding (prompt_it_ct with `last`: ~7e-7) may differ by ~1e-8 in absolute terms; larger losses
        # (the other cases: 1e-3) are compared to 1e-3 relatively.
        torch.testing.assert_close(f_out.aux_loss, s_out.aux_loss, rtol=1e-3, atol=5e-8)
    assert f_grads.keys() == s_grads.keys()
    for name in f_grads:
        torch.testing.assert_close(f_grads[name], s_grads[name], rtol=1e-4, atol=1e-5, msg=name)
    for model in (fast, slow):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x).logits, slow(x).logits, rtol=0, atol=1e-5)


def test_forward_branches_equals_each_full_sequence(tiny) -> None:
    """[prompt][shared][branch_m] for every m in one packed pass = the reasoner on each concatenation; a branch
    may cover only the first samples (CCR's `fraction`)."""
    reasoner = LLMReasoner(tiny, LoraConfig(r=4, alpha=8, dropout=0.0), "classify the action units", "append", seed=1)
    _perturb_lora(reasoner)
    reasoner.train()
    generator = torch.Generator().manual_seed(0)
    shared = torch.randn(3, 2, tiny.hidden_size, generator=generator, requires_grad=True)
    first = torch.randn(3, 2, tiny.hidden_size, generator=generator, requires_grad=True)
    second = torch.randn(2, 2, tiny.hidden_size, generator=generator, requires_grad=True)  # samples 0 and 1 only
    calls: list[tuple[int, ...]] = []
    handle = reasoner.decoder.register_forward_pre_hook(
        lambda _m, args, kwargs: calls.append(tuple(kwargs["inputs_embeds"].shape)), with_kwargs=True
    )
    tree = reasoner.forward_branches(shared, [first, second])
    handle.remove()
    # One decoder pass: the prompt once, each sample's shared tokens once, each branch's tokens once.
    assert calls == [(1, reasoner.prompt_tokens + 3 * 2 + (3 + 2) * 2, tiny.hidden_size)]
    reference = [
        reasoner.forward_path(torch.cat([shared, first], dim=1), "full"),
        reasoner.forward_path(torch.cat([shared[:2], second], dim=1), "full"),
    ]
    assert [t.shape for t in tree] == [(3, tiny.hidden_size), (2, tiny.hidden_size)]
    for a, b in zip(tree, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    inputs = [shared, first, second, *reasoner.lora_parameters()]
    g_tree = torch.autograd.grad(sum(t.square().sum() for t in tree), inputs)
    g_ref = torch.autograd.grad(sum(t.square().sum() for t in reference), inputs)
    for a, b in zip(g_tree, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # Without shared tokens, and in evaluation (no packing): still each full sequence.
    for a, b in zip(reasoner.forward_branches(None, [first, second]), [first, second]):
        torch.testing.assert_close(a, reasoner.forward_path(b, "full"), rtol=0, atol=1e-5)
    reasoner.eval()
    with torch.no_grad():
        for a, b in zip(reasoner.forward_branches(shared, [first, second]), reference):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_ccr_with_prompt_ct_it_runs_the_content_token_once(tiny) -> None:
    """The counterfactual shares the prompt and the CT: the LLM pass holds prompt + B·CT + 2B·IT tokens, against
    prompt + 2B·(CT+IT) with prompt_it_ct and 2B full sequences with the figure's order."""
    sizes = {}
    for order in ("prompt_ct_it", "prompt_it_ct", "figure"):
        model = _build(tiny, token_order=order, ccr={"flip_prob": 0.5, "fraction": 1.0})
        calls: list[tuple[int, ...]] = []
        model.reasoner.decoder.register_forward_pre_hook(
            lambda _m, args, kwargs, calls=calls: calls.append(tuple(kwargs["inputs_embeds"].shape[:2])),
            with_kwargs=True,
        )
        model.train()
        out = model(torch.rand(4, FRAMES, SIZE, SIZE))
        assert out.aux_loss is not None
        sizes[order] = calls
    p = _build(tiny).reasoner.prompt_tokens
    assert sizes == {"prompt_ct_it": [(1, p + 4 + 8)], "prompt_it_ct": [(1, p + 16)], "figure": [(8, p + 2)]}


@pytest.mark.parametrize("order", ["prompt_ct_it", "prompt_it_ct"])
def test_ccr_fraction_gives_a_counterfactual_to_part_of_the_batch(tiny, order: str) -> None:
    """`ccr.fraction: 0.25` on a batch of 8: two counterfactual sequences; the CCR loss is the same function of
    those two samples as with the whole batch (fraction 1 on the same two samples)."""
    x = torch.rand(8, FRAMES, SIZE, SIZE)
    part = _build(tiny, token_order=order, ccr={"flip_prob": 0.5, "lambda": 1.0, "fraction": 0.25}, dropout=0.0)
    _no_dropout(part)
    _perturb_lora(part)
    calls: list[tuple[int, ...]] = []
    part.reasoner.decoder.register_forward_pre_hook(
        lambda _m, args, kwargs: calls.append(tuple(kwargs["inputs_embeds"].shape[:2])), with_kwargs=True
    )
    part.train()
    _frozen_norms(part)
    torch.manual_seed(5)
    out = part(x)
    p = part.reasoner.prompt_tokens
    per_sample = {"prompt_ct_it": (8 * 2 + 2 * 1), "prompt_it_ct": (8 + 2) * 2}[order]
    assert calls == [(1, p + per_sample)] and out.logits.shape == (8, 4)
    whole = _build(tiny, token_order=order, ccr={"flip_prob": 0.5, "lambda": 1.0, "fraction": 1.0}, dropout=0.0)
    _no_dropout(whole)
    _perturb_lora(whole)
    whole.train()
    _frozen_norms(whole)
    torch.manual_seed(5)  # the same draw for the first two samples
    reference = whole(x[:2])
    torch.testing.assert_close(out.logits[:2], reference.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.aux_loss, reference.aux_loss, rtol=1e-4, atol=1e-7)
    with pytest.raises(ConfigError, match=r"model\.ccr\.fraction"):
        _cfg(ccr={"fraction": 0.0})


def test_several_content_and_instruction_tokens(tiny) -> None:
    model = _build(tiny, token_order="prompt_it_ct", ct_tokens=3, it_tokens=2)
    assert model.graph is not None and model.graph.pool.queries == 2
    seen = _seen(model)
    model.eval()
    x = torch.rand(2, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        out = model(x)
        ct, x_att = model.content_token(x)
        graph = model.graph(x_att)
    assert out.logits.shape == (2, 4)
    assert ct.shape == (2, 3, tiny.hidden_size) and graph.tokens.shape == (2, 2, tiny.hidden_size)
    torch.testing.assert_close(graph.pool_weights.sum(-1), torch.ones(2, 2))
    (tokens,) = seen
    torch.testing.assert_close(tokens, torch.cat([graph.tokens, ct], dim=1), rtol=0, atol=0)
    # The two pooling queries are different functions of the graph, not copies.
    assert not torch.allclose(graph.pool_weights[:, 0], graph.pool_weights[:, 1])
    with pytest.raises(ValueError, match="instruction tokens"):
        _ = graph.token
    # And in training with CCR.
    model.train()
    assert model(x).aux_loss is not None


@pytest.mark.parametrize("perturb", ["both", "states", "edges"])
def test_ccr_perturb_chooses_what_the_counterfactual_flips(perturb: str) -> None:
    g = RAUGNN(16, ["AU1", "AU2", "AU4", "AU7", "AU12", "AU15"], 32, node_dim=32, heads=4)
    generator = torch.Generator().manual_seed(0)
    cf = g.sample_counterfactual(64, 0.5, CPU, generator, perturb=perturb)  # type: ignore[arg-type]
    states_flipped = bool(cf.flip.any())
    edges_toggled = bool((cf.mask != g.prior_mask).any())
    assert states_flipped == (perturb in ("both", "states"))
    assert edges_toggled == (perturb in ("both", "edges"))


def test_mge_extraction_backbone_and_zero_init(tiny) -> None:
    """`mge.extraction: backbone` makes F_mid/F_high the backbone's own extraction applied to x_fused (its fc_high
    then trains); `mge.zero_init` starts x_fused at x_att exactly, so at the start F_mid is the backbone's own,
    and the branches still receive gradient (they grow in)."""
    from aullm.models.aullmpp.mge_efp import MGEEFP

    x = torch.rand(3, FRAMES, SIZE, SIZE)
    model = _build(tiny, token_order="prompt_it_ct", mge={"extraction": "backbone", "zero_init": True})
    evidence = model.evidence
    assert isinstance(evidence, MGEEFP) and evidence.mid is None and evidence.high is None
    assert model.backbone.fc_high.weight.requires_grad
    model.eval()
    with torch.no_grad():
        feats = model.backbone(x)
        out = evidence.evidence(feats.x_att, model._backbone_extract)
    torch.testing.assert_close(out.fused, feats.x_att, rtol=0, atol=0)
    torch.testing.assert_close(out.f_mid, feats.f_mid, rtol=0, atol=0)
    torch.testing.assert_close(out.f_high, feats.f_high, rtol=0, atol=0)
    # Zero-initialised again after a reset (training moved the scales away from zero).
    model.train()
    model(x).logits.square().sum().backward()
    scales = [evidence.harmonise[name][1].weight for name in evidence.branch_names]
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in scales)
    with torch.no_grad():
        for s in scales:
            s.fill_(0.5)
    model.reset(1)
    assert all(torch.equal(s, torch.zeros_like(s)) for s in scales)
    # The previous design (own extraction, branches on from the start) is still what the defaults give here.
    own = _build(tiny, mge={"extraction": "own", "zero_init": False})
    assert isinstance(own.evidence, MGEEFP) and own.evidence.mid is not None
    assert not own.backbone.fc_high.weight.requires_grad
    own.eval()
    with torch.no_grad():
        feats = own.backbone(x)
        assert not torch.allclose(own.evidence.evidence(feats.x_att).fused, feats.x_att)
    with pytest.raises(ConfigError, match=r"model\.mge\.extraction"):
        _cfg(mge={"extraction": "shared"})


def test_mge_separable_meso_convs() -> None:
    """`mge.conv: separable`: each meso branch is a depthwise k×k then a pointwise 1×1 conv (same receptive
    field, far fewer weights); `full` keeps the previous single k×k conv and its state-dict keys."""
    from aullm.models.aullmpp.mge_efp import MGEEFP

    torch.manual_seed(0)  # the weights and input below: the gradient check must not depend on earlier tests' draws
    full = MGEEFP((16, 4, 10, 10), 32)
    separable = MGEEFP((16, 4, 10, 10), 32, conv="separable")
    for name, k in (("meso3", 3), ("meso5", 5)):
        convs = [m for m in separable.paths[name] if isinstance(m, nn.Conv3d)]
        assert [c.groups for c in convs] == [16, 1] and convs[0].kernel_size == (1, k, k)
        assert convs[1].kernel_size == (1, 1, 1)
        assert [type(m) for m in full.paths[name]] == [nn.Conv3d, nn.ReLU]
        assert sum(p.numel() for p in separable.paths[name].parameters()) < sum(
            p.numel() for p in full.paths[name].parameters()
        )
    assert "paths.meso5.0.weight" in full.state_dict()
    x = torch.randn(2, 16, 4, 10, 10)
    separable(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in separable.paths.parameters())
    with pytest.raises(ConfigError, match=r"model\.mge\.conv"):
        _cfg(mge={"conv": "dilated"})


def test_reasoner_reads_the_last_positions_on_every_path(tiny) -> None:
    """`last=r` gives the final hidden states of the sequence's last r positions, [B, r, d], on the full, packed
    and key/value paths and through `forward_branches` (packed tree and fallback), with their gradients; a causal
    LM's state at a position depends only on what precedes it, so the first of the last two states is the last
    state of the sequence cut one token short."""
    reasoner = LLMReasoner(tiny, LoraConfig(r=4, alpha=8, dropout=0.0), "classify the action units", "append", seed=1)
    _perturb_lora(reasoner)
    reasoner.train()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, tiny.hidden_size, generator=generator, requires_grad=True)
    reference = torch.stack([reasoner.forward_full(x[:, :1]), reasoner.forward_full(x)], dim=1)
    inputs = [x, *reasoner.lora_parameters()]
    g_ref = torch.autograd.grad(reference.square().sum(), inputs, retain_graph=True)
    assert reasoner.forward_full(x, last=2).shape == (3, 2, tiny.hidden_size)
    for path in ("full", "packed", "kv"):
        read = reasoner.forward_path(x, path, last=2)
        torch.testing.assert_close(read, reference, rtol=0, atol=1e-5, msg=path)
        torch.testing.assert_close(reasoner.forward_path(x, path, last=1)[:, 0], reference[:, 1], rtol=0, atol=1e-5)
        for a, b in zip(torch.autograd.grad(read.square().sum(), inputs), g_ref):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(reasoner(x, last=2), reference, rtol=0, atol=1e-5)
    second = torch.randn(2, 2, tiny.hidden_size, generator=generator)
    tree = reasoner.forward_branches(None, [x, second], last=2)
    torch.testing.assert_close(tree[0], reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(tree[1], reasoner.forward_full(second, last=2), rtol=0, atol=1e-5)
    shared = torch.randn(3, 1, tiny.hidden_size, generator=generator)
    (branch,) = reasoner.forward_branches(shared, [x], last=2)  # the branch's own two positions
    torch.testing.assert_close(branch, reasoner.forward_full(torch.cat([shared, x], dim=1), last=2), rtol=0, atol=1e-5)
    reasoner.eval()
    with torch.no_grad():
        torch.testing.assert_close(reasoner(x, last=2), reference, rtol=0, atol=1e-5)
    for bad in (0, 3):
        with pytest.raises(ValueError, match="last"):
            reasoner.forward_path(x, "full", last=bad)
        with pytest.raises(ValueError, match="last"):
            reasoner.forward_branches(shared, [x], last=bad)


def test_structured_readout_reads_every_structured_token(tiny) -> None:
    """`model.readout: structured` (default `last`): the head reads the final hidden states of the IT and the CT
    side by side — the logits are the head on [h_IT, h_CT] of the same sequence — so R-AUGNN's token reaches the
    classifier without the CT's attention; with several tokens, all of them. `last` keeps the one position."""
    assert _cfg().model.readout == "last"
    x = torch.rand(3, FRAMES, SIZE, SIZE)
    for ct_tokens, it_tokens in ((1, 1), (2, 2)):
        model = _build(tiny, readout="structured", ct_tokens=ct_tokens, it_tokens=it_tokens)
        _perturb_lora(model)
        model.eval()
        n = ct_tokens + it_tokens
        assert model.head.in_features == n * tiny.hidden_size
        seen = _seen(model)
        with torch.no_grad():
            logits = model(x).logits
            (tokens,) = seen
            hidden = model.reasoner.forward_full(tokens, last=n)
            expected = model.head(hidden.flatten(1))
            # The IT's part of the head gets its own input: replacing h_IT changes the logits.
            no_it = torch.cat([torch.zeros_like(hidden[:, :it_tokens]), hidden[:, it_tokens:]], 1)
            moved = model.head(no_it.flatten(1))
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
        assert (moved - expected).abs().max() > 1e-3
    # Without R-AUGNN there is no IT: the CT tokens only.
    assert _build(tiny, readout="structured", r_augnn=False, ct_tokens=2).head.in_features == 2 * tiny.hidden_size
    assert _build(tiny).head.in_features == tiny.hidden_size
    with pytest.raises(ValueError, match="prompt-first token_order"):
        _build(tiny, readout="structured", token_order="figure")
    with pytest.raises(ConfigError, match=r"model\.readout"):
        _cfg(readout="pooled")
