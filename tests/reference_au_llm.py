"""A straightforward re-implementation of the AU-LLM authors' network (`Net_EnhancedFusion_LLM` in their
AULLMmain.py, commit 45430d0) and of the LED filters of the two reference codes, written from their published
source for comparison tests. It is not their code: it runs on the weights of an aullm model and follows the same
sequence of operations, including the reference's raw 0–255 pixel scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from aullm.models.au_llm.modeling_au_llm import AULLM

#: The prompt of the authors' script ("Analyse the following fused facial video features to classify action units.")
REFERENCE_PROMPT = "分析以下融合后的面部视频特征以进行动作单元分类。"


def reference_led_matrix(alpha: float | Tensor, r1: float | Tensor, r2: float | Tensor, frames: int) -> Tensor:
    """calculate_W: the T×T LED matrix, entry by entry."""
    w = torch.zeros(frames, frames, dtype=torch.float64)
    for i in range(frames):
        for j in range(frames):
            a, b = j - i, min(1, i)
            if j > i:
                w[i, j] = alpha * (1 - r1) ** a * r1**b - alpha * (1 - r2) ** a * r2**b
            elif j == i:
                w[i, j] = alpha * (r1 - r2)
    return w


def reference_led(x: Tensor, w: Tensor, stabiliser: float) -> Tensor:
    """The reference LED on a clip x [S, F, C, H, W] of raw 0–255 pixels; frame 0 passes through.

    AU-LLM's script: stabiliser 1e-8 and |x| in the normaliser; MEB's LED: stabiliser 1 (and x itself, the same for
    pixels, which are never negative).
    """
    w = w.to(x.dtype)
    out = torch.einsum("sfchw,fx->sxchw", x, w)
    div = torch.einsum("sfchw,fx->sxchw", torch.abs(x), torch.abs(w))
    out = out / (div + stabiliser)
    out[:, 0] = x[:, 0]
    return out


def reference_au_llm_logits(model: AULLM, clips: Tensor) -> Tensor:
    """Net_EnhancedFusion_LLM.forward on `model`'s weights (eval mode: dropout off) for clips [B, T, H, W] in [0, 1].

    The reference reads 0–255 pixels, so the clip is scaled first; its SE layer has no biases, so `model` must have
    none either (aullm's default) or zero ones. The LLM runs the whole [prompt, token] sequence per sample and the
    last position's final hidden state goes to the classifier, as in the script (in float32 here).
    """
    backbone, led = model.backbone, model.backbone.led
    assert led is not None and model.projector is not None
    x = (clips * 255.0).unsqueeze(2)  # [S, F, C=1, H, W]
    w = reference_led_matrix(led.alpha.item(), led.r1.item(), led.r2.item(), x.shape[1])
    x = reference_led(x, w, 1e-8)
    x = x[:, 1:].permute(0, 2, 1, 3, 4)
    x = backbone.bn1(backbone.pool1(F.relu(backbone.conv1(x))))
    x = backbone.bn2(F.relu(backbone.conv2(x)))
    b, c, d, h, wd = x.shape
    x_se = x.permute(0, 2, 1, 3, 4).reshape(b * d, c, h, wd)
    se = backbone.se
    squeezed = F.adaptive_avg_pool2d(x_se, 1).view(b * d, c)
    excite = torch.sigmoid(F.linear(F.relu(F.linear(squeezed, se.fc1.weight)), se.fc2.weight)).view(b * d, c, 1, 1)
    x = (x_se * excite.expand_as(x_se)).view(b, d, c, h, wd).permute(0, 2, 1, 3, 4)
    mid = backbone.pool2(x)
    mid_flat = mid.reshape(mid.shape[0], -1)
    high = F.relu(backbone.fc_high(mid_flat))
    projected = model.projector(torch.cat([mid_flat, high], dim=1))
    reasoner = model.reasoner
    embeddings = reasoner.decoder.get_input_embeddings()(reasoner.prompt_ids).expand(b, -1, -1)
    combined = torch.cat([embeddings, projected.unsqueeze(1).to(embeddings.dtype)], dim=1)
    hidden = reasoner.decoder(inputs_embeds=combined).last_hidden_state[:, -1, :]
    return model.head(hidden.float())
