from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aullm.config import CONFIGS_DIR, Config, config_from_dict, dump_config, load_config, save_config
from aullm.core.errors import ConfigError


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
        ("", ["train.epochs"], "overrides expects section.key=value"),
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
    configs = sorted(CONFIGS_DIR.glob("*.yaml"))
    for path in configs:
        cfg = load_config(path)
        assert isinstance(cfg, Config), path
        assert yaml.safe_load(path.read_text())  # not empty


def test_synme_comparison_configs_match_the_demo_except_name_and_model():
    """`make synme-compare` puts these beside the demo: any other differing key would make the comparison unfair."""
    from dataclasses import asdict

    from aullm.workflows.demo import demo_config

    demo = asdict(demo_config(Path("data/synme")))
    paths = sorted(CONFIGS_DIR.glob("synme_demo_*.yaml"))
    models = {load_config(p).model.name for p in paths}
    assert models == {"sssnet_led", "resnet18_led", "resnet18", "resnet34", "lbptop", "aullmpp", "au_llm"}
    for path in paths:
        cfg = asdict(load_config(path))
        cfg["data"]["root"] = demo["data"]["root"]
        if path.name == "synme_demo_au_llm_random_llm.yaml":
            # the LLM ablation: its llm section differs from the demo's in the initialisation only
            assert cfg["llm"]["init"] == "random"
            cfg["llm"] = {**cfg["llm"], "init": demo["llm"]["init"], "init_seed": demo["llm"]["init_seed"]}
        differing = sorted(k for k in demo if cfg[k] != demo[k])
        assert set(differing) <= {"name", "model"}, (path.name, differing)
        if cfg["model"]["name"] == "au_llm":  # AU-LLM ablations: the model section differs only in the reasoner
            model = {**cfg["model"], "reasoner": demo["model"]["reasoner"]}
            assert model == demo["model"], path.name
    no_llm = load_config(CONFIGS_DIR / "synme_demo_au_llm_no_llm.yaml")
    assert no_llm.model.reasoner == "none"


@pytest.mark.parametrize("dataset", ["casme2", "samm"])
def test_llm_ablation_configs_differ_from_the_row_they_ablate_in_the_ablated_key_only(dataset):
    """A random-LLM config equals its paper row except llm.init; the no-LLM config equals the DeepSeek row except
    model.reasoner (its llm.name only sizes the token; all three paper LLMs have width 1536)."""
    from dataclasses import asdict

    configs = CONFIGS_DIR
    for llm in ("deepseek", "qwen2", "qwen2.5"):
        base = asdict(load_config(configs / f"{dataset}_au_llm_{llm}.yaml"))
        ablated = asdict(load_config(configs / f"{dataset}_au_llm_{llm}_random_llm.yaml"))
        assert ablated["llm"]["init"] == "random" and ablated["name"] == f"{base['name']}_random_llm"
        ablated["llm"]["init"] = "pretrained"
        assert {k for k in base if base[k] != ablated[k]} == {"name"}, llm
    base = asdict(load_config(configs / f"{dataset}_au_llm_deepseek.yaml"))
    no_llm = asdict(load_config(configs / f"{dataset}_au_llm_no_llm.yaml"))
    assert no_llm["model"]["reasoner"] == "none"
    no_llm["model"]["reasoner"] = "llm"
    assert {k for k in base if base[k] != no_llm[k]} == {"name"}


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "aullmpp", "reasoner": "none"}, "model.reasoner is not an option of model aullmpp"),
        ({"name": "au_llm", "variant": "prompt_learning", "reasoner": "none"}, "prompt_learning variant has none"),
        ({"name": "sssnet_led", "reasoner": "none"}, "model.reasoner is not an option of model sssnet_led"),
    ],
)
def test_reasoner_none_is_refused_where_there_is_no_visual_token_to_pass_on(model, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": model})


def test_new_options_default_to_the_paper_setting_and_bootstrap_must_not_be_negative():
    cfg = config_from_dict({})
    assert (cfg.llm.init, cfg.model.reasoner, cfg.eval.bootstrap) == ("pretrained", "llm", 2000)
    with pytest.raises(ConfigError, match=r"eval\.bootstrap"):
        config_from_dict({"eval": {"bootstrap": -1}})
    with pytest.raises(ConfigError, match=r"llm\.init"):
        config_from_dict({"llm": {"init": "scratch"}})
