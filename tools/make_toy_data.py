"""Generate the synthetic toy COCO detection data set (skipped when it already exists with the same parameters)."""

from __future__ import annotations

import argparse

from kdtools.datasets import make_toy_coco
from kdtools.datasets.toy_coco import DEFAULT_PARAMS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data/toy_coco", help="output directory (default: %(default)s)")
    for name, default in DEFAULT_PARAMS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=default, help=f"(default: {default})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    meta = make_toy_coco(args.out, args.num_train, args.num_val, args.img_size, args.seed)
    action = "wrote" if meta["generated"] else "kept existing"
    counts = ", ".join(
        f"{split}: {num} images / {meta['num_objects'][split]} objects" for split, num in meta["num_images"].items()
    )
    print(f"{action} toy COCO data in {args.out} ({counts})")


if __name__ == "__main__":
    main()
