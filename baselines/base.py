"""The paper's ``Base`` (UAR Table 2, first row): ResNet patch features of each view and the
encoder-decoder Transformer, with no LSU, no CRA, no L_Global and no TIR.

It is UAR with every component switched off, so Base and the ablation rows share one code path
and differ only in the switches their configs record.
"""
from __future__ import annotations

from dataclasses import dataclass

from uarbench.models import register_model
from uarbench.models.uar.config import UARConfig
from uarbench.models.uar.model import UARModel


@dataclass(frozen=True)
class BaseConfig(UARConfig):
    lsu: bool = False
    cra_integration: bool = False
    cra_global_loss: bool = False
    tir: bool = False
    two_stage: bool = False


@register_model("base")
class BaseModel(UARModel):
    config_class = BaseConfig
