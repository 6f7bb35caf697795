"""PyTorch modules of the SPADE generator family. Importing this package imports torch.

    from gaugan_sdk.models import GeneratorConfig, SPADEGenerator, ConvEncoder
    cfg = GeneratorConfig.preset("cityscapes")
    G = SPADEGenerator(cfg).eval()
    G.load_state_dict(torch.load("checkpoints/cityscapes_pretrained/latest_net_G.pth"))   # strict
"""

from ..config import GeneratorConfig
from .batchnorm import random_generator, recalibrate_batchnorm
from .encoder import ConvEncoder, reparameterize
from .folding import fold_for_inference
from .generator import SPADEGenerator
from .graph import EncoderGraph, GeneratorGraph
from .spade import SPADE, SPADEResnetBlock
from .spectral_norm import SNConv2d

__all__ = [
    "GeneratorConfig", "SPADEGenerator", "ConvEncoder", "SPADE", "SPADEResnetBlock", "SNConv2d",
    "GeneratorGraph", "EncoderGraph", "reparameterize", "fold_for_inference", "recalibrate_batchnorm",
    "random_generator",
]
# MAC / parameter counting: gaugan_sdk.models.profile (also a command: python -m gaugan_sdk.models.profile).
