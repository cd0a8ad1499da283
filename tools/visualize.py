"""Draw the teacher and student FPN activations, the teacher attention and every distiller's masks.

    python tools/visualize.py CONFIG OUT.png [--index 0] [--checkpoint CKPT] [--teacher-checkpoint PATH]

CONFIG is a distillation config; the picture shows validation image ``--index`` with its boxes, one row
per FPN level (feature distillers) and per head level (head distillers: both heads' highest class probability
per location and their difference). Every map has its own colour bar; the caption under the grid says what
each panel shows. ``--checkpoint`` loads a kdtools training checkpoint (trained student and distillers);
without it the student and the distillers are untrained, which the tool warns about and the caption states.
"""
from __future__ import annotations

import argparse
import sys

import kdtools  # noqa: F401
from kdtools.visualization import draw_attention_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("out", help="output PNG path")
    parser.add_argument("--index", type=int, default=0, help="index of the validation image")
    parser.add_argument("--checkpoint", help="a kdtools training checkpoint to load")
    parser.add_argument("--teacher-checkpoint", help="override teacher.checkpoint of the config")
    parser.add_argument("--levels", nargs="*", help="level names to draw (default: all)")
    args = parser.parse_args()
    if not args.checkpoint:
        print("WARNING: no --checkpoint given: the student and the distillers are drawn untrained (random "
              "initialisation). Pass --checkpoint work_dirs/<config name>/epoch_<N>.pth to see a trained student.",
              file=sys.stderr)
    draw_attention_figure(args.config, args.teacher_checkpoint, args.out, args.index, args.checkpoint,
                          args.levels or None)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
