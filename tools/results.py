"""The accuracy studies: every distiller on the toy data and on real photos, head distillers, heterogeneous pairs,
ablations, the EfficientFace student, query distillers on a DINO pair.

    python tools/results.py [--study distillers|real|heads|detr] [--seeds 0 1 2] [--methods fgd mgd cwd pkd dmkd dfmsd]
                            [--work-dir DIR] [--teacher TRAINED_TEACHER]
    python tools/results.py --study ablations [--seeds 0] [--methods dmkd_bottomk ...] [--work-dir work_dirs/ablations]
    python tools/results.py --study hetero [--seeds 0] [--work-dir work_dirs/hetero]
    python tools/results.py --study controls --config CONFIG [--controls random shuffled ...] [--teacher TRAINED]
    python tools/results.py --study codistill --config CODISTILL_CONFIG [--seeds 0 1 2]
    python tools/results.py --study efficientface [--seeds 0 1 2] [--teacher work_dirs/retinanet_bccd_teacher]
                            [--work-dir work_dirs/efficientface]

``--study distillers`` (the default, toy data) and ``--study real`` (BCCD, real microscope photos) train the
teacher once (or reuse it), then for each seed the student without distillation and with each method, same
schedule; ``--study heads`` does the same for the distillers of a toy GFL pair (every
``configs/toy/<method>_gfl_toy.py``: LD, CrossKD, BCKD, PKD and variants of CrossKD and BCKD), ``--study detr``
for a toy DINO pair (every ``configs/toy/<method>_dino_toy.py``: DETRDistill, KD-DETR, PKD on the neck).
``--study ablations`` trains every ``configs/bccd/ablations/*.py`` (variants of DMKD, DFMSD and IE-KD) against
the BCCD student and teacher.
``--study hetero`` trains (or reuses) the Faster R-CNN, ConvNeXt and RetinaNet toy teachers at the work dirs their
configs name, then each heterogeneous DFMSD pair of
``configs/toy/hetero_*.py`` and the undistilled baseline of its student. ``--study controls`` trains, per seed, the
student of a distillation config without distillation, with its real teacher, and with each control teacher in
its place (``teacher_control``; every control for a head distiller, 'random' and 'shuffled' otherwise), and adds
what share of the real teacher's gain each control's gain is, with a bar chart (controls.png); the default work dir
is ``work_dirs/controls/<config name>``. ``--study codistill`` trains, per seed, peer 0's model alone on all the
data for as many iterations per process as a peer (``single``), the peers of a codistill config on their shards
without distillation (``independent``: burn-in past the end) and codistilled, one process per peer, and adds the
churn between retrains (:mod:`kdtools.churn`; every pair of seeds, per peer; churn.json); the default work dir is
``work_dirs/codistill/<config name>``. ``--study efficientface`` (BCCD) evaluates the trained RetinaNet teacher
(``--teacher``, trained there if it has no checkpoint), then trains per seed the RetinaNet student
(``retinanet_student``), the EfficientFace student (``efficientface``) and EfficientFace distilled from the teacher
with DFMSD (``dfmsd_efficientface``), and on seed 0 each ``configs/bccd/efficientface_ablations/<name>.py``
(``efficientface_<name>``, one neck module off); gains are of EfficientFace over the RetinaNet student and of
DFMSD and the ablations over EfficientFace, also seed by seed, and a second table gives each model's parameters
and GFLOPs at 256x192 (:func:`kdtools.benchmarking.detector_complexity`). Each prints a markdown table of COCO mAP
(mean and standard deviation over seeds, 0-100, gain over the run's baseline) and writes it with every run's
numbers to the work dir (results.md, results.json). Finished runs are recorded and skipped when run again.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from mmengine.config import Config

from kdtools import DISTILLERS
from kdtools.benchmarking import detector_complexity
from kdtools.codistill import peer_student_config
from kdtools.config import read_config, student_config
from kdtools.detectors.controls import CONTROLS, HEAD_CONTROLS
from kdtools.distillers import HeadDistiller
from kdtools.experiments import METRICS, evaluate, train_and_evaluate, train_peers


class Data(NamedTuple):
    """A data set's teacher, undistilled student and distillation configs (``method`` fills ``methods``)."""

    teacher: str
    baseline: str
    methods: str
    work_dir: str

    def method_configs(self, names: Sequence[str]) -> dict[str, str]:
        return {name: self.methods.format(method=name) for name in names}

    def registered_methods(self) -> list[str]:
        """The registered distillers (lower case) that have a config here."""
        names = (name.lower() for name in DISTILLERS.module_dict)
        return sorted(name for name in names if osp.exists(self.methods.format(method=name)))

    def config_names(self) -> list[str]:
        """Every name with a config here: the registered distillers' and combinations such as ``iekd_pkd``."""
        prefix, suffix = self.methods.split("{method}")
        return sorted(path[len(prefix):-len(suffix)] for path in glob.glob(prefix + "*" + suffix))


TOY = Data("configs/toy/retinanet_toy_teacher.py", "configs/toy/retinanet_toy_student.py",
           "configs/toy/{method}_retina_toy.py", "work_dirs/results")
REAL = Data("configs/bccd/retinanet_bccd_teacher.py", "configs/bccd/retinanet_bccd_student.py",
            "configs/bccd/{method}_retina_bccd.py", "work_dirs/results_real")
DETR = Data("configs/toy/dino_toy_teacher.py", "configs/toy/dino_toy_student.py", "configs/toy/{method}_dino_toy.py",
            "work_dirs/results_detr")
HEADS = Data("configs/toy/gfl_toy_teacher.py", "configs/toy/gfl_toy_student.py", "configs/toy/{method}_gfl_toy.py",
             "work_dirs/results_heads")
ABLATIONS = Data(REAL.teacher, REAL.baseline, "configs/bccd/ablations/{method}.py", "work_dirs/ablations")

# hetero study: teachers (trained into work_dirs/<config name>, where the pair configs look for them), the
# students' own baselines, and each pair with the baseline it is compared against.
HETERO_TEACHERS = ("retinanet_toy_teacher", "faster_rcnn_toy_teacher", "convnext_toy_teacher")
HETERO_BASELINES = ("retinanet_toy_student", "retinanet_toy_slim_student", "mobilenet_toy_student")
HETERO_PAIRS = {
    "hetero_faster_retina_toy": "retinanet_toy_student",
    "hetero_convnext_retina_toy": "retinanet_toy_student",
    "hetero_stagewise_faster_retina_toy": "retinanet_toy_student",
    "hetero_slim_retina_toy": "retinanet_toy_slim_student",
    "hetero_mobilenet_retina_toy": "mobilenet_toy_student",
}

# efficientface study: the RetinaNet student, the EfficientFace student alone and distilled with DFMSD, per seed;
# each EfficientFace ablation (one neck module off) on ABLATION_SEED only.
EFFICIENTFACE = {
    "retinanet_student": REAL.baseline,
    "efficientface": "configs/bccd/efficientface_bccd.py",
    "dfmsd_efficientface": "configs/bccd/dfmsd_retina_efficientface_bccd.py",
}
EFFICIENTFACE_ABLATIONS = "configs/bccd/efficientface_ablations/{method}.py"
EFFICIENTFACE_TEACHER = "work_dirs/retinanet_bccd_teacher"
ABLATION_SEED = 0
INPUT_SHAPE = (192, 256)  # BCCD's (height, width) after resizing


def summarise(runs: dict[str, list[dict[str, float]]], baselines: dict[str, str]) -> str:
    """Markdown: per model the mean and spread over seeds of each metric, and the gain over its baseline.

    ``baselines`` maps a model to the run it is compared with; models without one get no gain.
    """
    lines = ["| model | seeds | " + " | ".join(METRICS) + " | mAP gain | train time |",
             "|---|---|" + "---|" * (len(METRICS) + 2)]
    for name, results in runs.items():
        cells = [_mean_spread([r[key] for r in results]) for key in METRICS]
        mean = statistics.mean(r["mAP"] for r in results)
        base = baselines.get(name)
        gain = f"{mean - statistics.mean(r['mAP'] for r in runs[base]):+.1f}" if base in runs else ""
        seconds = statistics.mean(r["train_s"] for r in results)
        train_time = f"{seconds:.0f} s" if seconds else "-"  # 0: a trained checkpoint, evaluated only
        lines.append(f"| {name} | {len(results)} | " + " | ".join(cells) + f" | {gain} | {train_time} |")
    return "\n".join(lines)


def _mean_spread(values: list[float]) -> str:
    if min(values) < 0:  # COCO reports -1 for an area range without ground truth
        return "n/a"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


class Study:
    """Runs recorded in ``work_dir/results.json``: a run already recorded for a seed is not trained again.

    The record is read again before each run and merged into on each result, so that two processes can share a
    study (e.g. ``--seeds 0 1`` and ``--seeds 2``).
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.record = osp.join(work_dir, "results.json")
        self.runs: dict[str, list[dict[str, float]]] = {}
        self.reload()

    def reload(self) -> None:
        if osp.exists(self.record):
            with open(self.record) as f:
                self.runs = json.load(f)

    def run(self, name: str, config: str | Config, seed: int, teacher: str | None = None) -> None:
        self.reload()
        if any(r.get("seed") == seed for r in self.runs.get(name, [])):
            return
        result = train_and_evaluate(config, osp.join(self.work_dir, f"{name}_seed{seed}"), teacher, seed)
        self.add(name, {**result, "seed": seed})

    def teacher(self, name: str, config: str, work_dir: str, trained: str | None) -> None:
        """Record teacher ``name``: ``trained`` (a checkpoint or work dir) evaluated, else ``config`` trained
        into ``work_dir``."""
        self.reload()
        if name in self.runs:
            return
        self.add(name, evaluate(config, trained, osp.join(self.work_dir, f"{name}_eval")) if trained
                 else train_and_evaluate(config, work_dir))

    def add(self, name: str, result: dict[str, float]) -> None:
        self.reload()
        self.runs.setdefault(name, []).append(result)
        os.makedirs(self.work_dir, exist_ok=True)
        with open(self.record + ".tmp", "w") as f:
            json.dump(self.runs, f, indent=2)
        os.replace(self.record + ".tmp", self.record)

    def write_table(self, baselines: dict[str, str], extra: str = "") -> None:
        table = summarise(self.runs, baselines) + extra
        print(table)
        with open(osp.join(self.work_dir, "results.md"), "w") as f:
            f.write(table + "\n")


def distillers_study(args: argparse.Namespace, data: Data, methods: dict[str, str]) -> None:
    """The teacher, then per seed the student alone and with each of ``methods`` (name -> config)."""
    study = Study(args.work_dir)
    teacher_dir = args.teacher or osp.join(args.work_dir, "teacher")
    for seed in args.seeds:  # the baseline needs no teacher
        study.run("student", data.baseline, seed)
    study.teacher("teacher", data.teacher, teacher_dir, args.teacher)
    for seed in args.seeds:
        for name, config in methods.items():
            study.run(name, config, seed, teacher_dir)
    study.write_table({name: "student" for name in study.runs if name != "student"})


def ablation_names() -> list[str]:
    return ABLATIONS.config_names()


def heads_names() -> list[str]:
    """Every toy GFL distillation config: the head distillers and their variants (e.g. crosskd_pre_activation)."""
    return HEADS.config_names()


def hetero_study(args: argparse.Namespace) -> None:
    study = Study(args.work_dir)
    for name in HETERO_TEACHERS:
        work_dir = osp.join("work_dirs", name)
        trained = work_dir if osp.exists(osp.join(work_dir, "last_checkpoint")) else None
        study.teacher(name, f"configs/toy/{name}.py", work_dir, trained)
    for seed in args.seeds:
        for name in (*HETERO_BASELINES, *HETERO_PAIRS):
            study.run(name, f"configs/toy/{name}.py", seed)
    study.write_table(HETERO_PAIRS)


def efficientface_ablations() -> dict[str, str]:
    """``efficientface_<name>`` -> ``configs/bccd/efficientface_ablations/<name>.py``, for every such config."""
    prefix, suffix = EFFICIENTFACE_ABLATIONS.split("{method}")
    paths = sorted(glob.glob(prefix + "*" + suffix))
    return {"efficientface_" + path[len(prefix):-len(suffix)]: path for path in paths}


def efficientface_baselines(ablations: Sequence[str]) -> dict[str, str]:
    """EfficientFace against the RetinaNet student; DFMSD and every ablation against EfficientFace."""
    return {"efficientface": "retinanet_student", "dfmsd_efficientface": "efficientface",
            **{name: "efficientface" for name in ablations}}


def seed_gains_table(runs: dict[str, list[dict[str, float]]], baselines: dict[str, str]) -> str:
    """Markdown: per model its mAP gain over its baseline on each seed both have (same seed, same data order)."""
    lines = ["", "", "| model | against | mAP gain per seed | above the baseline on |", "|---|---|---|---|"]
    for name, base in baselines.items():
        base_by_seed = {r["seed"]: r["mAP"] for r in runs.get(base, [])}
        gains = {r["seed"]: r["mAP"] - base_by_seed[r["seed"]] for r in runs.get(name, []) if r["seed"] in base_by_seed}
        if gains:
            cells = ", ".join(f"seed {seed}: {gain:+.1f}" for seed, gain in sorted(gains.items()))
            above = sum(gain > 0 for gain in gains.values())
            lines.append(f"| {name} | {base} | {cells} | {above} of {len(gains)} seeds |")
    return "\n".join(lines)


def complexity_table(configs: dict[str, str], input_shape: tuple[int, int] = INPUT_SHAPE) -> str:
    """Markdown: parameters and FLOPs of each config's detector (:func:`kdtools.benchmarking.detector_complexity`:
    backbone + neck + head on one image, one multiply-add per FLOP)."""
    height, width = input_shape
    lines = ["", "", f"| model | params (M) | GFLOPs at {width}x{height} |", "|---|---|---|"]
    for name, config in configs.items():
        params, flops = detector_complexity(config, input_shape)
        lines.append(f"| {name} | {params / 1e6:.2f} | {flops / 1e9:.2f} |")
    return "\n".join(lines)


def efficientface_study(args: argparse.Namespace) -> None:
    """Per seed the RetinaNet student, EfficientFace and EfficientFace distilled with DFMSD from the BCCD
    teacher; each ablation on ABLATION_SEED (when among the seeds); the gains and the models' sizes."""
    study = Study(args.work_dir)
    trained = osp.exists(osp.join(args.teacher, "last_checkpoint")) or osp.isfile(args.teacher)
    study.teacher("teacher", REAL.teacher, args.teacher, args.teacher if trained else None)
    ablations = efficientface_ablations()
    for seed in args.seeds:
        for name, config in EFFICIENTFACE.items():
            study.run(name, config, seed, args.teacher if "distill" in read_config(config) else None)
        if seed == ABLATION_SEED:
            for name, config in ablations.items():
                study.run(name, config, seed)
    study.reload()
    order = ("teacher", *EFFICIENTFACE, *ablations)
    study.runs = {name: study.runs[name] for name in order if name in study.runs}
    baselines = efficientface_baselines(ablations)
    sizes = {"retinanet_student": EFFICIENTFACE["retinanet_student"], "efficientface": EFFICIENTFACE["efficientface"],
             **ablations}
    study.write_table(baselines, seed_gains_table(study.runs, baselines) + complexity_table(sizes))


def controls_names(cfg: Config) -> list[str]:
    """The controls that apply to a distillation config: the head controls only where a head distiller reads."""
    heads = any(issubclass(DISTILLERS.get(d["type"]), HeadDistiller) for d in cfg.get("distill", []))
    return [name for name in CONTROLS if heads or name not in HEAD_CONTROLS]


def paired_gains(runs: dict[str, list[dict[str, float]]], name: str, base: str = "student") -> list[float]:
    """``name``'s mAP minus the baseline's, seed by seed (the seeds both have)."""
    base_by_seed = {r["seed"]: r["mAP"] for r in runs.get(base, [])}
    return [r["mAP"] - base_by_seed[r["seed"]] for r in runs.get(name, []) if r["seed"] in base_by_seed]


MIN_GAIN = 0.5  # mAP points: below it the real teacher's gain is no yardstick for the controls


def controls_table(runs: dict[str, list[dict[str, float]]], controls: Sequence[str]) -> str:
    """Markdown: per knowledge source its mAP gain over the student (mean ± spread of the per-seed gains) and
    that gain as a share of the real teacher's."""
    real = paired_gains(runs, "teacher")
    lines = ["", "", "| knowledge source | seeds | mAP gain | share of the real teacher's gain |", "|---|---|---|---|"]
    for name in ("teacher", *controls):
        gains = paired_gains(runs, name)
        if not gains:
            continue
        gain = statistics.mean(real) if real else 0.0
        share = f"{statistics.mean(gains) / gain:.0%}" if abs(gain) >= MIN_GAIN else "- (no real gain)"
        spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
        label = "real teacher" if name == "teacher" else name
        lines.append(f"| {label} | {len(gains)} | {statistics.mean(gains):+.1f} ± {spread:.1f} | {share} |")
    return "\n".join(lines)


def controls_chart(runs: dict[str, list[dict[str, float]]], controls: Sequence[str], path: str, title: str) -> None:
    """Bars of each knowledge source's mean mAP gain over the student, the per-seed spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("teacher", *controls) if paired_gains(runs, n)]
    gains = [paired_gains(runs, n) for n in names]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 1.5, 3.2))
    ax.bar(["real teacher" if n == "teacher" else n for n in names], [statistics.mean(g) for g in gains],
           yerr=[statistics.stdev(g) if len(g) > 1 else 0.0 for g in gains], capsize=4,
           color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("mAP gain over the student")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def controls_study(args: argparse.Namespace) -> None:
    """Per seed: the student alone, with the config's real teacher, and with each control in its place."""
    cfg = read_config(args.config)
    if "distill" not in cfg:
        raise SystemExit(f"--study controls needs a distillation config (with distill=[...]); {args.config} has none.")
    controls = args.controls or controls_names(cfg)
    study = Study(args.work_dir)
    for seed in args.seeds:
        study.run("student", student_config(cfg), seed)
        study.run("teacher", cfg, seed, args.teacher)
        for control in controls:
            study.run(control, Config(dict(cfg.to_dict(), teacher_control=control), filename=cfg.filename), seed,
                      args.teacher)
    study.reload()
    study.write_table({name: "student" for name in study.runs if name != "student"},
                      controls_table(study.runs, controls))
    controls_chart(study.runs, controls, osp.join(args.work_dir, "controls.png"), osp.basename(args.config))


def equal_iterations(cfg: Config, peers: int) -> Config:
    """The model of peer 0 alone on all the data, for as many iterations as each peer of a disjoint codistill
    config (whose epochs are of one shard): every epoch count (training, validation, by-epoch schedulers)
    divided by ``peers``."""
    cfg = peer_student_config(cfg, 0)
    cfg.train_cfg.max_epochs //= peers
    cfg.train_cfg.val_interval = max(1, cfg.train_cfg.get("val_interval", 1) // peers)
    for scheduler in cfg.get("param_scheduler") or []:
        if scheduler.get("by_epoch", True):
            for key in ("begin", "end"):
                if key in scheduler:
                    scheduler[key] //= peers
    return cfg


def peer_detections(cfg: Config, work_dir: str) -> list:
    from mmengine.runner import find_latest_checkpoint

    from kdtools.churn import detections

    return detections(cfg, find_latest_checkpoint(work_dir))


def churn_table(study: Study, arms: dict[str, list[tuple[str, Config, str]]]) -> str:
    """Markdown: per arm, the churn between its retrains (every pair of seeds, per peer) on the val set."""
    from itertools import combinations

    from kdtools.churn import IOU, SCORE, churn

    lines = ["", "", f"| arm | pairs of retrains | churn (score >= {SCORE}, same class, IoU >= {IOU}) |",
             "|---|---|---|"]
    record = {}
    for arm, runs in arms.items():
        by_peer: dict[str, list] = {}
        for model, cfg, work_dir in runs:
            by_peer.setdefault(model, []).append(peer_detections(cfg, work_dir))
        values = [100 * churn(a, b) for found in by_peer.values() for a, b in combinations(found, 2)]
        record[arm] = values
        if values:
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            lines.append(f"| {arm} | {len(values)} | {statistics.mean(values):.1f} ± {spread:.1f} % |")
    with open(osp.join(study.work_dir, "churn.json"), "w") as f:
        json.dump(record, f, indent=2)
    return "\n".join(lines)


def codistill_study(args: argparse.Namespace) -> None:
    """Per seed: the model alone on all the data (as many iterations per process), the peers trained alone on
    their data (burn-in past the end) and codistilled; each peer's mAP and the churn between retrains."""
    cfg = read_config(args.config)
    if "codistill" not in cfg:
        raise SystemExit(f"--study codistill needs a codistill config; {args.config} has no codistill=dict(...).")
    peers = cfg.codistill["peers"]
    single = equal_iterations(cfg, peers) if cfg.codistill.get("data", "disjoint") == "disjoint" else \
        peer_student_config(cfg, 0)
    study = Study(args.work_dir)
    arms: dict[str, list[tuple[str, Config, str]]] = {"single": [], "independent": [], "codistilled": []}
    for seed in args.seeds:
        work_dir = osp.join(args.work_dir, f"single_seed{seed}")
        study.run("single", single, seed)
        arms["single"].append(("single", single, work_dir))
        for arm, options in (("independent", ["codistill.burn_in=1000000000"]), ("codistilled", [])):
            work_dir = osp.join(args.work_dir, f"{arm}_seed{seed}")
            study.reload()
            if not any(r.get("seed") == seed for r in study.runs.get(arm, [])):
                for result in train_peers(args.config, work_dir, seed, options, port=29500 + seed):
                    study.add(arm, {**result, "seed": seed})
            arms[arm] += [(f"peer{p}", peer_student_config(cfg, p), osp.join(work_dir, f"peer{p}"))
                          for p in range(peers)]
    study.reload()
    study.write_table({"independent": "single", "codistilled": "single"}, churn_table(study, arms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=("distillers", "real", "heads", "detr", "ablations", "hetero", "controls",
                                            "codistill", "efficientface"),
                        default="distillers")
    parser.add_argument("--config", help="controls: the distillation config whose teacher the controls replace; "
                        "codistill: the codistill config")
    parser.add_argument("--controls", nargs="+", choices=sorted(CONTROLS),
                        help="controls: default every control that applies to the config's distillers")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2 (distillers, real, heads, detr, controls, "
                        "codistill, efficientface), 0 (ablations, hetero)")
    parser.add_argument("--methods", nargs="+", help="default: every distiller with a config (configs/toy/"
                        "<method>_retina_toy.py, configs/bccd/<method>_retina_bccd.py, configs/toy/<method>_gfl_toy.py"
                        ", configs/toy/<method>_dino_toy.py), every ablation config")
    parser.add_argument("--work-dir", help="default: work_dirs/results (distillers), work_dirs/results_real (real), "
                        "work_dirs/results_heads (heads), work_dirs/results_detr (detr), work_dirs/ablations, "
                        "work_dirs/hetero, "
                        "work_dirs/efficientface, work_dirs/<study>/<config name> (controls, codistill)")
    parser.add_argument("--teacher", help="a trained teacher (checkpoint or work dir) to use instead of training one; "
                        f"efficientface: default {EFFICIENTFACE_TEACHER} (trained there when it has no checkpoint)")
    args = parser.parse_args()
    one_seed = args.study in ("ablations", "hetero")
    args.seeds = args.seeds or ([0] if one_seed else [0, 1, 2])
    if args.study in ("controls", "codistill"):
        if not args.config:
            parser.error(f"--study {args.study} needs --config CONFIG")
        name = osp.splitext(osp.basename(args.config))[0]
        args.work_dir = args.work_dir or osp.join(f"work_dirs/{args.study}", name)
        return (controls_study if args.study == "controls" else codistill_study)(args)
    if args.study == "efficientface":
        args.work_dir = args.work_dir or "work_dirs/efficientface"
        args.teacher = args.teacher or EFFICIENTFACE_TEACHER
        return efficientface_study(args)
    if args.study == "hetero":
        args.work_dir = args.work_dir or "work_dirs/hetero"
        return hetero_study(args)
    data = {"distillers": TOY, "real": REAL, "heads": HEADS, "detr": DETR, "ablations": ABLATIONS}[args.study]
    args.work_dir = args.work_dir or data.work_dir
    default = {"ablations": ablation_names(), "heads": heads_names()}.get(args.study) or data.registered_methods()
    known = sorted(set(default) | set(data.config_names()))
    names = args.methods or default
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"no config for {unknown} in this study; those with one: {known}")
    distillers_study(args, data, data.method_configs(names))


if __name__ == "__main__":
    main()
