"""Distillers, one method per file. Importing this package registers them all in ``DISTILLERS``."""
from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.distillers.bckd import BCKD
from kdtools.distillers.crosskd import CrossKD
from kdtools.distillers.cwd import CWD
from kdtools.distillers.detrdistill import DETRDistill
from kdtools.distillers.dfmsd import DFMSD
from kdtools.distillers.dmkd import DMKD
from kdtools.distillers.fgd import FGD
from kdtools.distillers.head import HeadDistiller
from kdtools.distillers.iekd import IEKD
from kdtools.distillers.kddetr import KDDETR
from kdtools.distillers.ld import LD
from kdtools.distillers.mgd import MGD
from kdtools.distillers.pkd import PKD
from kdtools.distillers.query import QueryDistiller
from kdtools.distillers.rnd import RND

__all__ = ["BCKD", "BaseDistiller", "CWD", "CrossKD", "DETRDistill", "DFMSD", "DMKD", "DistillBatch", "FGD",
           "HeadDistiller", "IEKD", "KDDETR", "LD", "LevelPair", "MGD", "PKD", "QueryDistiller", "RND"]
