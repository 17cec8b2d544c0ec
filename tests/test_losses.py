"""Asymmetric Loss and BCE against values computed by hand (plain `math`, independent of the torch code)."""

from __future__ import annotations

import math

import pytest
import torch

from aullm.config import LossConfig
from aullm.models.base import ModelOutput
from aullm.training.losses import AsymmetricLoss, MultiLabelBCE, build_loss, training_loss


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _asl_by_hand(logits: list[list[float]], labels: list[list[int]], gp: float, gn: float, clip: float) -> float:
    total = 0.0
    for row_z, row_y in zip(logits, labels):
        for z, y in zip(row_z, row_y):
            p = _sigmoid(z)
            if y == 1:
                total += (1 - p) ** gp * math.log(p)
            else:
                pm = max(p - clip, 0.0)
                total += pm**gn * math.log(1 - pm)
    return -total / len(logits)


LOGITS = [[0.0, 2.0, -3.0], [-1.0, 3.0, 0.5]]
LABELS = [[1, 0, 0], [0, 1, 1]]


def test_asl_matches_hand_computed_value() -> None:
    loss = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)(torch.tensor(LOGITS), torch.tensor(LABELS))
    assert loss.item() == pytest.approx(_asl_by_hand(LOGITS, LABELS, 0.0, 4.0, 0.05), rel=1e-6)
    # One term written out: a negative with z = 2 → p = 0.8808, p_m = 0.8308, p_m⁴ log(1 − p_m) = −0.84641.
    single = AsymmetricLoss(0.0, 4.0, 0.05)(torch.tensor([[2.0]]), torch.tensor([[0.0]]))
    assert single.item() == pytest.approx(0.84641, abs=1e-5)


@pytest.mark.parametrize(("gp", "gn", "clip"), [(1.0, 2.0, 0.0), (0.0, 4.0, 0.2), (2.0, 0.0, 0.05)])
def test_asl_other_settings(gp: float, gn: float, clip: float) -> None:
    loss = AsymmetricLoss(gp, gn, clip)(torch.tensor(LOGITS), torch.tensor(LABELS))
    assert loss.item() == pytest.approx(_asl_by_hand(LOGITS, LABELS, gp, gn, clip), rel=1e-6)


def test_asl_discards_easy_negatives_and_reduces_to_bce() -> None:
    asl = AsymmetricLoss(0.0, 4.0, 0.05)
    easy = torch.tensor([[math.log(0.04 / 0.96)]])  # p = 0.04 < clip → p_m = 0: no loss, no gradient
    easy.requires_grad_(True)
    loss = asl(easy, torch.zeros(1, 1))
    loss.backward()
    assert loss.item() == 0.0 and easy.grad.abs().item() == 0.0
    z, y = torch.tensor(LOGITS), torch.tensor(LABELS).float()
    plain = AsymmetricLoss(0.0, 0.0, 0.0)(z, y)
    assert plain.item() == pytest.approx(MultiLabelBCE()(z, y).item(), rel=1e-6)
    assert MultiLabelBCE()(z, y).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum").item() / 2, rel=1e-6
    )


def test_build_loss_reads_config() -> None:
    asl = build_loss(LossConfig(name="asl", gamma_pos=1.0, gamma_neg=3.0, clip=0.1, eps=1e-6))
    assert isinstance(asl, AsymmetricLoss)
    assert (asl.gamma_pos, asl.gamma_neg, asl.clip, asl.eps) == (1.0, 3.0, 0.1, 1e-6)
    assert isinstance(build_loss(LossConfig(name="bce")), MultiLabelBCE)


def test_training_loss_adds_the_weighted_aux_loss_and_aux_logits() -> None:
    """What a training step minimises: main loss + aux_loss + weight × main loss on aux_logits (same labels); a
    weight of 0 or no aux_logits leaves the main loss (+ aux_loss) exactly."""
    gen = torch.Generator().manual_seed(0)
    logits, extra = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    y = (torch.rand(6, 4, generator=gen) < 0.4).float()
    asl = AsymmetricLoss()
    main = asl(logits, y)
    assert torch.equal(training_loss(asl, ModelOutput(logits), y), main)
    assert torch.equal(training_loss(asl, ModelOutput(logits, aux_logits=extra, aux_logits_weight=0.0), y), main)
    aux = torch.tensor(0.25)
    got = training_loss(asl, ModelOutput(logits, aux_loss=aux, aux_logits=extra, aux_logits_weight=0.5), y)
    torch.testing.assert_close(got, main + aux + 0.5 * asl(extra, y))
    assert not torch.isclose(got, main + aux)
