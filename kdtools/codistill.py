"""Codistillation: several models train at once, each distilling from stale copies of the others.

Anil et al., "Large scale distributed neural network training through online distillation" (ICLR 2018); the
mechanics follow pfnet-research/sc20-online-codistillation (peers' weights exchanged every 50 iterations,
distillation after a burn-in, weight 1). A config asks for it with::

    codistill = dict(peers=2, exchange_interval=50, burn_in=100, distillers=[dict(type='BCKD')])

and is launched the usual way, ``tools/dist_train.sh CONFIG N`` (or Slurm), with N a multiple of ``peers``.
The N processes split into P peers of N/P ranks each (ranks ``p*N/P ... (p+1)*N/P - 1`` are peer p). Each peer
is its own run: its own model (``models[p]``, default the config's ``model``), seed (``randomness.seed * P + p``),
work dir (``<work_dir>/peer<p>``), logs, validation, checkpoints and resume. mmengine's default process group
is the peer's, so gradient all-reduce, metrics and every other collective stay inside a peer; a second group
over all N processes carries only the exchange (:class:`~kdtools.hooks.PeerExchangeHook`): every
``exchange_interval`` iterations from ``burn_in`` on, each peer's first rank broadcasts its student's weights
and every other peer loads them into its stale copy (:class:`~kdtools.detectors.sources.StalePeer`).
Nothing else crosses between peers.

Each peer's model is a ``DistillDetector`` with ``peers=[the other models]``: the distillers (any registered
one: dense-head KD such as BCKD or LD, feature distillers too) read the stale copies' records as they read a
teacher's; with more than two peers each distillation loss is the mean of its losses against every peer (the
paper distils toward the peers' mean prediction; the two agree for two peers). Before ``burn_in`` the peers
train alone (no source is run).

Options:
    peers: P, at least 2.
    models: P model configs (dicts or config files), one per peer; default P copies of ``model``.
    exchange_interval: K, iterations between exchanges (the reference's 50).
    burn_in: iterations before the first exchange and distillation (0: from the start).
    distillers: the distillers of every peer, as ``distill=[...]`` of a teacher config.
    data: ``'disjoint'`` (default, as in the paper): a fixed partition of the training set, one shard per
        peer (:class:`~kdtools.datasets.PeerShardSampler`); ``'shared'``: every peer samples all of it.
    partition_seed: the seed of the partition.

Deep mutual learning (Zhang et al., 2018) is ``peers=2, exchange_interval=1, burn_in=0, data='shared'``: each
model learns from the other's current weights on the whole data.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config

from kdtools.detectors.teacher import load_model_config
from kdtools.training import slurm_env, use_cpu_distributed

CODISTILL_DEFAULTS = dict(models=None, exchange_interval=50, burn_in=0, data="disjoint", partition_seed=0)
DATA_MODES = ("disjoint", "shared")
LAUNCH = "tools/dist_train.sh CONFIG N (N a multiple of the peers) or tools/slurm_train.sh"

_exchange_group: dist.ProcessGroup | None = None


def codistill_spec(value: dict) -> dict:
    """``codistill=dict(...)`` with its defaults, every option checked."""
    if not isinstance(value, dict) or "peers" not in value or "distillers" not in value:
        raise ValueError(f"codistill must be dict(peers=P, distillers=[...], ...), got {value!r}")
    unknown = set(value) - set(CODISTILL_DEFAULTS) - {"peers", "distillers"}
    if unknown:
        raise ValueError(f"Unknown codistill keys {sorted(unknown)}; allowed: "
                         f"{sorted({'peers', 'distillers', *CODISTILL_DEFAULTS})}")
    spec = {**CODISTILL_DEFAULTS, **value}
    peers = spec["peers"]
    if not isinstance(peers, int) or peers < 2:
        raise ValueError(f"codistill.peers={peers!r}: codistillation needs at least 2 peers.")
    if spec["models"] is not None and len(spec["models"]) != peers:
        raise ValueError(f"codistill.models has {len(spec['models'])} model configs for {peers} peers: give one "
                         "per peer, or none for copies of the config's model.")
    for key in ("exchange_interval", "burn_in"):
        minimum = 1 if key == "exchange_interval" else 0
        if not isinstance(spec[key], int) or spec[key] < minimum:
            raise ValueError(f"codistill.{key}={spec[key]!r}: an integer number of iterations >= {minimum}.")
    if spec["data"] not in DATA_MODES:
        raise ValueError(f"codistill.data={spec['data']!r}: 'disjoint' (one shard per peer) or 'shared'.")
    if not spec["distillers"]:
        raise ValueError("codistill.distillers=[] is empty: name the distillers, e.g. [dict(type='BCKD')].")
    return spec


@dataclass(frozen=True)
class PeerLayout:
    """Where a process sits: global ``rank`` of ``world``, split into ``peers`` blocks of consecutive ranks."""

    rank: int
    world: int
    peers: int

    def __post_init__(self) -> None:
        if self.world % self.peers:
            raise ValueError(f"codistill with {self.peers} peers was launched on {self.world} processes: launch a "
                             f"multiple of {self.peers} ({LAUNCH}); each peer gets world / peers of them.")

    @property
    def size(self) -> int:
        """Processes per peer."""
        return self.world // self.peers

    @property
    def peer(self) -> int:
        return self.rank // self.size

    @property
    def local_rank(self) -> int:
        """The rank inside the peer's own process group."""
        return self.rank % self.size

    def leader(self, peer: int) -> int:
        """The global rank that sends peer ``peer``'s weights."""
        return peer * self.size


def layout_from_env(peers: int, launcher: str) -> PeerLayout:
    """This process's layout from the launcher's environment (torchrun's or Slurm's)."""
    if launcher in (None, "none"):
        raise ValueError(f"codistill trains {peers} models at once, each on its own processes: launch it with "
                         f"{LAUNCH}, not as a single process.")
    if launcher == "slurm":
        slurm_env()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError(f"launcher={launcher!r} but RANK / WORLD_SIZE are not set: launch with {LAUNCH}.")
    return PeerLayout(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), peers)


def peer_models(cfg: Config) -> list[dict]:
    """The model config of every peer of a codistill config."""
    spec = codistill_spec(cfg.codistill)
    if spec["models"]:
        return [dict(load_model_config(m)) for m in spec["models"]]
    return [dict(cfg.model)] * spec["peers"]


def peer_student_config(cfg: Config, peer: int) -> Config:
    """The plain config of peer ``peer`` of a codistill config: its model, the data of the config (as trained
    alone on all of it), no codistillation."""
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    cfg.model = peer_models(cfg)[peer]
    cfg.pop("codistill")
    return cfg


def peer_config(cfg: Config, peer: int) -> Config:
    """The run of peer ``peer``: a ``DistillDetector`` of its model distilling from the others' stale copies,
    its own seed, work dir, shard and the exchange hook. ``cfg.work_dir`` is the run's (``peer<p>`` below it)."""
    for key in ("distill", "teacher", "stages", "teacher_control"):
        if key in cfg:
            raise ValueError(f"A codistill config distils from its peers: leave out {key!r} (the distillers go in "
                             "codistill.distillers).")
    if cfg.model.get("type") == "DistillDetector":
        raise ValueError("A codistill config gives the plain model (or codistill.models), not a DistillDetector.")
    spec = codistill_spec(cfg.codistill)
    models = peer_models(cfg)
    cfg.model = dict(type="DistillDetector", student=models[peer], distillers=spec["distillers"],
                     peers=[m for q, m in enumerate(models) if q != peer])
    for key in ("teacher_half", "nonfinite"):
        if key in cfg:
            cfg.model[key] = cfg.pop(key)
    cfg.work_dir = osp.join(cfg.work_dir, f"peer{peer}")
    randomness = dict(cfg.get("randomness") or {})
    cfg.randomness = dict(randomness, seed=(randomness.get("seed") or 0) * spec["peers"] + peer)
    cfg.teacher_check = None
    if spec["data"] == "disjoint":
        sampler = dict(cfg.train_dataloader.get("sampler") or {})
        cfg.train_dataloader.sampler = dict(type="PeerShardSampler", peer=peer, peers=spec["peers"],
                                            partition_seed=spec["partition_seed"], shuffle=sampler.get("shuffle", True))
    hook = dict(type="PeerExchangeHook", interval=spec["exchange_interval"], burn_in=spec["burn_in"])
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), hook]
    cfg.codistill = spec
    return cfg


def init_peer_groups(cfg: Config, timeout: timedelta = timedelta(minutes=30)) -> None:
    """The peer's own default process group (mmengine's, DDP's) and the exchange group over every process.

    Call before the Runner is built; it finds the default group initialised and uses it. Without GPUs the peers
    train on CPU over gloo (as :func:`kdtools.training.setup_cpu_distributed` sets up a plain run).
    """
    global _exchange_group
    spec = cfg.codistill
    layout = layout_from_env(spec["peers"], cfg.get("launcher", "none"))
    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    store, rank, world = next(dist.rendezvous("env://"))
    store.set_timeout(timeout)
    dist.init_process_group(backend, store=dist.PrefixStore(f"peer{layout.peer}", store),
                            rank=layout.local_rank, world_size=layout.size, timeout=timeout)
    exchange_store = dist.PrefixStore("exchange", store)
    group_type = dist.ProcessGroupNCCL if cuda else dist.ProcessGroupGloo
    _exchange_group = group_type(exchange_store, rank, world, timeout)
    if not cuda:
        use_cpu_distributed(cfg)


def exchange_group() -> tuple[dist.ProcessGroup, PeerLayout]:
    """The group over every process of the run and this process's layout (after :func:`init_peer_groups`)."""
    if _exchange_group is None:
        raise RuntimeError("PeerExchangeHook runs in a codistill run started by tools/train.py (init_peer_groups).")
    peers = _exchange_group.size() // dist.get_world_size()
    return _exchange_group, PeerLayout(_exchange_group.rank(), _exchange_group.size(), peers)


def broadcast(tensor: torch.Tensor, root: int, group: dist.ProcessGroup) -> None:
    """``tensor`` from global rank ``root`` to every process of ``group``, in place."""
    options = dist.BroadcastOptions()
    options.rootRank = root
    group.broadcast([tensor], options).wait()
