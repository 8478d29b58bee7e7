"""UAR (Li et al., ICCV 2023): config, the LSU / CRA / TIR modules and the model."""
from uarbench.models.uar.config import UARConfig, VQConfig
from uarbench.models.uar.model import UARModel

__all__ = ["UARConfig", "VQConfig", "UARModel"]
