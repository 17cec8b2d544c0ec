"""Bundles, `aullm predict` and `aullm explain` end to end: a tiny SynME run with the tiny-random LLM is trained once
(LOSO folds, then --save-final on the finished run) and every test uses its bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from aullm.api import explain
from aullm.cli import app
from aullm.config import load_config
from aullm.data.clips import list_frames
from aullm.data.decode import read_frame
from aullm.data.faces import detect as faces
from aullm.data.synme import generate_synme
from aullm.inference.bundle import BundleError, load_bundle, verify_bundle, write_bundle, write_manifest
from aullm.inference.explain import cam_to_input, explain_decoded
from aullm.inference.predict import ClipRequest, collect_requests, decode_request, predict, predict_clips
from aullm.workflows import experiment as workflows
from fixtures_faces import astronaut, on_canvas, rotated

runner = CliRunner()


def cli(args: list[str]):
    """Invoke the CLI in-process; afterwards drop the log handler bound to CliRunner's (then closed) stderr."""
    from aullm.core.console import logger

    try:
        return runner.invoke(app, args)
    finally:
        logger.handlers.clear()
        logger.propagate = True


AUS = ["AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"]
PROBS = [f"{au}_prob" for au in AUS]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A LOSO run (3 subjects × 3 clips, 1 epoch) started on two folds, then resumed with --save-final."""
    base = tmp_path_factory.mktemp("predict")
    root = base / "synme"
    truth = generate_synme(root, subjects=3, clips_per_subject=3, seed=3, size=128)
    config = base / "tiny.yaml"
    config.write_text(f"""
name: tiny
seeds: [1]
data: {{dataset: synme, root: {root}, size: 32, cache_dir: {base / "cache"}}}
model: {{name: au_llm, dropout: 0.1}}
llm: {{name: tiny-random}}
train: {{epochs: 1, batch_size: 8, lr: 1.0e-3}}
eval: {{validation_subjects: 1}}
""")
    out = base / "run"
    workflows.train(load_config(config, ["protocol.folds=[1, 2]"]), out)  # a partial run: no final model yet
    assert not (out / "bundle").exists()
    # resumed with --save-final: fold 03 trains, then the final model, then the bundle is written
    workflows.train(load_config(config, ["train.save_final=true"]), out)
    return {"base": base, "root": root, "truth": truth, "out": out, "bundle": out / "bundle"}


def _manifest(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _bundle_copy(run: dict, name: str) -> Path:
    target = run["base"] / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run["bundle"], target)
    return target


# --------------------------------------------------------------------------------------------- the bundle


def test_bundle_layout_and_reference(run):
    bundle = run["bundle"]
    assert sorted(p.name for p in bundle.iterdir()) == [
        "adapter",  # the LoRA adapter in PEFT's format (tests/test_peft_export.py)
        "bundle.json",
        "config.yaml",
        "manifest.json",
        "weights.safetensors",
    ]
    meta = verify_bundle(bundle)
    assert meta["aus"] == AUS and set(meta["thresholds"]) == set(AUS)
    assert all(0.0 < t < 1.0 for t in meta["thresholds"].values())
    assert meta["threshold_source"].startswith("val_tuned")  # eval.validation_subjects=1 → tuned, not 0.5
    assert meta["llm"]["name"] == "tiny-random" and meta["llm"]["kind"] == "preset"
    assert len(meta["llm"]["sha256"]) == 64
    assert meta["trained_on"]["fold"] == "final"
    assert meta["trained_on"]["subjects"] == sorted(set(run["truth"]["subject"])) == ["01", "02", "03"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "bundle.json",
        "config.yaml",
        "weights.safetensors",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    }
    # the trained weights are the final model's, and no base-LLM weight is in the bundle
    final = load_file(str(run["out"] / "final" / "weights_seed1.safetensors"))
    weights = load_file(str(bundle / "weights.safetensors"))
    assert weights.keys() == final.keys() and all(torch.equal(weights[k], final[k]) for k in weights)
    llm_keys = [k for k in weights if k.startswith("reasoner.")]
    assert llm_keys and all(".lora_" in k for k in llm_keys)  # LoRA only: the base LLM is referenced, not copied
    assert load_config(bundle / "config.yaml").llm.name == "tiny-random"


def test_tampered_bundle_is_refused(run):
    bundle = _bundle_copy(run, "tampered")
    data = bytearray((bundle / "weights.safetensors").read_bytes())
    data[-1] ^= 0x01
    (bundle / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights\.safetensors.*refusing"):
        load_bundle(bundle, device="cpu")
    clip = next((run["root"] / "Cropped").glob("sub*/*"))
    result = cli(["predict", str(clip), "--checkpoint", str(bundle)])
    assert result.exit_code == 2
    assert "modified or corrupted" in result.output and len(result.output.strip().splitlines()) == 1
    # an edited threshold is caught just the same; a missing file too
    bundle = _bundle_copy(run, "edited")
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["thresholds"]["AU12"] = 0.01
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"bundle\.json"):
        verify_bundle(bundle)
    (bundle / "config.yaml").unlink()
    with pytest.raises(BundleError, match=r"config\.yaml is missing"):
        verify_bundle(bundle)
    with pytest.raises(BundleError, match="not found"):
        verify_bundle(run["base"] / "no_such_bundle")


def test_unavailable_base_llm_is_one_clear_line(run):
    cfg = load_config(run["bundle"] / "config.yaml", ["llm.name=no-such-org/no-such-model-123"])
    state = load_file(str(run["bundle"] / "weights.safetensors"))
    ref = {
        "name": "no-such-org/no-such-model-123",
        "source": "hf:no-such-org/no-such-model-123@abc",
        "sha256": "0" * 64,
    }
    bundle = write_bundle(
        run["base"] / "other_llm",
        cfg,
        state,
        llm_reference=ref,
        thresholds=dict.fromkeys(AUS, 0.5),
        threshold_source="eval.threshold",
        trained_on={},
    )
    with pytest.raises(BundleError, match=r"no-such-org/no-such-model-123.*download"):
        load_bundle(bundle, device="cpu")
    clip = next((run["root"] / "Cropped").glob("sub*/*"))
    result = cli(["predict", str(clip), "--checkpoint", str(bundle)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no-such-org/no-such-model-123" in lines[0] and "--llm" in lines[0]
    # the right name but other weights (sha256 differs) → refused: the LoRA weights would not fit
    bundle = _bundle_copy(run, "wrong_sha")
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["llm"]["sha256"] = "f" * 64
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)
    with pytest.raises(BundleError, match="sha256 ffffffffffff"):
        load_bundle(bundle, device="cpu")


# --------------------------------------------------------------------------------------------- predict


def test_predict_reproduces_the_runs_own_predictions(run):
    """Final model: predict on every SynME clip = final/predictions.csv; a fold's exported bundle on its held-out
    subject = that fold's rows of the run's predictions.csv. Batches of 4 cross clip boundaries."""
    clips = sorted((run["root"] / "Cropped").glob("sub*/*"))
    manifest = _manifest(
        run["base"] / "all.csv", [{"clip": f"{c.parent.name[3:]}/{c.name}", "path": str(c)} for c in clips]
    )
    result = predict(manifest, run["out"], batch_size=4, device="cpu")  # a run dir stands for its bundle/
    table = result.table
    assert list(table.columns) == ["clip", *PROBS, *AUS, "status", "n_frames"]
    assert (table["status"] == "ok").all() and len(table) == len(clips) == 9
    own = pd.read_csv(run["out"] / "final" / "predictions.csv", dtype={"subject": str, "sample": str})
    own["clip"] = own["subject"].str.lstrip("0") + "/" + own["sample"]
    table["clip"] = table["clip"].str.lstrip("0")
    merged = table.merge(own, on="clip", validate="one_to_one")
    assert len(merged) == 9
    np.testing.assert_allclose(
        merged[PROBS].to_numpy(float), merged[[f"prob_{a}" for a in AUS]].to_numpy(float), atol=1e-5
    )
    thresholds = json.loads((run["bundle"] / "bundle.json").read_text())["thresholds"]
    for au in AUS:  # decisions at the bundle's (val-tuned) thresholds, ties positive
        assert (table[au].astype(int) == (table[f"{au}_prob"] >= thresholds[au]).astype(int)).all()

    res = cli(["export", str(run["out"]), "--fold", "2"])  # "2" names fold "02", as in protocol.folds
    assert res.exit_code == 0, res.output
    fold_bundle = run["out"] / "bundle_fold02_seed1"
    assert f"model bundle: {fold_bundle}" in res.stdout
    fold_meta = verify_bundle(fold_bundle)
    assert fold_meta["trained_on"]["fold"] == "02" and fold_meta["threshold_source"].startswith("val_tuned (fold")
    sub = sorted((run["root"] / "Cropped" / "sub02").iterdir())
    manifest = _manifest(run["base"] / "sub02.csv", [{"subject": "02", "sample": c.name, "path": str(c)} for c in sub])
    table = predict(manifest, fold_bundle, batch_size=2, device="cpu").table
    preds = pd.read_csv(run["out"] / "predictions.csv", dtype={"subject": str, "sample": str, "fold": str})
    preds = preds[preds["fold"] == "02"].assign(clip=lambda f: f["subject"] + "/" + f["sample"])
    merged = table.merge(preds, on="clip", validate="one_to_one")
    assert len(merged) == len(sub) == 3
    np.testing.assert_allclose(
        merged[PROBS].to_numpy(float), merged[[f"prob_{a}" for a in AUS]].to_numpy(float), atol=1e-5
    )


def _write_mp4(frames_dir: Path, out: Path) -> Path:
    """An H.264 mp4 of a SynME clip (near-lossless, as a camera pipeline would store it)."""
    images = [np.asarray(Image.open(p).convert("RGB")) for p in list_frames(frames_dir)]
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "12"})
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return out


def test_video_gives_the_frames_folders_result(run):
    clips = sorted((run["root"] / "Cropped").glob("sub*/*"))[:3]
    videos = [_write_mp4(c, run["base"] / f"{c.parent.name}_{c.name}.mp4") for c in clips]
    bundle = load_bundle(run["bundle"], device="cpu")
    from_frames = predict_clips(bundle, [ClipRequest(c.name, c) for c in clips]).table
    # SynME's drawn faces are not faces to MTCNN: the frames as they are (a video is aligned by default)
    from_video = predict_clips(bundle, [ClipRequest(c.name, v) for c, v in zip(clips, videos)], face_crop="none").table
    assert (from_video["status"] == "ok").all()
    assert from_video["n_frames"].tolist() == from_frames["n_frames"].tolist()
    diff = np.abs(from_video[PROBS].to_numpy(float) - from_frames[PROBS].to_numpy(float))
    assert diff.max() < 0.02, diff.max()  # H.264 + a different resize path (JPEG draft vs full decode)
    # a frame range picks the same frames in both: file numbers for the folder, 0-based indices for the video
    first = int(list_frames(clips[0])[0].stem.replace("reg_img", ""))
    ranged_frames = predict_clips(bundle, [ClipRequest("f", clips[0], onset=first + 2, offset=first + 9)]).table
    ranged_video = predict_clips(bundle, [ClipRequest("v", videos[0], onset=2, offset=9)], face_crop="none").table
    assert ranged_frames["n_frames"].tolist() == ranged_video["n_frames"].tolist() == [8]
    assert np.abs(ranged_frames[PROBS].to_numpy(float) - ranged_video[PROBS].to_numpy(float)).max() < 0.02
    # explain reads its display frame from the video too
    ex = explain_decoded(bundle, decode_request(ClipRequest("v", videos[0], apex=5), bundle.size, bundle.frames))
    assert ex.frame.shape == (256, 256) and ex.cams.shape == (len(AUS), 32, 32) and ex.apex_pos == 5
    assert np.allclose(ex.probs, from_video[PROBS].to_numpy(float)[0], atol=1e-5)
    # the CLI on the video: CSV on stdout, the documented columns
    result = cli(["predict", str(videos[0]), "--checkpoint", str(run["bundle"]), "--device", "cpu", "--no-align"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split(",")
    assert header == ["clip", *PROBS, *AUS, "status", "n_frames"]
    # by default a video is raw footage and is aligned: MTCNN finds the drawn face on the colour onset frame
    result = cli(["predict", str(videos[0]), "--checkpoint", str(run["bundle"]), "--device", "cpu"])
    assert result.exit_code == 0 and result.stdout.splitlines()[1].endswith(",ok,15"), result.output
    # a video without a face: that row fails, saying so
    from skimage import data

    cat = cv2.resize(cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR), (128, 128))
    no_face = run["base"] / "cat.mp4"
    with av.open(str(no_face), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = 128
        stream.pix_fmt = "yuv420p"
        for _ in range(8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(cat, format="bgr24")):
                container.mux(packet)
        container.mux(stream.encode())
    result = cli(["predict", str(no_face), "--checkpoint", str(run["bundle"]), "--device", "cpu"])
    assert result.exit_code == 2 and "no face found in frame 0 of" in result.output, result.output
    result = cli(["predict", str(videos[0]), "-c", str(run["bundle"]), "--crop-face", "--align"])
    assert result.exit_code == 2 and "alternatives" in result.output


def test_bad_inputs_fail_their_row_and_the_others_go_on(run):
    base = run["base"] / "bad"
    base.mkdir(exist_ok=True)
    clips = sorted((run["root"] / "Cropped").glob("sub*/*"))
    good = clips[0]
    (base / "broken.mp4").write_bytes(b"this is not a video" * 50)
    short = base / "short"
    short.mkdir(exist_ok=True)
    for p in list_frames(good)[:3]:
        shutil.copy(p, short / p.name)
    (base / "empty").mkdir(exist_ok=True)
    blank = base / "blank"
    blank.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((120 + rng.normal(0, 3, (128, 128))).clip(0, 255).astype(np.uint8)).save(blank / f"{i}.png")
    manifest = _manifest(
        base / "bad.csv",
        [
            {"clip": "good", "path": str(good)},
            {"clip": "broken", "path": "broken.mp4"},  # relative to the manifest's folder
            {"clip": "short", "path": "short"},
            {"clip": "empty", "path": "empty"},
            {"clip": "missing", "path": "nowhere"},
            {"clip": "out_of_range", "path": str(good), "onset": 100000, "offset": 100010},
        ],
    )
    result = predict(manifest, run["bundle"], device="cpu")
    status = dict(zip(result.table["clip"], result.table["status"]))
    assert status["good"] == "ok" and status["short"] == "ok"
    assert status["broken"].startswith("failed: unreadable video") and "broken.mp4" in status["broken"]
    assert status["empty"].startswith("failed: no image files")
    assert status["missing"].startswith("failed: not found")
    assert status["out_of_range"].startswith("failed: no frame")
    failed = result.table[result.table["status"] != "ok"]
    assert failed[PROBS].isna().all().all() and failed[AUS].isna().all().all()
    ok = result.table[result.table["status"] == "ok"]
    assert ok[PROBS].notna().all().all()
    # too short: interpolated in time (3 frames → 6) and said so
    assert result.table.set_index("clip").loc["short", "n_frames"] == 3
    assert any("short" in w and "interpolated" in w for w in result.warnings)
    # --crop-face: no face → that row fails, a clip with a detectable face goes on
    with_face = next((c for c in clips if faces.face_box_from_file(list_frames(c)[0]) is not None), None)
    requests = [ClipRequest("blank", blank)] + ([ClipRequest("face", with_face)] if with_face else [])
    table = predict_clips(load_bundle(run["bundle"], device="cpu"), requests, face_crop="detect").table
    assert table["status"].iloc[0].startswith("failed: no face found")
    if with_face is not None:
        assert table["status"].iloc[1] == "ok"
    # --align: the same policy; the row names the frame it searched
    table = predict_clips(load_bundle(run["bundle"], device="cpu"), [ClipRequest("blank", blank)], face_crop="align")
    assert table.table["status"].iloc[0] == f"failed: no face found in {blank / '0.png'}"
    assert table.table[PROBS].isna().all().all()
    # JSON output through the CLI: failed clips are null, the command still succeeds
    out = base / "bad.json"
    res = cli(
        ["predict", str(manifest), "--checkpoint", str(run["bundle"]), "--json", "--out", str(out), "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    by_clip = {c["clip"]: c for c in data["clips"]}
    assert by_clip["broken"]["probs"] is None and set(by_clip["good"]["probs"]) == set(AUS)
    # a single input that fails → exit 2; usage errors are one line
    res = cli(["predict", str(base / "broken.mp4"), "--checkpoint", str(run["bundle"])])
    assert res.exit_code == 2
    with pytest.raises(Exception, match="single image"):
        collect_requests(blank / "0.png")


# --------------------------------------------------------------------------------------------- explain


def test_cam_is_placed_by_receptive_field():
    cam = np.zeros((18, 18))
    cam[4, 10] = 1.0  # with 64 px input, cell i is centred on pixel 3·i + 6
    on_input = cam_to_input(cam, offset=6.0, stride=3.0, size=64)
    y, x = np.unravel_index(on_input.argmax(), on_input.shape)
    assert (y, x) == (3 * 4 + 6, 3 * 10 + 6)


def test_explain_writes_the_pngs(run):
    clip = sorted((run["root"] / "Cropped").glob("sub*/*"))[1]
    out = run["base"] / "explain"
    result = cli(["explain", str(clip), "--checkpoint", str(run["bundle"]), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    expected = {f"gradcam_{au}.png" for au in AUS} | {"gradcam_all.png", "se_weights.png", "led_matrix.png"}
    assert expected <= {p.name for p in out.iterdir()}
    for name in expected:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and min(im.size) >= 300
    info = json.loads((out / "explain.json").read_text())
    assert set(info["aus"]) == set(AUS) and len(info["time_labels"]) == 4
    assert all(0 <= v <= 1 for a in info["aus"].values() for v in a["cam_peak_xy"])
    own = pd.read_csv(run["out"] / "final" / "predictions.csv", dtype={"sample": str})
    row = own[own["sample"] == clip.name].iloc[0]
    assert np.allclose([info["aus"][au]["prob"] for au in AUS], [row[f"prob_{au}"] for au in AUS], atol=1e-5)
    # a manifest → one folder per clip; the apex column picks the frame shown
    first = int(list_frames(clip)[0].stem.replace("reg_img", ""))
    manifest = _manifest(run["base"] / "explain.csv", [{"clip": "a/b", "path": str(clip), "apex": first + 4}])
    written = explain(manifest, run["bundle"], run["base"] / "explain_many", device="cpu")
    files = written["a/b"]
    assert isinstance(files, list) and files[0].parent.name == "a_b"
    info = json.loads((files[0].parent / "explain.json").read_text())
    assert info["apex_position"] == 4 and info["apex_estimated"] is False


def test_explain_draws_on_the_aligned_frame(run):
    """--align: the heatmaps are drawn on the frame cropped and rotated as the model's input was."""
    folder = run["base"] / "tilted_face"
    folder.mkdir(exist_ok=True)
    tilted, _ = rotated(astronaut().gray, 12)
    for i in range(6):
        Image.fromarray(on_canvas(tilted, 640, 600, 60 + i, 40)).save(folder / f"img{i + 1}.jpg", quality=95)
    bundle = load_bundle(run["bundle"], device="cpu")
    decoded = decode_request(ClipRequest("tilted", folder, apex=3), bundle.size, bundle.frames, face_crop="align")
    assert decoded.ok and decoded.crop is not None and abs(decoded.crop.angle + 12) < 4  # type: ignore[union-attr]
    ex = explain_decoded(bundle, decoded)
    assert ex.frame.shape == (256, 256) and ex.apex_pos == 2
    assert np.array_equal(ex.frame, read_frame(decoded.source, 2, 256, decoded.crop))
    out = run["base"] / "explain_aligned"
    result = cli(["explain", str(folder), "-c", str(run["bundle"]), "--out", str(out), "--device", "cpu", "--align"])
    assert result.exit_code == 0, result.output
    blank = run["base"] / "blank_for_explain"
    blank.mkdir(exist_ok=True)
    for i in range(6):
        Image.fromarray(np.full((100, 120), 100 + i, np.uint8)).save(blank / f"img{i + 1}.png")
    result = cli(["explain", str(blank), "-c", str(run["bundle"]), "--out", str(out), "--align"])
    assert result.exit_code == 2 and "no face found in" in result.output
