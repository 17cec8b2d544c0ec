"""What a run leaves out: reported even when the data comes from the cache, recorded in data.json, and never a
reason to refuse a resume (only the data fingerprints are compared)."""

from __future__ import annotations

import json

import pytest

from aullm.config import config_from_dict
from aullm.core.errors import UserError
from aullm.data.cache import prepare_dataset
from aullm.training import run_dir
from aullm.training.session import Experiment, build_experiment
from fixtures_data import casme2_clips, write_casme2


@pytest.fixture
def flawed_casme2(tmp_path):
    """Six CASME II clips over three subjects: one with a corrupt JPEG (found only by decoding), one whose AUs are
    unknown (`?`)."""
    clips = casme2_clips(6, frames=6, subjects=3)
    clips[2].frames = "corrupt"
    clips[4].aus = "?"
    write_casme2(tmp_path / "data", clips)
    data = {"root": str(tmp_path / "data"), "size": 16, "aus": ["AU4"], "cache_dir": str(tmp_path / "cache")}
    names = {
        "corrupt": f"{clips[2].subject:02d}/{clips[2].filename}",
        "unknown": f"{clips[4].subject:02d}/{clips[4].filename}",
    }
    return config_from_dict({"data": data}), names


def test_a_run_from_the_cache_still_reports_and_records_what_it_left_out(tmp_path, flawed_casme2, warnings_log):
    cfg, names = flawed_casme2
    fresh = build_experiment(cfg)
    assert not fresh.train_data.from_cache
    recorded = fresh.fingerprint()
    reasons = {s["sample"]: s["reason"] for s in recorded["skipped"]["train"]}
    assert set(reasons) == {names["corrupt"], names["unknown"]}
    assert "unreadable image" in reasons[names["corrupt"]] and "unknown" in reasons[names["unknown"]]
    assert "test" not in recorded["skipped"]  # LOSO tests on the training data itself

    warnings_log.clear()
    cached = build_experiment(cfg)
    assert cached.train_data.from_cache
    assert cached.fingerprint() == recorded
    for name in names.values():
        assert any(name in m and "left out" in m for m in warnings_log), (name, warnings_log)

    out = tmp_path / "run"
    out.mkdir()
    run_dir.check_data(out, cached.fingerprint())
    assert json.loads((out / "data.json").read_text())["skipped"] == recorded["skipped"]


def test_resume_compares_only_the_fingerprints(tmp_path, flawed_casme2):
    cfg, _ = flawed_casme2
    recorded = build_experiment(cfg).fingerprint()
    out = tmp_path / "run"
    out.mkdir()
    run_dir.check_data(out, recorded)
    run_dir.check_data(out, {**recorded, "skipped": {"train": []}})  # other notes: still the same data
    legacy = {k: v for k, v in recorded.items() if k != "skipped"}  # a data.json written before `skipped` existed
    (out / "data.json").write_text(json.dumps(legacy))
    run_dir.check_data(out, recorded)
    (out / "folds" / "01").mkdir(parents=True)
    (out / "folds" / "01" / "done").write_text("{}")  # a finished fold: from now on the data must not change
    with pytest.raises(UserError, match="trained on different data"):
        run_dir.check_data(out, {**recorded, "train": "0" * 64})


def test_cross_domain_records_both_datasets_skips(flawed_casme2):
    cfg, names = flawed_casme2
    train = prepare_dataset(cfg.data)
    test = prepare_dataset(config_from_dict({"data": {**vars(cfg.data), "size": 20}}).data)
    skipped = Experiment(train, test, []).fingerprint()["skipped"]
    assert {s["sample"] for s in skipped["test"]} == set(names.values()) == {s["sample"] for s in skipped["train"]}
