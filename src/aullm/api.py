"""The public Python API: everything the command line does, as functions (`import aullm` re-exports them).

Every `aullm` command is a thin wrapper over one function here, so the two cannot drift. It is over 450 lines
because it is the whole public surface in one place — one documented function per command, each a few lines over
the layers below — so `help(aullm)` and docs/api.md read from one file. Functions take paths or
config objects and return objects that view files on disk (`Run`, `Metrics`, `Detector`), so results made from
Python, from the command line or on another machine open the same way. Bad input raises the typed errors of
`aullm.core.errors` (`ConfigError`, `DataError`, `BundleError`, …; all `UserError`), which the command line prints as
one line with exit code 2.

    import aullm
    aullm.synth("data/synme", subjects=6, clips_per_subject=20, preset="demo")
    run = aullm.train("synme_demo_sssnet_led", out="runs/sssnet", overrides=["data.root=data/synme"])
    run.metrics.to_frame()
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from aullm.config import Config, apply_overrides, config_from_dict
from aullm.config import load_config as _load_config_file
from aullm.core.console import logger, progress_output
from aullm.core.errors import UserError, arg

if TYPE_CHECKING:  # imported where used: a command loads only what it needs (torch, sklearn, matplotlib…)
    import pandas as pd

    from aullm.inference.detector import ClipInput, Detector
    from aullm.inference.predict import PredictionResult
    from aullm.training.execution import Executor
    from aullm.training.executor_spec import ExecutorSpec
    from aullm.workflows.experiment import SweepResult
    from aullm.workflows.results import Comparison, Metrics, Run
    from aullm.workflows.videos import VideosRun

    #: The AUs SynME animates as targets (computed on first use: see `__getattr__`).
    SYNME_AUS: tuple[str, ...]

PathLike = Union[str, Path]
ConfigSource = Union[PathLike, Mapping[str, Any], Config, None]
#: Where folds train: "local", "ray" (a Ray cluster with default resources), or an ExecutorSpec with Ray's options.
ExecutorChoice = Union[str, "ExecutorSpec"]
#: Clips per forward pass (`aullm.inference.predict.DEFAULT_BATCH`; a test checks they agree).
DEFAULT_BATCH = 32
#: Public names defined elsewhere, imported on first use (module `__getattr__`), so that `from aullm import api`
#: costs a command nothing it does not use.
_LAZY = {
    "Detector": "aullm.inference.detector",
    "ExecutorSpec": "aullm.training.executor_spec",
    "SweepResult": "aullm.workflows.experiment",
    "Comparison": "aullm.workflows.results",
    "Metrics": "aullm.workflows.results",
    "Run": "aullm.workflows.results",
}


def __getattr__(name: str) -> Any:
    if name == "SYNME_AUS":
        # The AUs SynME animates as targets (it also moves a few distractor AUs no model is asked about).
        from aullm.data.synme.codes import TARGET_AUS

        value: Any = tuple(f"AU{au}" for au in TARGET_AUS)
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'aullm.api' has no attribute {name!r}")
    globals()[name] = value
    return value


def _executor(choice: ExecutorChoice) -> Executor:
    from aullm.training.executor_spec import ExecutorSpec

    return (choice if isinstance(choice, ExecutorSpec) else ExecutorSpec(choice)).build()


def load_config(source: ConfigSource = None, overrides: Sequence[str] = ()) -> Config:
    """A validated experiment config from a YAML file, the name of a shipped config (`aullm.configs()` lists them),
    a dict of sections, a Config, or the defaults (None), with `section.key=value` overrides (values parsed as
    YAML, as `--set` does).

    >>> cfg = aullm.load_config("casme2_au_llm_deepseek", ["data.root=/data/CASME2"])
    >>> cfg = aullm.load_config("my_experiment.yaml")
    >>> cfg = aullm.load_config({"data": {"dataset": "synme", "root": "data/synme"}, "llm": {"name": "tiny-random"}})
    """
    if isinstance(source, Config):
        from aullm.config import config_to_dict

        raw = apply_overrides(config_to_dict(source), list(overrides))
        if raw["model"].get("name") != source.model.name:  # another model: only the options given for it
            raw["model"] = apply_overrides({}, list(overrides))["model"]
        return config_from_dict(raw)
    if isinstance(source, Mapping):
        import copy

        return config_from_dict(apply_overrides(copy.deepcopy(dict(source)), list(overrides)))
    return _load_config_file(None if source is None else Path(source), list(overrides))


def configs() -> dict[str, str]:
    """The configs shipped with the package (`aullm configs`): name → one-line description. Every function that
    takes a config (`load_config`, `train`, `sweep`) takes one of these names as well as a path.

    >>> aullm.configs()["casme2_au_llm_qwen2"]
    """
    from aullm.config import config_description, shipped_configs

    return {name: config_description(path) for name, path in shipped_configs().items()}


def train(
    config: ConfigSource,
    out: Optional[PathLike] = None,
    *,
    overrides: Sequence[str] = (),
    save_final: bool = False,
    executor: ExecutorChoice = "local",
    track: Sequence[str] = (),
    device: Optional[str] = None,
    progress: Optional[bool] = None,
) -> Run:
    """Train and score a config under its protocol (LOSO or cross-domain) into `out` (default runs/<name>);
    resumes an interrupted run. `save_final` also trains the model on every subject and writes its bundle.
    `executor="ray"` trains every seed and fold as a Ray task (`ExecutorSpec("ray", address=..., ...)` sets the
    cluster, resources per task and retries);
    `track` mirrors the run to `mlflow` and/or `tensorboard`; `device` (`auto`, `cpu`, `cuda`, `cuda:N`, `mps`)
    sets `train.device`. `progress=True` shows what the command line shows (data preparation, LLM loading, one
    line per finished fold, a live bar on a terminal); by default progress follows the logging configuration
    (`logging.basicConfig(level=logging.INFO)` shows it too). Raises RunFailed when a fold cannot be trained (the
    finished ones are kept).

    >>> run = aullm.train("synme_demo_sssnet_led", out="runs/sssnet", overrides=["data.root=data/synme"])
    >>> run.metrics.mean("f1_macro")
    """
    from aullm.workflows import experiment as workflows
    from aullm.workflows.results import Run

    cfg = load_config(config, overrides)
    if save_final:
        cfg.train.save_final = True
    chosen = _executor(executor)
    if device is not None:
        from aullm.core.runtime import parse_device, resolve_device
        from aullm.training.execution import LocalExecutor

        # here the folds train in this process, so the device must exist here; a Ray task checks on its node
        (resolve_device if isinstance(chosen, LocalExecutor) else parse_device)(device, "device")
        cfg.train.device = device
    with progress_output(progress):
        return Run(workflows.train(cfg, None if out is None else Path(out), executor=chosen, track=track))


def sweep(
    configs: Sequence[ConfigSource],
    out_root: PathLike,
    *,
    overrides: Sequence[str] = (),
    data_roots: Optional[Mapping[str, str]] = None,
    report_dir: Optional[PathLike] = None,
    save_final: bool = False,
    executor: ExecutorChoice = "local",
    track: Sequence[str] = (),
    progress: Optional[bool] = None,
) -> SweepResult:
    """Several configs as one batch of fold tasks, each into `out_root/<config name>/`, then one report of all.
    `data_roots` sets the dataset root by dataset name ({"casme2": "/data/CASME2", "samm": "/data/SAMM"}), for
    the data and for cross-domain targets alike. `progress` as for `train`."""
    from aullm.data.readers.registry import READERS
    from aullm.workflows import experiment as workflows

    roots = dict(data_roots or {})
    unknown = sorted(set(roots) - set(READERS))
    if unknown:
        raise UserError(
            f"{arg('data_roots', unknown[0] + '=' + str(roots[unknown[0]]))} names an unknown dataset "
            f"{unknown[0]!r} (datasets: {', '.join(READERS)})"
        )
    used: set[str] = set()
    cfgs = []
    for source in configs:
        cfg = load_config(source, overrides)
        extra = []
        if cfg.data.dataset in roots:
            extra.append(f"data.root={roots[cfg.data.dataset]}")
        if cfg.protocol.target is not None and cfg.protocol.target.dataset in roots:
            extra.append(f"protocol.target.root={roots[cfg.protocol.target.dataset]}")
        cfg = load_config(cfg, extra) if extra else cfg
        cfg.train.save_final = cfg.train.save_final or save_final
        cfgs.append(cfg)
        used |= {cfg.data.dataset} | ({cfg.protocol.target.dataset} if cfg.protocol.target is not None else set())
    for name in sorted(set(roots) - used):
        logger.warning(
            "the data root given for %s (%s) is not used: no config of the sweep reads %s (they read %s)",
            name,
            roots[name],
            name,
            ", ".join(sorted(used)),
        )
    with progress_output(progress):
        return workflows.sweep(
            cfgs,
            Path(out_root),
            executor=_executor(executor),
            track=track,
            report_dir=None if report_dir is None else Path(report_dir),
        )


def evaluate(run: PathLike, out: Optional[PathLike] = None) -> Metrics:
    """Re-score a run from its predictions.csv under every metric convention (with intervals), write its
    metrics.json (into the folder `out` instead of the run, e.g. for a run on a read-only disk), and return it.
    Predictions that do not match the run's config or folds are refused.

    >>> aullm.evaluate("runs/demo").to_frame().query("au == 'avg' and seed == 'mean'")
    """
    from aullm.evaluation.run_scores import score_run
    from aullm.workflows.results import Metrics

    return Metrics(score_run(Path(run), None if out is None else Path(out)))


def report(runs: Union[PathLike, Sequence[PathLike]], out: Optional[PathLike] = None) -> Path:
    """Write report.md (our rows beside the paper's, trivial rows, intervals, paired comparisons of every run with
    the first, plots) into `out` (default: the first run directory); returns its path."""
    from aullm.reporting.report import write_report

    paths = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    return write_report(paths, None if out is None else Path(out))


def compare(runs: Sequence[PathLike], *, bootstrap: Optional[int] = None, seed: Optional[int] = None) -> Comparison:
    """Paired comparison on the same samples: for every metric and AU, B − A with a subject-bootstrap 95% interval,
    a two-sided p-value and a Holm correction across AUs (each later run against the first). Runs whose samples
    or labels differ are refused. `bootstrap`/`seed` default to the first run's eval settings.

    >>> aullm.compare(["runs/sssnet", "runs/demo"]).to_frame().query("au == 'avg'")
    """
    from aullm.evaluation.compare import compare_runs
    from aullm.workflows.results import Comparison

    return Comparison(compare_runs([Path(r) for r in runs], bootstrap, seed))


def export(
    run: PathLike, out: Optional[PathLike] = None, *, fold: Optional[str] = None, seed: Optional[int] = None
) -> Path:
    """Write a model bundle from a run: the final model on all subjects (trained now if the run has none) or, with
    `fold`, the model of one fold. Load it with `aullm.Detector.load`."""
    from aullm.workflows.export import export_final, export_fold

    target = None if out is None else Path(out)
    return export_final(Path(run), target, seed) if fold is None else export_fold(Path(run), fold, target, seed)


def predict(
    inputs: Union[ClipInput, Sequence[ClipInput]],
    checkpoint: PathLike,
    *,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    crop: Optional[str] = None,
    batch_size: int = DEFAULT_BATCH,
    device: str = "auto",
    llm: Optional[str] = None,
) -> PredictionResult:
    """`Detector.load(checkpoint).predict(...)` in one call, with the warnings and the JSON form."""
    from aullm.inference.detector import Detector

    return Detector.load(checkpoint, device=device, llm=llm).predict_result(
        inputs, onset=onset, offset=offset, crop=_crop(crop), batch_size=batch_size
    )


def explain(
    inputs: Union[ClipInput, Sequence[ClipInput]],
    checkpoint: PathLike,
    out: PathLike,
    *,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    apex: Optional[int] = None,
    crop: Optional[str] = None,
    device: str = "auto",
    llm: Optional[str] = None,
    force: bool = False,
) -> dict[str, Union[list[Path], str]]:
    """Grad-CAM per AU, SE weights and the LED matrix as PNGs (`aullm explain`). A manifest CSV writes one folder
    per clip; returns {clip: written files, or "failed: reason"}. `out` is never an input nor inside one, and a
    folder of files aullm did not write is refused unless `force`."""
    from aullm.inference.detector import Detector, check_explain_output

    check_explain_output(Path(out), inputs, force=force)  # before loading the model
    detector = Detector.load(checkpoint, device=device, llm=llm)
    return detector.explain(inputs, out, onset=onset, offset=offset, apex=apex, crop=_crop(crop), force=force)


def predict_videos(
    inputs: Union[PathLike, Sequence[PathLike]],
    checkpoint: PathLike,
    out: Optional[PathLike] = None,
    *,
    spot: bool = False,
    windows: Optional[float] = None,
    stride: Optional[float] = None,
    fps: Optional[float] = None,
    kind: str = "both",
    spot_settings: Optional[Mapping[str, Union[float, str]]] = None,
    crop: Optional[str] = None,
    report: bool = False,
    explain: bool = False,
    batch_size: int = DEFAULT_BATCH,
    device: str = "auto",
    llm: Optional[str] = None,
    force: bool = False,
) -> VideosRun:
    """AU events of every video (`aullm predict` on videos; docs/video.md): `inputs` are videos, frames folders or
    folders searched for both. Each video is spotted and each interval predicted (`spot=True`, and by default for
    a video longer than 2 s), scored over sliding windows of `windows` seconds every `stride` (default half a
    window), or, when short, read whole as one clip. With `out`: `out/<video>.csv`, `out/index.csv`, and with
    `report` `out/<video>_timeline.png` and `out/report.html`; with `explain` each event's Grad-CAM in
    `out/<video>_explain/event<N>/`. A video that fails is marked and the others go on. `out` must be new, empty,
    or an earlier output of predict (`force` overwrites a folder of other files); it is never inside an input.
    Without `out`, nothing is written and the tables come back in memory (`.events()`).

    >>> run = aullm.predict_videos("interviews/", "runs/demo/bundle", out="events/", report=True)
    >>> run.index[["video", "status", "events"]]
    """
    from aullm.core.outputs import check_output_folder
    from aullm.data.stream import stream_sources
    from aullm.inference.detector import Detector
    from aullm.spotting.settings import check_kind, settings_from
    from aullm.workflows.videos import VideoOptions, check_video_options
    from aullm.workflows.videos import predict_videos as run_videos

    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    if spot and windows is not None:
        raise UserError(f"{arg('spot', True)} and {arg('windows')} are alternatives: give one")
    options = VideoOptions(
        mode="windows" if windows is not None else "spot" if spot else "auto",
        window_s=1.0 if windows is None else float(windows),
        stride_s=stride,
        fps=fps,
        kind=check_kind(kind),
        spot=settings_from(dict(spot_settings or {})),
        face_crop=_crop(crop),
        batch_size=batch_size,
        report=report,
        explain=explain,
    )
    check_video_options(options)
    if stride is not None and windows is None:
        raise UserError(f"{arg('stride')} is the step between sliding windows: give {arg('windows')} too")
    if out is None and (report or explain):
        raise UserError(f"{arg('report', True)} and {arg('explain', True)} write files: give {arg('out')}")
    sources = stream_sources(paths)
    if out is not None:
        check_output_folder(Path(out), "predict", [*paths, *sources], force=force, what=arg("out"))
    detector = Detector.load(checkpoint, device=device, llm=llm)
    return run_videos(detector.bundle, sources, None if out is None else Path(out), options, inputs=paths)


def predict_plan(
    inputs: Union[PathLike, Sequence[PathLike]],
    *,
    spot: bool = False,
    windows: Optional[float] = None,
    report: bool = False,
    explain: bool = False,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    fps: Optional[float] = None,
    out: Optional[PathLike] = None,
) -> str:
    """How `aullm predict` reads its inputs, decided before the model loads (docs/video.md): `clips` (a manifest,
    a frame range, a short clip: one row per clip, `predict`), `video` (one long video, or `spot`/`windows`: one
    table of its events or windows) or `videos` (several inputs, a folder of videos, `report`, `explain`, or `out`
    an existing folder: `predict_videos` into a folder)."""
    from aullm.workflows.predict_plan import Mode, plan_predict

    if spot and windows is not None:
        raise UserError(f"{arg('spot', True)} and {arg('windows')} are alternatives: give one")
    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    mode: Mode = "windows" if windows is not None else "spot" if spot else "auto"
    target = None if out is None else Path(out)
    plan = plan_predict(
        paths, mode=mode, fps=fps, report=report, explain=explain, onset=onset, offset=offset, out=target
    )
    return plan.kind


def check_predict_output(out: PathLike, inputs: Union[PathLike, Sequence[PathLike]], *, force: bool = False) -> None:
    """Refuse, before any work, an output file that is one of the inputs (a manifest, or a clip it lists) or lies
    inside one, or an existing file aullm did not write (`force` overwrites the latter, never an input)."""
    from aullm.core.outputs import check_output_path, first_line
    from aullm.inference.predict import read_manifest

    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    listed: list[Path] = []
    for given in paths:
        if given.suffix.lower() == ".csv" and given.is_file():
            with contextlib.suppress(UserError):  # predict itself says what is wrong with it
                listed += [r.path for r in read_manifest(given) if r.path is not None]

    def ours(path: Path) -> bool:
        head = first_line(path)
        tables = ("clip,", "video,event,", "video,t_start_s,")
        return head.startswith(tables) or (head.startswith("{") and '"aus"' in path.read_text("utf-8", "replace"))

    check_output_path(Path(out), [*paths, *listed], ours=ours, force=force, what=arg("out"))


def _crop(crop: Optional[str]) -> Any:
    if crop is not None and crop not in ("none", "detect", "align"):
        raise UserError(f"crop must be none, detect or align, got {crop!r}")
    return crop


def crop(
    input_path: PathLike,
    out: PathLike,
    *,
    mode: str = "align",
    size: Optional[int] = None,
    onset: Optional[int] = None,
    offset: Optional[int] = None,
    force: bool = False,
) -> list[Path]:
    """Write the face crops of a clip (frames folder or video) as JPEGs into `out`, one per frame: `align`
    (MEB's crop-and-align) or `detect` (the face box of the first frame). Returns the files written. `out` is
    never the input nor inside it, and a folder of files aullm did not write is refused unless `force`."""
    from aullm.inference.crop import crop_clip

    return crop_clip(Path(input_path), Path(out), mode=mode, size=size, onset=onset, offset=offset, force=force)


def synth(
    out: PathLike,
    *,
    subjects: int = 12,
    clips_per_subject: int = 10,
    seed: int = 0,
    size: int = 128,
    layout: str = "casme2",
    preset: str = "default",
) -> pd.DataFrame:
    """Generate SynME (procedural faces with subtle AUs and known ground truth) in CASME II's layout (or SAMM's);
    returns the ground truth, one row per clip. `preset="demo"` writes the demo's easier AU mix.

    >>> truth = aullm.synth("data/synme", subjects=6, clips_per_subject=20, preset="demo")
    """
    from aullm.data.synme import PRESETS, generate_synme

    if preset not in PRESETS:
        raise UserError(f"unknown SynME preset {preset!r}: use {' or '.join(PRESETS)}")
    return generate_synme(
        Path(out),
        subjects=subjects,
        clips_per_subject=clips_per_subject,
        seed=seed,
        size=size,
        layout=layout,
        params=PRESETS[preset],
    )


def spot(
    inputs: Union[PathLike, Sequence[PathLike]],
    out: Optional[PathLike] = None,
    *,
    fps: Optional[float] = None,
    kind: str = "both",
    settings: Optional[Mapping[str, Union[float, str]]] = None,
) -> pd.DataFrame:
    """Find the micro- and macro-expressions in long videos, training-free (`aullm spot`; docs/spotting.md).

    `inputs`: videos, frames folders, or folders searched for both. Returns one row per interval: `video, onset,
    apex, offset, duration_s, score, kind`, frame numbers being the video's own (0-based for a video file, the file
    names' numbers for a frames folder); `.attrs["videos"]` has one row per video (what was read, or why it
    failed: a video that fails does not stop the others). `fps` is required for frames folders; `settings`
    overrides spotting settings by name (`aullm.spotting.settings.SpotSettings`). With `out`, writes
    `spots.csv`, `videos.csv` and `signals/<video>.csv` there.

    >>> spots = aullm.spot("interviews/", out="spots/")
    """
    from aullm.core.io import check_not_inside_inputs, check_output_dir
    from aullm.spotting.output import write_run, write_video
    from aullm.spotting.settings import check_kind, settings_from
    from aullm.spotting.spotter import SpotRun, VideoSpots, spot_videos

    paths = [Path(inputs)] if isinstance(inputs, (str, Path)) else [Path(p) for p in inputs]
    chosen = settings_from(dict(settings or {}))
    check_kind(kind)
    target = None if out is None else Path(out)
    if target is not None:
        check_output_dir(target, arg("out"))
        check_not_inside_inputs(target, paths, arg("out"))

    def written(video: VideoSpots, so_far: SpotRun) -> None:
        if target is not None:
            write_video(target, video)
            write_run(target, so_far)

    run = spot_videos(paths, chosen, fps=fps, kind=kind, on_video=written)
    if target is not None:
        write_run(target, run)
    if not run.videos:
        reasons = "; ".join(f"{name}: {why}" for name, why in run.failed.items())
        raise UserError(f"no video could be spotted ({reasons})")
    frame = run.intervals()
    frame.attrs["videos"] = run.summary()
    return frame


def synth_long(
    out: PathLike,
    *,
    videos: int = 4,
    seconds: float = 60.0,
    fps: float = 30.0,
    preset: str = "default",
    seed: int = 0,
    frames: bool = False,
    width: int = 640,
    height: int = 480,
    videos_per_subject: int = 2,
) -> pd.DataFrame:
    """Generate SynME long videos for spotting (docs/datasets.md, SynME long): drawn faces in a textured scene
    with neutral stretches, blinks, head drift, talking, macro-expressions and micro-expressions at known frames,
    as `OUT/videos/<NN>_<CODE>.mp4` (H.264), `OUT/truth.csv` (0-based frames) and the same truth in CAS(ME)²'s
    workbook layout; `frames=True` also writes every frame as `OUT/rawpic/s<NN>/<NN>_<CODE>/img001.jpg …`.
    `preset="hard"` has more head motion, blinks and talking. Returns the truth table; byte-identical for a seed.

    >>> truth = aullm.synth_long("data/synme_long", videos=10, seconds=60)
    """
    from aullm.data.synme.long import generate_long
    from aullm.data.synme.long_presets import LONG_PRESETS

    if preset not in LONG_PRESETS:
        raise UserError(f"unknown SynME long {arg('preset', preset)}: use {' or '.join(LONG_PRESETS)}")
    return generate_long(
        Path(out),
        videos=videos,
        seconds=seconds,
        fps=fps,
        seed=seed,
        frames=frames,
        width=width,
        height=height,
        videos_per_subject=videos_per_subject,
        preset=preset,
    )


def spot_eval(
    predicted: Union[PathLike, pd.DataFrame],
    truth: Union[PathLike, pd.DataFrame],
    *,
    iou: float = 0.5,
    bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The MEGC spotting evaluation (`aullm spot-eval`): a truth interval is found when a predicted interval of
    the same kind and video has IoU ≥ `iou` with it (each prediction matched once); precision, recall and F1 over
    the whole set for micro, macro and overall, each F1 with a subject-level bootstrap 95% interval (`ci95`,
    None with `bootstrap=0`), and per-video counts. `predicted`: spots.csv of `aullm spot` or a DataFrame of its
    columns; `truth`: a CAS(ME)² or SAMM Long Videos workbook, a truth CSV, a SynME long folder, a dataset root,
    or a DataFrame (video, onset, offset, kind, subject).

    >>> aullm.spot_eval("spots/spots.csv", "data/synme_long")["micro"]["f1"]
    """
    import pandas as pd

    from aullm.evaluation.spotting import spot_eval as evaluate_spots

    return evaluate_spots(
        predicted if isinstance(predicted, pd.DataFrame) else Path(predicted),
        truth if isinstance(truth, pd.DataFrame) else Path(truth),
        iou=iou,
        bootstrap=bootstrap,
        seed=seed,
    )


def demo(out: PathLike = "runs/demo", data: PathLike = "data/synme", *, progress: Optional[bool] = None) -> Run:
    """The demo: generate the demo's SynME (reused when present) and run LOSO AU-LLM with SmolLM2-135M on it.
    `progress` as for `train`."""
    from aullm.workflows.demo import run_demo
    from aullm.workflows.results import Run

    with progress_output(progress):
        return Run(run_demo(Path(out), Path(data)))


def bench_step(
    llm: str = "smollm2-135m",
    batch: int = 64,
    *,
    device: Optional[str] = None,
    repeats: Optional[int] = None,
    prepack: Union[bool, str] = "auto",
    model: Optional[str] = None,
    overrides: Optional[list[str]] = None,
) -> Any:
    """Median time of one training step of the straightforward (full prompt per sample) and the fast (shared
    prompt prefix) LLM path, and the largest logit difference between them (`aullm bench step`); `prepack` is
    `llm.prepack` for the fast path (the naive path always runs torch's default products). With `model`
    (`aullmpp`), the whole model's training step on both paths beside AU-LLM's (`overrides`: `model.KEY=VALUE`)."""
    from aullm.workflows.bench import bench_model_step
    from aullm.workflows.bench import bench_step as run_bench

    if batch < 1:
        raise UserError(f"{arg('batch')} must be at least 1, got {batch}")
    if batch > 4096:
        raise UserError(f"{arg('batch')} must be at most 4096, got {batch}")
    if repeats is not None and repeats < 1:
        raise UserError(f"{arg('repeats')} must be at least 1, got {repeats}")
    if repeats is not None and repeats > 1000:
        raise UserError(f"{arg('repeats')} must be at most 1000, got {repeats}")
    if prepack not in (True, False, "auto"):
        raise UserError(f"{arg('prepack')} must be true, false or auto, got {prepack!r}")
    if model is not None and model != "au_llm":
        if model != "aullmpp":
            raise UserError(f"{arg('model')} must be au_llm or aullmpp, got {model!r}")
        bad = [o for o in overrides or [] if not o.startswith("model.")]
        if bad:
            raise UserError(f"{arg('overrides')} takes model.KEY=VALUE here, got {bad[0]!r}")
        return bench_model_step(
            model, llm=llm, batch=batch, device=device, repeats=repeats, overrides=list(overrides or [])
        )
    if overrides:
        raise UserError(f"{arg('overrides')} needs {arg('model', 'aullmpp')}")
    return run_bench(llm=llm, batch=batch, device=device, repeats=repeats, prepack=prepack)  # type: ignore[arg-type]


__all__ = [
    "SYNME_AUS",
    "Comparison",
    "Detector",
    "ExecutorSpec",
    "Metrics",
    "Run",
    "SweepResult",
    "bench_step",
    "check_predict_output",
    "compare",
    "configs",
    "crop",
    "demo",
    "evaluate",
    "explain",
    "export",
    "load_config",
    "predict",
    "predict_plan",
    "predict_videos",
    "report",
    "spot",
    "spot_eval",
    "sweep",
    "synth",
    "synth_long",
    "train",
]
