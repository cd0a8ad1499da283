"""Matching student levels to teacher levels from the shapes seen in a probe forward pass."""
from __future__ import annotations

import math
from collections.abc import Sequence

from kdtools.detectors.taps import Records
from kdtools.distillers.base import BaseDistiller, LevelPair

Shape = tuple[int, int, int]  # C, H, W


def map_shapes(records: Records, taps: Sequence[str], distiller: BaseDistiller) -> list[Shape]:
    """C x H x W of every level of ``taps``; a record that is not an N x C x H x W map is named with the fix."""
    shapes = []
    for tap in taps:
        for level in records.levels([tap]):
            if level.dim() != 4:
                raise ValueError(
                    f"Distiller {distiller.name!r} ({type(distiller).__name__}) compares N x C x H x W maps, but tap "
                    f"{tap!r} records {records.describe(tap)}. Tap a module that outputs feature maps, or use a "
                    "distiller made for these records."
                )
            shapes.append((int(level.shape[1]), int(level.shape[2]), int(level.shape[3])))
    return shapes


def level_name(probe_size: int, height: int, index: int) -> str:
    """'p3' for stride 8 and so on; 'l<index>' when the stride is not a power of two."""
    stride = probe_size / height
    log = math.log2(stride) if stride > 0 else -1
    return f"p{int(log)}" if log >= 0 and log == int(log) else f"l{index}"


def _describe(shapes: Sequence[Shape]) -> str:
    return ", ".join(f"#{i}: {c}x{h}x{w}" for i, (c, h, w) in enumerate(shapes))


def _check_indices(indices: Sequence[int], shapes: Sequence[Shape], side: str, owner: str) -> None:
    bad = [i for i in indices if not -len(shapes) <= i < len(shapes)]
    if bad:
        raise ValueError(
            f"{owner}: {side}_levels {list(indices)} name levels {bad} that the {side} tap does not have; "
            f"it has {len(shapes)} levels ({_describe(shapes)})."
        )


def _same_size(index: int, own: Sequence[Shape], other: Sequence[Shape]) -> int | None:
    matches = [j for j, shape in enumerate(other) if shape[1:] == own[index][1:]]
    if index < len(other) and index in matches:
        return index
    return matches[0] if matches else None


def match_levels(
    distiller: BaseDistiller, student: Sequence[Shape], teacher: Sequence[Shape], probe_size: int
) -> list[LevelPair]:
    """Pair the distiller's student and teacher levels: as configured, else by equal spatial size (stride)."""
    owner = f"Distiller {distiller.name!r} ({type(distiller).__name__})"
    s_idx, t_idx = distiller.student_levels, distiller.teacher_levels
    for indices, shapes, side in ((s_idx, student, "student"), (t_idx, teacher, "teacher")):
        if indices is not None:
            _check_indices(indices, shapes, side, owner)
    if s_idx is not None and t_idx is not None:
        if len(s_idx) != len(t_idx):
            raise ValueError(
                f"{owner}: student_levels {s_idx} and teacher_levels {t_idx} differ in length; give one teacher "
                f"level per student level (student levels: {_describe(student)}; teacher levels: "
                f"{_describe(teacher)})."
            )
        pairs = list(zip(s_idx, t_idx))
    elif t_idx is not None:
        pairs = [(_same_size(t, teacher, student), t) for t in t_idx]
    elif s_idx is not None:
        pairs = [(s, _same_size(s, student, teacher)) for s in s_idx]
    else:  # default: every student level that has a teacher level of the same stride
        pairs = [(s, t) for s in range(len(student)) if (t := _same_size(s, student, teacher)) is not None]
    if not pairs or any(None in pair for pair in pairs):
        raise ValueError(
            f"{owner}: cannot match levels by stride. Student levels: {_describe(student)}; teacher levels: "
            f"{_describe(teacher)}. Set student_levels=[...] and teacher_levels=[...] (same length) and a "
            "connector ('resize' or 'conv1x1') if sizes or channels differ."
        )
    return [
        LevelPair(
            name=level_name(probe_size, student[s][1], s),
            student_index=s % len(student),
            teacher_index=t % len(teacher),
            student_channels=student[s][0],
            teacher_channels=teacher[t][0],
            student_size=student[s][1:],
            teacher_size=teacher[t][1:],
        )
        for s, t in pairs
    ]
