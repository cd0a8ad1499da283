"""DFMSD - Dual Feature-Masking Stage-wise Distillation (arXiv 2407.13147), the distiller part.

Published (abstract): DMKD-style dual masking for heterogeneous teacher/student pairs, plus (1) stage-wise
adaptation, the student progressively adapted to a sequence of teachers; (2) masking enhancement,
object-aware masking regions adaptively strengthened with the stages; (3) semantic alignment at each FPN
level so that teacher and student features share a distribution.

Per level (DMKD's machinery from ``kdtools.distillers.dmkd`` on aligned features):

    S', T' = align(F^S), align(F^T)
    s = A^S(F^T) * (1 + enhance * 1[inside a GT box])     selects the masked positions
    F_hat = w_s * G_s(S' * M^S) + w_c * G_c(S' * M^C)      M^C chosen by A^C(F^T) as in DMKD
    L_rec = alpha_dfmsd * sum (T' - F_hat)^2 / N
    L_align = align_weight * mean (S' - T')^2 / 2          optional, reported as '<name>_align'

kdtools' reading (no public code or full text; all configurable):

- Masking enhancement: the GT-box indicator up-weights the spatial selection score of the cells inside
  boxes by (1 + enhance); masking picks the top-scored cells (DMKD's rule), so object cells are masked,
  and must be reconstructed, more often. ``enhance=0`` reproduces DMKD's choice. The channel branch is
  unchanged. ``enhance_mode='weight'`` instead leaves the selection to the attention and weights the
  squared error of the cells inside boxes by (1 + enhance).
- The attentions that choose the masks are those of the raw teacher feature F^T (``attention_from='raw'``,
  the default: 0.4 mAP above ``'aligned'`` on BCCD, seed 0, docs/results.md) or of the aligned teacher T'
  (``'aligned'``).
- Semantic alignment (``align``), per channel c over the N, H, W of the batch, std(x) = the unbiased
  standard deviation (PKD's standardisation, ``kdtools.distillers.pkd.standardise_channels``):
    'standardize'  S' = (F^S - mu_c) / (std_c + 1e-6), T' likewise;
    'affine'       T' standardised as above, S' = gamma_c * standardised(F^S) + beta_c with a learned
                   per-level affine (gamma = 1, beta = 0 at start);
    None           S' = F^S, T' = F^T (then DFMSD is DMKD with the enhancement).
  The loss is then invariant to a positive per-channel affine change of the teacher feature, so the
  teachers of different stages (or architectures) need not share a feature scale; with
  ``attention_from='aligned'`` the masks are too.
- ``alpha_dfmsd`` defaults to 1e-6 with alignment and to MGD's 2e-5 without. Standardised features have
  unit variance per channel; 1e-6 x sum over a COCO P3 map (256 x 100 x 168, about 4.3 M elements) is
  close to PKD's RetinaNet weight 10 x mean / 2, so at the start the loss has PKD's scale.
- ``align_weight`` (default 0, off) adds the unmasked alignment term above; with 'standardize' it is PKD's
  loss (1 - Pearson r per channel).
- Stage-wise adaptation lives in the detector and a training hook; this class only exposes the
  attributes a stage may set, ``enhance``, ``mask_ratio`` and ``alpha_dfmsd`` (besides every distiller's
  ``loss_weight``), through ``apply_settings``, which checks the values and rejects unknown names.

Defaults suit RetinaNet on COCO and the toy set: ``mask_ratio=0.65``, ``temp=0.5``, ``mask_rule='topk'``,
``fusion='softmax'``, ``enhance=1.0``, ``align='standardize'``, ``attention_from='raw'``.

With ``loss_weight='auto'`` (``kdtools.calibration``) the default ``auto_ratio`` is the distillation /
detection loss ratio that ``alpha_dfmsd=1e-6`` gives once carried to another feature area by the area rule
(weight x COCO positions / run positions, 21.9 for BCCD's 256x192 inputs): 0.86 on BCCD, the loss sums
over the first 50 training iterations of a BCCD run at that weight (``tools/loss_ratio.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdtools.distillers.base import DistillBatch, LevelPair
from kdtools.distillers.dmkd import DualMaskDistiller
from kdtools.distillers.pkd import standardise_channels
from kdtools.modules.masking import object_aware_scores
from kdtools.registry import DISTILLERS

ALIGNMENTS = ("standardize", "affine", None)
ENHANCE_MODES = ("select", "weight")


@DISTILLERS.register_module()
class DFMSD(DualMaskDistiller):
    """Dual feature masking with object-aware enhancement and per-level semantic alignment.

    Args:
        alpha_dfmsd: weight of the reconstruction loss; None picks 1e-6 with alignment, 2e-5 without.
        enhance: strength e of the object-aware enhancement, >= 0.
        align: 'standardize', 'affine' or None.
        align_weight: weight of the optional alignment loss mean (S' - T')^2 / 2; 0 leaves it out.
        enhance_mode: 'select' (object cells more likely masked) or 'weight' (their error weighted).
        attention_from: 'raw' or 'aligned': the teacher feature whose attentions choose the masks.
        **kwargs: ``DualMaskDistiller`` arguments (mask_ratio, temp, mask_rule, fusion) and
            ``BaseDistiller`` arguments.
    """

    settable = (*DualMaskDistiller.settable, "enhance", "alpha_dfmsd")
    auto_ratio = 0.86

    def __init__(
        self,
        alpha_dfmsd: float | None = None,
        enhance: float = 1.0,
        align: str | None = "standardize",
        align_weight: float = 0.0,
        enhance_mode: str = "select",
        attention_from: str = "raw",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if align not in ALIGNMENTS:
            raise ValueError(f"Unknown align {align!r}; use one of {ALIGNMENTS}.")
        if enhance_mode not in ENHANCE_MODES:
            raise ValueError(f"Unknown enhance_mode {enhance_mode!r}; use one of {ENHANCE_MODES}.")
        if attention_from not in ("aligned", "raw"):
            raise ValueError(f"attention_from must be 'aligned' or 'raw', got {attention_from!r}.")
        self.enhance_mode = enhance_mode
        self.attention_from = attention_from
        if alpha_dfmsd is None:
            alpha_dfmsd = 2e-5 if align is None else 1e-6
        self.align = align
        self.align_weight = float(align_weight)
        self.apply_settings(alpha_dfmsd=alpha_dfmsd, enhance=enhance)
        self.affine_weights = nn.ParameterList()
        self.affine_biases = nn.ParameterList()

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        """DMKD's modules, plus the per-level affine of ``align='affine'``."""
        super().build_modules(levels)
        if self.align == "affine":
            self.affine_weights = nn.ParameterList(nn.Parameter(torch.ones(lv.teacher_channels)) for lv in levels)
            self.affine_biases = nn.ParameterList(nn.Parameter(torch.zeros(lv.teacher_channels)) for lv in levels)

    def aligned(self, student: Tensor, teacher: Tensor, index: int) -> tuple[Tensor, Tensor]:
        """(S', T') of level ``index`` under ``self.align``."""
        if self.align is None:
            return student, teacher
        student = standardise_channels(student)
        if self.align == "affine":
            weight, bias = self.affine_weights[index], self.affine_biases[index]
            student = student * weight[None, :, None, None] + bias[None, :, None, None]
        return student, standardise_channels(teacher)

    def mask_source(self, teacher: Tensor, aligned_teacher: Tensor) -> Tensor:
        return teacher if self.attention_from == "raw" else aligned_teacher

    def spatial_scores(self, attention: Tensor, batch: DistillBatch) -> Tensor:
        """A^S_t * (1 + enhance * inside_boxes) with ``enhance_mode='select'``, else A^S_t."""
        if self.enhance_mode != "select":
            return attention
        return object_aware_scores(attention, batch.inside_boxes(attention.shape[-2:]), self.enhance)

    def position_weight(self, batch: DistillBatch, size: Sequence[int]) -> Tensor | None:
        """1 + enhance * inside_boxes with ``enhance_mode='weight'``, else None."""
        return 1.0 + self.enhance * batch.inside_boxes(size) if self.enhance_mode == "weight" else None

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor | dict:
        aligned_student, aligned_teacher = self.aligned(student, teacher, index)
        loss = self.alpha_dfmsd * self.aligned_reconstruction_loss(aligned_student, aligned_teacher, teacher, batch,
                                                                   index)
        if not self.align_weight:
            return loss
        return {"rec": loss, "align": self.align_weight * (aligned_student - aligned_teacher).pow(2).mean() / 2}
