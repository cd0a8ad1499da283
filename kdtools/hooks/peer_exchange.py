"""The weight exchange of codistillation (:mod:`kdtools.codistill`)."""
from __future__ import annotations

import time

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import Tensor

from kdtools.codistill import broadcast, exchange_group


def broadcast_state(state: dict[str, Tensor], root: int, group) -> dict[str, Tensor]:
    """``state`` as global rank ``root`` has it, on every process of ``group``: one broadcast per dtype of the
    tensors flattened in key order (the receivers pass a state of the same keys and shapes; its values are
    overwritten)."""
    keys_by_dtype: dict[torch.dtype, list[str]] = {}
    for key, value in state.items():
        keys_by_dtype.setdefault(value.dtype, []).append(key)
    received = {}
    for keys in keys_by_dtype.values():
        flat = torch.cat([state[k].detach().reshape(-1) for k in keys])
        broadcast(flat, root, group)
        for key, part in zip(keys, flat.split([state[k].numel() for k in keys])):
            received[key] = part.view_as(state[key])
    return {key: received[key] for key in state}


@HOOKS.register_module()
class PeerExchangeHook(Hook):
    """Every ``interval`` iterations from ``burn_in`` on, each peer's student weights go to the other peers'
    stale copies; before ``burn_in`` the model trains without distillation.

    The exchange happens before the iteration's step, over the group of every process of the run: per peer, its
    first rank broadcasts its student's ``state_dict`` (weights and buffers) and every rank of the other peers
    loads it. Between exchanges nothing crosses between peers. Checkpoints keep the stale copies and the last
    exchange, and resuming restores them, so a resumed run exchanges and distils as an uninterrupted one. The
    seconds an exchange takes are logged as ``exchange_time``.

    Args:
        interval: iterations between exchanges.
        burn_in: the first iteration that distils (and exchanges).
    """

    priority = "HIGH"  # before the schedule hooks read the iteration

    def __init__(self, interval: int = 50, burn_in: int = 0) -> None:
        self.interval = interval
        self.burn_in = burn_in
        self.last_exchange = -1

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not getattr(model, "peers", None):
            raise TypeError("PeerExchangeHook needs a DistillDetector with peers (a codistill config).")
        return model

    def due(self, step: int) -> bool:
        return step >= self.burn_in and (step - self.burn_in) % self.interval == 0 and step != self.last_exchange

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = self._model(runner)
        model.distill_active = runner.iter >= self.burn_in
        if self.due(runner.iter):
            start = time.perf_counter()
            self.exchange(model)
            self.last_exchange = runner.iter
            runner.message_hub.update_scalar("train/exchange_time", time.perf_counter() - start)

    @torch.no_grad()
    def exchange(self, model) -> None:
        group, layout = exchange_group()
        others = iter(model.peers)
        for peer in range(layout.peers):
            if peer == layout.peer:
                broadcast_state(model.student.state_dict(), layout.leader(peer), group)
            else:
                copy = next(others)
                copy.load_state_dict(broadcast_state(copy.state_dict(), layout.leader(peer), group))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._model(runner)
        checkpoint["codistill"] = dict(
            last_exchange=self.last_exchange,
            peers=[{k: v.detach().cpu() for k, v in peer.state_dict().items()} for peer in model.peers])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get("codistill")
        if state is None:
            raise ValueError("Resuming a codistill run from a checkpoint without its peers' stale copies: resume "
                             "each peer from a checkpoint of its own work dir (<work_dir>/peer<p>).")
        model = self._model(runner)
        if len(state["peers"]) != len(model.peers):
            raise ValueError(f"The checkpoint holds {len(state['peers'])} stale peers, this run has "
                             f"{len(model.peers)}: resume with the codistill config it was saved by.")
        device = next(model.student.parameters()).device
        for peer, weights in zip(model.peers, state["peers"]):
            peer.load_state_dict({k: v.to(device) for k, v in weights.items()})
        self.last_exchange = state["last_exchange"]
