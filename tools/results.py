"""The accuracy studies: every distiller on the toy data and on real photos, head distillers, heterogeneous pairs,
ablations.

    python tools/results.py [--study distillers|real|heads] [--seeds 0 1 2] [--methods fgd mgd cwd pkd dmkd dfmsd]
                            [--work-dir DIR] [--teacher TRAINED_TEACHER]
    python tools/results.py --study ablations [--seeds 0] [--methods dmkd_bottomk ...] [--work-dir work_dirs/ablations]
    python tools/results.py --study hetero [--seeds 0] [--work-dir work_dirs/hetero]

``--study distillers`` (the default, toy data) and ``--study real`` (BCCD, real microscope photos) train the
teacher once (or reuse it), then for each seed the student without distillation and with each method, same
schedule; ``--study heads`` does the same for the distillers of a toy GFL pair (every
``configs/toy/<method>_gfl_toy.py``: LD, CrossKD, BCKD, PKD and variants of CrossKD and BCKD). ``--study ablations``
trains every ``configs/bccd/ablations/*.py`` (variants of DMKD and DFMSD) against the BCCD student and teacher.
``--study hetero`` trains (or reuses) the Faster R-CNN, ConvNeXt and RetinaNet toy teachers at the work dirs their
configs name, then each heterogeneous DFMSD pair of
``configs/toy/hetero_*.py`` and the undistilled baseline of its student. Each prints a markdown table of COCO mAP
(mean and standard deviation over seeds, 0-100, gain over the run's baseline) and writes it with every run's
numbers to the work dir (results.md, results.json). Finished runs are recorded and skipped when run again.
"""
from __future__ import annotations

import argparse
import glob
import json
import os.path as osp
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from kdtools import DISTILLERS
from kdtools.experiments import METRICS, evaluate, train_and_evaluate


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


TOY = Data("configs/toy/retinanet_toy_teacher.py", "configs/toy/retinanet_toy_student.py",
           "configs/toy/{method}_retina_toy.py", "work_dirs/results")
REAL = Data("configs/bccd/retinanet_bccd_teacher.py", "configs/bccd/retinanet_bccd_student.py",
            "configs/bccd/{method}_retina_bccd.py", "work_dirs/results_real")
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
    """Runs recorded in ``work_dir/results.json``: a run already recorded for a seed is not trained again."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.record = osp.join(work_dir, "results.json")
        self.runs: dict[str, list[dict[str, float]]] = {}
        if osp.exists(self.record):
            with open(self.record) as f:
                self.runs = json.load(f)

    def run(self, name: str, config: str, seed: int, teacher: str | None = None) -> None:
        if any(r.get("seed") == seed for r in self.runs.get(name, [])):
            return
        result = train_and_evaluate(config, osp.join(self.work_dir, f"{name}_seed{seed}"), teacher, seed)
        self.add(name, {**result, "seed": seed})

    def teacher(self, name: str, config: str, work_dir: str, trained: str | None) -> None:
        """Record teacher ``name``: ``trained`` (a checkpoint or work dir) evaluated, else ``config`` trained
        into ``work_dir``."""
        if name in self.runs:
            return
        self.add(name, evaluate(config, trained, osp.join(self.work_dir, f"{name}_eval")) if trained
                 else train_and_evaluate(config, work_dir))

    def add(self, name: str, result: dict[str, float]) -> None:
        self.runs.setdefault(name, []).append(result)
        with open(self.record, "w") as f:
            json.dump(self.runs, f, indent=2)

    def write_table(self, baselines: dict[str, str]) -> None:
        table = summarise(self.runs, baselines)
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
    return sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(ABLATIONS.methods.format(method="*")))


def heads_names() -> list[str]:
    """Every toy GFL distillation config: the head distillers and their variants (e.g. crosskd_pre_activation)."""
    prefix, suffix = HEADS.methods.split("{method}")
    return sorted(path[len(prefix):-len(suffix)] for path in glob.glob(prefix + "*" + suffix))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=("distillers", "real", "heads", "ablations", "hetero"), default="distillers")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2 (distillers, real, heads), 0 (the others)")
    parser.add_argument("--methods", nargs="+", help="default: every distiller with a config (configs/toy/"
                        "<method>_retina_toy.py, configs/bccd/<method>_retina_bccd.py, configs/toy/<method>_gfl_toy.py"
                        "), every ablation config")
    parser.add_argument("--work-dir", help="default: work_dirs/results (distillers), work_dirs/results_real (real), "
                        "work_dirs/results_heads (heads), work_dirs/ablations, work_dirs/hetero")
    parser.add_argument("--teacher", help="a trained teacher (checkpoint or work dir) to use instead of training one")
    args = parser.parse_args()
    one_seed = args.study in ("ablations", "hetero")
    args.seeds = args.seeds or ([0] if one_seed else [0, 1, 2])
    if args.study == "hetero":
        args.work_dir = args.work_dir or "work_dirs/hetero"
        return hetero_study(args)
    data = {"distillers": TOY, "real": REAL, "heads": HEADS, "ablations": ABLATIONS}[args.study]
    args.work_dir = args.work_dir or data.work_dir
    known = {"ablations": ablation_names(), "heads": heads_names()}.get(args.study) or data.registered_methods()
    names = args.methods or known
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"no config for {unknown} in this study; those with one: {known}")
    distillers_study(args, data, data.method_configs(names))


if __name__ == "__main__":
    main()
