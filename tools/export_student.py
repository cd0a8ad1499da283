"""Export the student of a distillation checkpoint as a plain mmdet checkpoint plus its config.

    python tools/export_student.py CONFIG CHECKPOINT OUT.pth
    python tools/export_student.py CODISTILL_CONFIG WORK_DIR/peer1/epoch_12.pth OUT.pth --peer 1

writes OUT.pth (keys as in plain mmdet; no teacher, no distiller modules) and OUT.py (the student's
config), which plain mmdet loads: ``mmdet.apis.init_detector('OUT.py', 'OUT.pth')``. OUT.py keeps only the
``custom_imports`` that register something the student's config names (a user's backbone, not a distiller).
A codistillation checkpoint holds one peer's model: ``--peer`` says which (its model config, when the peers
differ).
"""
from __future__ import annotations

import argparse
import os.path as osp

import kdtools  # noqa: F401
from kdtools.checkpoint import export_student
from kdtools.codistill import peer_student_config
from kdtools.config import expand_distill_config, read_config, student_config


def main() -> None:
    parser = argparse.ArgumentParser(description="Export the student of a distillation checkpoint")
    parser.add_argument("config", help="the distillation config the checkpoint was trained with")
    parser.add_argument("checkpoint", help="a distillation training checkpoint")
    parser.add_argument("out", help="output checkpoint path (.pth); the config is written beside it (.py)")
    parser.add_argument("--peer", type=int, help="codistillation: the peer the checkpoint is of")
    args = parser.parse_args()
    cfg = read_config(args.config)
    if "codistill" in cfg:
        if args.peer is None:
            parser.error(f"{args.config} is a codistill config: say which peer the checkpoint is of (--peer P)")
        cfg = peer_student_config(cfg, args.peer)
    elif args.peer is not None:
        parser.error(f"--peer is for codistill configs; {args.config} has no codistill=dict(...)")
    exported = export_student(args.checkpoint, args.out)
    config_path = osp.splitext(args.out)[0] + ".py"
    student_config(expand_distill_config(cfg)).dump(config_path)
    print(f"student: {len(exported['state_dict'])} tensors -> {args.out}; config -> {config_path}")


if __name__ == "__main__":
    main()
