"""The main job on the built-in toy data: teacher, student, and the student distilled with DFMSD and DMKD.

    python tools/demo.py [--work-dir work_dirs/demo] [--skip-teacher]

Writes the toy data (if missing), trains the four models of ``configs/demo/`` (a 5-epoch teacher; the student
alone and with DFMSD and with DMKD, 3 epochs each, so that the demo takes minutes on a CPU; the accuracy study
of docs/results.md uses the longer schedules of ``configs/toy/``), evaluates each with COCO mAP (pycocotools),
prints a table, and writes ``results.json``, ``map.png`` (the table as a bar chart) and ``attention.png`` (the
trained DFMSD student's and the teacher's activations, the teacher attention and DFMSD's masks on one
validation image) to the work dir.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import time

from mmengine.runner import find_latest_checkpoint

import kdtools  # noqa: F401
from kdtools.experiments import format_table, train_and_evaluate

RUNS = {
    "teacher": "configs/demo/teacher.py",
    "student": "configs/demo/student.py",
    "dfmsd": "configs/demo/dfmsd.py",
    "dmkd": "configs/demo/dmkd.py",
}


def plot(results: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(names, [results[n]["mAP"] for n in names], color=["#555", "#999", "#2a7", "#27a"][: len(names)])
    ax.bar_label(bars, fmt="%.1f")
    ax.set_ylabel("COCO bbox mAP (toy val)")
    ax.set_title("kdtools demo: distillation on the toy data")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default="work_dirs/demo")
    parser.add_argument("--skip-teacher", action="store_true", help="reuse the teacher already in the work dir")
    args = parser.parse_args()
    start = time.perf_counter()
    teacher_dir = osp.join(args.work_dir, "teacher")
    results = {}
    for name, config in RUNS.items():
        if name == "teacher" and args.skip_teacher:
            continue
        print(f"\n==> training {name} ({config})", flush=True)
        results[name] = train_and_evaluate(config, osp.join(args.work_dir, name), teacher_dir)
    print("\n" + format_table(results))
    with open(osp.join(args.work_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results, osp.join(args.work_dir, "map.png"))
    from kdtools.visualization import draw_attention_figure

    draw_attention_figure(RUNS["dfmsd"], teacher_dir, osp.join(args.work_dir, "attention.png"),
                          checkpoint=find_latest_checkpoint(osp.join(args.work_dir, "dfmsd")))
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"\nDemo finished in {minutes} min {seconds:02d} s. Outputs in {args.work_dir}/: results.json, map.png, "
          "attention.png, and one folder of logs and checkpoints per model.")


if __name__ == "__main__":
    main()
