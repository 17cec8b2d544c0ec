"""Options of the comparison models (`baselines.py`): SSSNet-LED, the ResNets and LBP-TOP + SVM."""

from __future__ import annotations

from dataclasses import dataclass

from aullm.core.options import ModelConfig, check, check_led_stability


@dataclass
class SSSNetLEDConfig(ModelConfig):
    """LED filter → AU-LLM's 3D-CNN without SE → fc → head."""

    name: str = "sssnet_led"
    dropout: float = 0.3
    # The constant added to the LED normaliser, in 0–255 pixel units (as the reference codes state it): MEB's LED
    # network adds 1. 255 reproduces aullm's earlier filter (1.0 on its [0, 1] pixels).
    led_stability: float = 1.0

    def __post_init__(self) -> None:
        check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "must be in [0, 1)")
        check_led_stability(self.led_stability)


@dataclass
class ResNetConfig(ModelConfig):
    """`resnet18_led`, `resnet18`, `resnet34`: frames stacked as channels (after LED for `_led`) → ResNet.
    The torchvision-style ResNets have no dropout, so they take no options."""

    name: str = "resnet18"


@dataclass
class ResNetLEDConfig(ResNetConfig):
    """`resnet18_led`: the ResNet behind the LED filter, whose normaliser constant it takes (as SSSNet-LED)."""

    name: str = "resnet18_led"
    led_stability: float = 1.0  # 0–255 pixel units; MEB's LED adds 1

    def __post_init__(self) -> None:
        check_led_stability(self.led_stability)


@dataclass
class LBPTOPConfig(ModelConfig):
    """LBP-TOP histograms on an N×N block grid + one linear SVM per AU."""

    name: str = "lbptop"
    lbp_grid: int = 5
    svm_c: float = 1.0

    @property
    def bundleable(self) -> bool:
        return False  # closed-form SVMs over LBP-TOP histograms, not torch weights

    def __post_init__(self) -> None:
        check(self.lbp_grid >= 1, "model.lbp_grid", self.lbp_grid, "must be at least 1")
        check(self.svm_c > 0, "model.svm_c", self.svm_c, "must be > 0")
