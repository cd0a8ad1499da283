"""The accuracy study on the toy data: teacher, student baseline and every distiller, several seeds.

    python tools/results.py [--seeds 0 1 2] [--methods fgd mgd cwd pkd dmkd dfmsd rnd] [--work-dir work_dirs/results]
                            [--teacher TRAINED_TEACHER]

Trains the teacher once (or reuses it from the work dir), then for each seed the student without
distillation and with each method, same schedule. Prints a markdown table of COCO mAP (mean and standard
deviation over seeds, 0-100) and writes it with every run's numbers to the work dir (results.md, results.json).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics

import kdtools  # noqa: F401
from kdtools.experiments import METRICS, evaluate, train_and_evaluate

TEACHER = "configs/toy/retinanet_toy_teacher.py"
BASELINE = "configs/toy/retinanet_toy_student.py"
METHODS = ("fgd", "mgd", "cwd", "pkd", "dmkd", "dfmsd", "rnd")


def summarise(runs: dict[str, list[dict[str, float]]], baseline: str = "student") -> str:
    """Markdown: per model the mean and spread over seeds of each metric, and the gain over the baseline."""
    base = statistics.mean(r["mAP"] for r in runs[baseline])
    lines = ["| model | seeds | " + " | ".join(METRICS) + " | mAP gain | train time |",
             "|---|---|" + "---|" * (len(METRICS) + 2)]
    for name, results in runs.items():
        cells = []
        for key in METRICS:
            values = [r[key] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        gain = statistics.mean(r["mAP"] for r in results) - base
        seconds = statistics.mean(r["train_s"] for r in results)
        lines.append(f"| {name} | {len(results)} | " + " | ".join(cells) + f" | {gain:+.1f} | {seconds:.0f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--work-dir", default="work_dirs/results")
    parser.add_argument("--teacher", help="a trained toy teacher (checkpoint or work dir) to use instead of training")
    args = parser.parse_args()

    teacher_dir = args.teacher or osp.join(args.work_dir, "teacher")
    record = osp.join(args.work_dir, "results.json")
    runs: dict[str, list[dict[str, float]]] = {}
    if osp.exists(record):
        with open(record) as f:
            runs = json.load(f)

    def run(name: str, config: str, seed: int) -> None:
        if any(r.get("seed") == seed for r in runs.get(name, [])):
            return
        result = train_and_evaluate(config, osp.join(args.work_dir, f"{name}_seed{seed}"), teacher_dir, seed)
        runs.setdefault(name, []).append({**result, "seed": seed})
        with open(record, "w") as f:
            json.dump(runs, f, indent=2)

    for seed in args.seeds:  # the baseline needs no teacher
        run("student", BASELINE, seed)
    if "teacher" not in runs:
        runs["teacher"] = [evaluate(TEACHER, args.teacher, osp.join(args.work_dir, "teacher_eval")) if args.teacher
                           else train_and_evaluate(TEACHER, teacher_dir)]
    for seed in args.seeds:
        for method in args.methods:
            run(method, f"configs/toy/{method}_retina_toy.py", seed)
    table = summarise(runs)
    print(table)
    with open(osp.join(args.work_dir, "results.md"), "w") as f:
        f.write(table + "\n")


if __name__ == "__main__":
    main()
