"""The comparison rows of the paper's Tables 1–2 as `model.name` choices, trained by the same trainer and protocol.

- `sssnet_led` ("SSSNet LED", Varanka et al.): LED filter → AU-LLM's own 3D-CNN with the SE layer switched off →
  fc(256) + ReLU + dropout (the backbone's F_high) → linear head. This is the reference LED network that the
  AU-LLM backbone extends, so the row isolates what SE + EFP + LLM add. With `data.input: flow` the backbone
  skips LED and runs on the flow triple (SSSNet's original input).
- `resnet18_led` ("Resnet18 LED"): LED filter → the filtered frames 1..T−1 stacked as channels → ResNet-18.
  Frames-as-channels rather than a per-frame encoder + temporal pooling because (1) LED output frames are not
  images but signed temporal band-pass responses, whose information is in how they differ across time; the first
  conv can weigh phases against each other (as the 3D-CNN's temporal kernel does), while average/max pooling of
  per-frame features would discard the order; (2) it costs one ResNet pass per clip instead of T−1, which keeps
  a 26-fold LOSO affordable.
  LED output frame 0 is the unfiltered input frame (appearance, not motion) and is dropped, as in the backbone.
- `resnet18`, `resnet34` ("Resnet18/34"): the same ResNets without LED, on the T sampled gray frames stacked as
  channels. Stacked frames rather than apex − onset: the shared clip sampler gives every model the same T frames
  and no apex index (apex is `/` for some CASME II clips), and the first conv can form any frame difference
  (apex − onset included) because it is linear in the input. Without LED nothing amplifies the 1–3 px motion,
  which is what these rows measure.
- `lbptop` ("LBPTOP"): LBP-TOP histograms + a class-balanced linear SVM per AU (`aullm.models.baselines.lbptop`).

Every torch baseline is an `AUModel`: `reset(seed)` re-draws every weight exactly as a fresh build with that seed,
and the whole network is trainable state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from torch import Tensor, nn

from aullm.core.errors import UserError
from aullm.models.base import AUModel, ModelOutput, init_module_, seeded_generator
from aullm.models.baselines.configuration_baselines import LBPTOPConfig, ResNetLEDConfig, SSSNetLEDConfig
from aullm.models.baselines.lbptop import LBPTOPClassifier
from aullm.models.baselines.resnet import RESNET_LAYERS, ResNet, init_resnet_
from aullm.models.blocks.backbone import AUBackbone
from aullm.models.blocks.led import MEB_LED_STABILITY, LEDFilter

if TYPE_CHECKING:
    from aullm.config import Config
    from aullm.models.llm.loading import LoadedLLM


class SSSNetLED(AUModel):
    """LED → 3D-CNN (no SE) → fc(256) → linear head: the "SSSNet LED" row."""

    def __init__(
        self,
        num_aus: int,
        *,
        frames: int = 6,
        size: int = 64,
        input_kind: Literal["clip", "flow"] = "clip",
        dropout: float = 0.5,
        seed: int = 0,
        aus: Optional[list[str]] = None,
        led_stability: float = MEB_LED_STABILITY,
    ) -> None:
        super().__init__()
        self.aus = list(aus) if aus is not None else [f"AU{k}" for k in range(num_aus)]
        self.backbone = AUBackbone(
            frames=frames, size=size, input_kind=input_kind, dropout=dropout, se=False, led_stability=led_stability
        )
        self.head = nn.Linear(self.backbone.high_dim, num_aus)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        generator = seeded_generator(seed)
        init_module_(self.backbone, generator)
        init_module_(self.head, generator)

    def forward(self, x: Tensor) -> ModelOutput:
        return ModelOutput(logits=self.head(self.backbone(x).f_high))


class ResNetBaseline(AUModel):
    """Gray clip [B, T, H, W] → (optional LED, frames 1..T−1) → frames as channels → ResNet-18/34 → K logits."""

    def __init__(
        self,
        num_aus: int,
        *,
        depth: int = 18,
        led: bool = False,
        frames: int = 6,
        size: int = 64,
        seed: int = 0,
        aus: Optional[list[str]] = None,
        led_stability: float = MEB_LED_STABILITY,
    ) -> None:
        super().__init__()
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet depth must be 18 or 34, got {depth}")
        if led and frames < 2:
            raise ValueError(f"the LED filter needs at least 2 frames, got {frames}")
        self.aus = list(aus) if aus is not None else [f"AU{k}" for k in range(num_aus)]
        self.depth = depth
        self.frames = frames
        self.size = size
        self.led = LEDFilter(pixel_stability=led_stability) if led else None
        self.resnet = ResNet(RESNET_LAYERS[depth], in_channels=frames - 1 if led else frames, num_classes=num_aus)
        self.reset(seed)

    def reset(self, seed: int) -> None:
        generator = seeded_generator(seed)
        if self.led is not None:
            self.led.init_own_parameters(generator)
        init_resnet_(self.resnet, generator)

    def _channels(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.frames:
            raise ValueError(f"expected clips [B, {self.frames}, H, W], got {tuple(x.shape)}")
        if self.led is None:
            return x
        return self.led.filter_frames(x)  # [B, T−1, H, W]: the unfiltered frame 0 is dropped

    def forward(self, x: Tensor) -> ModelOutput:
        return ModelOutput(logits=self.resnet(self._channels(x)))


def _clip_input_only(cfg: Config, name: str) -> None:
    if cfg.data.input != "clip":
        raise UserError(f"model.name {name} works on gray clips; set data.input: clip (got {cfg.data.input})")


def build_sssnet_led(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], seed: int) -> SSSNetLED:
    options = cfg.model
    if not isinstance(options, SSSNetLEDConfig):
        raise TypeError(f"build_sssnet_led needs SSSNet-LED options, got {type(options).__name__}")
    return SSSNetLED(
        len(aus),
        frames=cfg.data.frames,
        size=cfg.data.size,
        input_kind=cfg.data.input,
        dropout=options.dropout,
        seed=seed,
        aus=aus,
        led_stability=options.led_stability,
    )


# model.name → (ResNet depth, LED filter in front)
RESNETS: dict[str, tuple[int, bool]] = {"resnet18_led": (18, True), "resnet18": (18, False), "resnet34": (34, False)}


def build_resnet(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], seed: int) -> ResNetBaseline:
    """`resnet18_led`, `resnet18` or `resnet34`, as `model.name` says."""
    name = cfg.model.name
    if name not in RESNETS:
        raise ValueError(f"build_resnet builds {', '.join(RESNETS)}, not {name!r}")
    _clip_input_only(cfg, name)
    depth, led = RESNETS[name]
    options = cfg.model
    return ResNetBaseline(
        len(aus),
        depth=depth,
        led=led,
        frames=cfg.data.frames,
        size=cfg.data.size,
        seed=seed,
        aus=aus,
        led_stability=options.led_stability if isinstance(options, ResNetLEDConfig) else MEB_LED_STABILITY,
    )


def build_lbptop(cfg: Config, aus: list[str], llm: Optional[LoadedLLM], seed: int) -> LBPTOPClassifier:
    options = cfg.model
    if not isinstance(options, LBPTOPConfig):
        raise TypeError(f"build_lbptop needs LBP-TOP options, got {type(options).__name__}")
    _clip_input_only(cfg, "lbptop")
    grid = options.lbp_grid
    if grid > cfg.data.size - 2:
        raise UserError(f"model.lbp_grid {grid} does not fit {cfg.data.size}×{cfg.data.size} frames")
    return LBPTOPClassifier(len(aus), grid=grid, c=options.svm_c, seed=seed, aus=aus)
