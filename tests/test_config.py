from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aullm.config import Config, dump_config, load_config, save_config
from aullm.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_match_design():
    cfg = load_config()
    assert cfg.data.frames == 6 and cfg.data.size == 64
    assert cfg.data.aus == ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]
    assert cfg.llm.lora.r == 16 and cfg.llm.lora.alpha == 32 and cfg.llm.lora.targets == ["q_proj", "v_proj"]
    assert cfg.train.loss.gamma_pos == 0 and cfg.train.loss.gamma_neg == 4
    assert cfg.train.lr == pytest.approx(3e-5) and cfg.train.batch_size == 256 and cfg.train.epochs == 350
    assert cfg.model.token_position == "append" and cfg.protocol.folds == "all"


def test_yaml_values_and_overrides(tmp_path):
    path = write(tmp_path, "name: x\ndata: {dataset: samm, aus: [AU2, AU4]}\ntrain: {epochs: 3}\n")
    cfg = load_config(path, ["train.lr=1e-4", "llm.lora.r=8", "protocol.folds=[01, '02', 7]", "seeds=[1,2]"])
    assert cfg.data.dataset == "samm" and cfg.data.aus == ["AU2", "AU4"]
    assert cfg.train.epochs == 3 and cfg.train.lr == pytest.approx(1e-4)
    assert cfg.llm.lora.r == 8 and cfg.seeds == [1, 2]
    assert cfg.protocol.folds == ["1", "02", "7"]


def test_round_trip(tmp_path):
    cfg = load_config(
        None,
        ["model.name=aullmpp", "model.ccr.lambda=0.5", "protocol.name=cross_domain", "protocol.target={dataset: samm}"],
    )
    out = tmp_path / "run" / "config.yaml"
    save_config(cfg, out)
    again = load_config(out)
    assert again == cfg
    assert again.model.ccr.lambda_ == 0.5
    assert "lambda: 0.5" in out.read_text()  # the YAML key, not the Python attribute name
    assert dump_config(again) == out.read_text()


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("data: {frame: 6}\n", [], "unknown config key data.frame (did you mean data.frames?)"),
        ("bogus: 1\n", [], "unknown config key bogus"),
        ("", ["llm.lora.rank=4"], "unknown config key llm.lora.rank"),
        ("data: {frames: six}\n", [], "invalid value for data.frames: 'six' (expected int)"),
        ("model: {name: gpt}\n", [], "invalid value for model.name"),
        ("data: {frames: 1}\n", [], "invalid value for data.frames: 1 (must be at least 2)"),
        ("protocol: {name: cross_domain}\n", [], "protocol.target"),
        ("data: [1, 2]\n", [], "data must be a mapping"),
        ("", ["train.epochs"], "--set expects section.key=value"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    assert message in str(err.value)


def test_bad_yaml_reports_line(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot parse config file .* at line 3"):
        load_config(write(tmp_path, "data:\n  frames: 6\n  size: : 3\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_every_shipped_config_loads():
    configs = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))
    for path in configs:
        cfg = load_config(path)
        assert isinstance(cfg, Config), path
        assert yaml.safe_load(path.read_text())  # not empty


def test_synme_comparison_configs_match_the_demo_except_name_and_model():
    """`make synme-compare` puts these beside the demo: any other differing key would make the comparison unfair."""
    from dataclasses import asdict

    from aullm.demo import demo_config

    demo = asdict(demo_config(Path("data/synme")))
    paths = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("synme_demo_*.yaml"))
    models = {load_config(p).model.name for p in paths}
    assert models == {"sssnet_led", "resnet18_led", "resnet18", "resnet34", "lbptop", "aullmpp"}
    for path in paths:
        cfg = asdict(load_config(path))
        cfg["data"]["root"] = demo["data"]["root"]
        differing = sorted(k for k in demo if cfg[k] != demo[k])
        assert set(differing) <= {"name", "model"}, (path.name, differing)
