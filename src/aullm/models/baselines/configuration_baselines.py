"""Options of the comparison models (`baselines.py`): SSSNet-LED, the ResNets and LBP-TOP + SVM."""

from __future__ import annotations

from dataclasses import dataclass

from aullm.core.options import DropoutOptions, LEDOptions, ModelConfig, check


@dataclass
class SSSNetLEDConfig(LEDOptions, DropoutOptions):
    """LED filter → AU-LLM's 3D-CNN without SE → fc → head."""

    name: str = "sssnet_led"
    led_stability: float = 1.0  # MEB's LED network adds 1


@dataclass
class ResNetConfig(ModelConfig):
    """`resnet18_led`, `resnet18`, `resnet34`: frames stacked as channels (after LED for `_led`) → ResNet.
    The torchvision-style ResNets have no dropout, so they take no options."""

    name: str = "resnet18"


@dataclass
class ResNetLEDConfig(LEDOptions, ResNetConfig):
    """`resnet18_led`: the ResNet behind the LED filter, whose normaliser constant it takes (as SSSNet-LED)."""

    name: str = "resnet18_led"
    led_stability: float = 1.0  # MEB's LED network adds 1


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
        super().__post_init__()
        check(self.lbp_grid >= 1, "model.lbp_grid", self.lbp_grid, "must be at least 1")
        check(self.svm_c > 0, "model.svm_c", self.svm_c, "must be > 0")
