"""`aullm bench step` (JSON contract in docs/design.md, Command line) and the benchmark library, on tiny-random."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aullm.cli import app
from aullm.workflows.bench import CONTRACT_KEYS, bench_step, synthetic_prepared

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_step_json_prints_exactly_the_contract_keys():
    result = runner.invoke(app, ["bench", "step", "--llm", "tiny-random", "--batch", "4", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    line = [text for text in result.stdout.splitlines() if text.startswith("{")][-1]
    payload = json.loads(line)
    assert list(payload) == ["llm", "batch", "prompt_tokens", "naive_s", "fast_s", "speedup", "max_abs_diff"]
    assert payload["llm"] == "tiny-random" and payload["batch"] == 4
    assert payload["prompt_tokens"] > 0
    assert payload["naive_s"] > 0 and payload["fast_s"] > 0
    assert abs(payload["speedup"] - payload["naive_s"] / payload["fast_s"]) < 1e-2 * payload["speedup"]
    assert payload["max_abs_diff"] <= 1e-4


def test_bench_step_library_agrees_and_reports_device():
    result = bench_step("tiny-random", batch=3, device="cpu", repeats=1)
    assert tuple(result.contract()) == CONTRACT_KEYS
    assert result.device == "cpu" and result.dtype == "float32"
    assert result.max_abs_diff <= 1e-4


def test_bench_step_unknown_llm_is_exit_2():
    result = runner.invoke(app, ["bench", "step", "--llm", "no-such-llm", "--json"])
    assert result.exit_code == 2
    assert "no-such-llm" in result.output


def test_synthetic_prepared_batches_like_a_dataset():
    import numpy as np

    from aullm.data.clips import sample_batch

    data = synthetic_prepared(12, frames=6, size=32, aus=["AU1", "AU2"], seed=0)
    assert len(data) == 12 and data.labels.shape == (12, 2)
    batch = sample_batch(data, np.arange(5), train=True, rng=np.random.default_rng(0), frames=6)
    assert tuple(batch.shape) == (5, 6, 32, 32)


def test_bench_step_reports_repeats_and_their_spread():
    result = runner.invoke(
        app, ["bench", "step", "--llm", "tiny-random", "--batch", "2", "--device", "cpu", "--repeats", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "median of 5 steps" in result.output and "per repeat" in result.output
    bad = runner.invoke(app, ["bench", "step", "--llm", "tiny-random", "--repeats", "0"])
    assert bad.exit_code == 2 and "--repeats" in bad.output


def test_bench_step_fast_path_prepacks_and_naive_stays_plain():
    """The fast path runs aullm's pre-packed products where oneDNN is there; the naive path is the straightforward
    implementation with torch's default products either way, and both still compute the same logits."""
    from aullm.models.kernels import prepacked

    packed = bench_step("tiny-random", batch=3, device="cpu", repeats=1)
    assert packed.prepacked == prepacked.onednn_available()
    assert packed.max_abs_diff <= 1e-4
    plain = bench_step("tiny-random", batch=3, device="cpu", repeats=1, prepack=False)
    assert plain.prepacked is False and plain.max_abs_diff <= 1e-4


def test_bench_step_no_prepack_option():
    result = runner.invoke(
        app,
        ["bench", "step", "--llm", "tiny-random", "--batch", "2", "--device", "cpu", "--repeats", "1", "--no-prepack"],
    )
    assert result.exit_code == 0, result.output
    assert "fast (shared prompt prefix)" in result.output and "pre-packed" not in result.output


def test_bench_step_model_aullmpp_times_the_whole_step_beside_au_llm():
    """`--model aullmpp`: the contract keys (naive = its full sequence per sample, fast = its cached path, which
    agree on the logits), plus AU-LLM's step timed alternately on the same LLM, batch and clips."""
    args = ["bench", "step", "--llm", "tiny-random", "--batch", "2", "--device", "cpu", "--repeats", "1"]
    result = runner.invoke(app, [*args, "--model", "aullmpp", "--set", "model.token_order=prompt_ct_it", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads([text for text in result.stdout.splitlines() if text.startswith("{")][-1])
    assert list(payload)[:7] == list(CONTRACT_KEYS)
    assert payload["model"] == "aullmpp" and payload["options"]["token_order"] == "prompt_ct_it"
    assert payload["batch"] == 2 and payload["au_llm_s"] > 0 and payload["fast_s"] > 0
    assert abs(payload["ratio_to_au_llm"] - payload["fast_s"] / payload["au_llm_s"]) < 1e-2 * payload["ratio_to_au_llm"]
    assert payload["max_abs_diff"] <= 1e-5
    for key in ("naive_times", "fast_times", "au_llm_times"):  # every repeat, for the spread
        assert len(payload[key]) == 1 and payload[key][0] > 0
    text = runner.invoke(app, [*args, "--model", "aullmpp"])
    assert text.exit_code == 0, text.output
    assert "aullmpp fast path" in text.output and "au_llm (the demo's model" in text.output
    bad = runner.invoke(app, [*args, "--model", "aullmpp", "--set", "train.lr=1"])
    assert bad.exit_code == 2 and "model.KEY=VALUE" in bad.output
    unknown = runner.invoke(app, [*args, "--model", "resnet18"])
    assert unknown.exit_code == 2 and "--model" in unknown.output
