"""gaugan-sdk: train, export and run SPADE/GauGAN semantic image synthesis.

`import gaugan_sdk` needs only numpy: the runtime core (labels, config, metadata, Synthesizer) never imports
torch. The PyTorch model definitions live in `gaugan_sdk.models` and the checkpoint format in
`gaugan_sdk.checkpoint`; both import torch.
"""

__version__ = "0.1.0"

from .config import GeneratorConfig  # noqa: E402  (after __version__: metadata reads it)
from .synthesizer import Synthesizer  # noqa: E402

__all__ = ["GeneratorConfig", "Synthesizer", "__version__"]
