"""gaugan-sdk: train, export and run SPADE/GauGAN semantic image synthesis.

`import gaugan_sdk` needs only numpy: the runtime core (labels, config, metadata, Synthesizer) never imports
torch. The PyTorch model definitions live in `gaugan_sdk.models` and the checkpoint format in
`gaugan_sdk.checkpoint`; both import torch.
"""

from .config import GeneratorConfig

__version__ = "0.1.0"

__all__ = ["GeneratorConfig", "__version__"]
