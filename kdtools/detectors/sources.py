"""Knowledge sources: where the records the distillers read come from.

A distiller declares the records it needs (module paths of the other model, ``'<path>:in'``); a source is
anything that gives those records for a batch, with one interface::

    source.records(inputs, data_samples, batch) -> Records   # inference mode, only as deep as the taps need
    source.probe(size) -> Records                            # the records of a blank image, read at build time
    source.model, source.apply(fn), source.checked

:class:`DistillDetector` asks each of its sources in turn and hands the records to every distiller, which cannot
tell one source from another. The sources:

- the frozen teacher (:class:`~kdtools.detectors.teacher.Teacher`), built from a config and a checkpoint;
- a control in the teacher's place (:mod:`kdtools.detectors.controls`): a teacher that keeps only one kind of its
  knowledge, to tell where a gain comes from;
- stale peers (:class:`StalePeer`, codistillation, :mod:`kdtools.codistill`): the other models training at the
  same time, as of their last weight exchange.

Every source shares the teacher's machinery (taps, the input adapter for another normalisation, half precision,
the probe); a source that is not a trained teacher says ``checked = False`` and the teacher check leaves it out.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from kdtools.detectors.teacher import Teacher, build_model


class StalePeer(Teacher):
    """Another peer of a codistillation run, as of the last exchange of weights.

    Built from the peer's model config and randomly initialised; :class:`~kdtools.hooks.PeerExchangeHook`
    overwrites its weights with the peer's at every exchange, and between exchanges it does not change.

    Args:
        config: the peer's model config (a dict, or a config file whose ``model`` it is).
        taps, student_preprocessor, half, device: as :class:`Teacher`'s.
    """

    checked = False

    def __init__(self, config: dict | str, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu") -> None:
        spec = dict(config=config, checkpoint=None)
        super().__init__(spec, taps, student_preprocessor, half, device, model=build_model(config))

    def state_dict(self) -> dict[str, Tensor]:
        """The stale weights and buffers, as the peer's ``student.state_dict()`` names them."""
        return self.model.state_dict()

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Take the peer's weights (strict: the keys and shapes of its model)."""
        self.model.load_state_dict(state, strict=True)
