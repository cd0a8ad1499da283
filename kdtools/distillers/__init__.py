"""Distillers, one method per file. Importing this package registers them all in ``DISTILLERS``."""
from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.distillers.cwd import CWD
from kdtools.distillers.dfmsd import DFMSD
from kdtools.distillers.dmkd import DMKD
from kdtools.distillers.fgd import FGD
from kdtools.distillers.mgd import MGD
from kdtools.distillers.pkd import PKD
from kdtools.distillers.rnd import RND

__all__ = ["BaseDistiller", "CWD", "DFMSD", "DMKD", "DistillBatch", "FGD", "LevelPair", "MGD", "PKD", "RND"]
