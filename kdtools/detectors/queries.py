"""Records of query-based detectors (DETRs): per decoder layer, the class logits, boxes and query embeddings.

A query distiller declares two taps on each side (:class:`~kdtools.distillers.query.QueryDistiller`):

- ``'<head>:call'``: the head's call, whose inputs are the decoder's hidden states (L x N x Q x D) and
  references (L + 1 entries of N x Q x 4 or x 2: the reference each layer read, then the last refined one)
  and whose outputs are the class logits (L x N x Q x K) and boxes (L x N x Q x 4, normalised cx, cy, w, h);
- ``'<decoder>:call'``: the decoder's inputs (the encoder memory and its layout), so that a distiller can run
  a separate decoder pass of queries of its own (:func:`decode`), and DINO's self-attention mask, which says
  how many of the first queries are denoising queries: :class:`QueryOutputs` leaves them out (the teacher,
  in eval mode, has none).

The queries' order is the head's: DINO puts the denoising queries first, then the matching queries.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from kdtools.detectors.taps import CALL_SUFFIX, Call, Records


@dataclass(frozen=True)
class QueryOutputs:
    """One side's matching queries, per decoder layer, and what a separate decoder pass needs."""

    cls_scores: Tensor  # L x N x Q x K logits
    boxes: Tensor  # L x N x Q x 4, normalised cx, cy, w, h
    hidden_states: Tensor  # L x N x Q x D
    references: Tensor  # (L + 1) x N x Q x R
    num_denoising: int  # denoising queries left out (the first ones of the head's call)
    head: nn.Module
    decoder: nn.Module
    decoder_inputs: dict
    features: list[Tensor]  # the neck levels, when a feature tap is recorded

    @property
    def num_layers(self) -> int:
        return int(self.cls_scores.shape[0])


def head_inputs(call: Call) -> tuple[Tensor, list[Tensor]]:
    """(hidden_states, references) of a recorded DETR head call, given by position or by name."""
    names = ("hidden_states", "references")
    values = list(call.args[:2]) + [call.kwargs[name] for name in names[len(call.args[:2]):] if name in call.kwargs]
    if len(values) != 2:
        raise TypeError(f"The recorded head call has no {names}: is the head a DETR head (DETRHead and subclasses)?")
    return values[0], list(values[1])


def num_denoising(decoder_inputs: dict) -> int:
    """How many of the first queries are denoising queries: DINO's self-attention mask (True: may not attend)
    keeps every matching query from the denoising ones and from nothing else, so its last row masks exactly
    them. No mask (eval mode, Deformable DETR): none."""
    mask = decoder_inputs.get("self_attn_mask")
    return 0 if mask is None else int(mask[-1].sum())


def query_outputs(records: Records, head: str, decoder: str, features: str | None = None) -> QueryOutputs:
    """The matching queries' outputs of one pass, from the records of ``head`` and ``decoder`` (and the levels
    of ``features``)."""
    call = records.call(head + CALL_SUFFIX)
    hidden, references = head_inputs(call)
    cls_scores, boxes = call.output[:2]
    decoder_inputs = records.call(decoder + CALL_SUFFIX).kwargs
    skip = num_denoising(decoder_inputs)
    return QueryOutputs(
        cls_scores=cls_scores[:, :, skip:], boxes=boxes[:, :, skip:], hidden_states=hidden[:, :, skip:],
        references=torch.stack(references)[:, :, skip:], num_denoising=skip,
        head=records.modules[head + CALL_SUFFIX], decoder=records.modules[decoder + CALL_SUFFIX],
        decoder_inputs=decoder_inputs,
        features=records.levels([features]) if features else [])


def decode(outputs: QueryOutputs, query: Tensor, reference_points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """A separate decoder pass of extra queries over the recorded memory: ``query`` N x G x D content,
    ``reference_points`` N x G x 4 (cx, cy, w, h in [0, 1]). They attend to each other only, never to the
    model's own queries, whose predictions they cannot change. Returns the per-layer (class logits
    L x N x G x K, boxes L x N x G x 4, hidden states L x N x G x D).

    DINO's decoder builds the queries' positional embedding from the reference boxes; a decoder that takes a
    ``query_pos`` input (Deformable DETR's) has none to give here and is refused."""
    inputs = dict(outputs.decoder_inputs)
    if "query_pos" in inputs:
        raise ValueError(
            f"{type(outputs.decoder).__name__} takes query_pos: extra queries are decoded on DINO-style decoders, "
            "which derive it from the reference boxes. Use a DINO teacher and student for injected queries.")
    inputs.update(query=query, reference_points=reference_points, self_attn_mask=None)
    hidden, references = outputs.decoder(**inputs)
    cls_scores, boxes = outputs.head(hidden, list(references))
    return cls_scores, boxes, hidden


def with_leaf_memory(outputs: QueryOutputs) -> tuple[QueryOutputs, Tensor]:
    """``outputs`` whose decoder passes read a detached copy of the encoder memory that takes gradients, and that
    copy: a separate pass can be run forward and backward on its own (timed alone by tools/benchmark.py)."""
    memory = outputs.decoder_inputs["value"].detach().requires_grad_()
    return replace(outputs, decoder_inputs={**outputs.decoder_inputs, "value": memory}), memory
