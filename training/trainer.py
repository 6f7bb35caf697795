"""One SPADE/GauGAN training step: the generator (and style encoder) step, then the discriminator step, with
the reference losses, initialization, TTUR optimizers and linear learning-rate decay.

    trainer = Trainer(opts, cfg, device)
    g_losses, fake = trainer.generator_step(batch)
    d_losses = trainer.discriminator_step(batch)
    trainer.set_epoch(epoch)            # learning rates of the epoch (constant, then linear decay to 0)
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import nn

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.models import ConvEncoder, SPADEGenerator, SNConv2d, reparameterize
from gaugan_sdk.models.semantics import semantics_tensor

from . import distributed
from .discriminator import MultiscaleDiscriminator
from .losses import VGG19Features, VGGLoss, feature_matching_loss, hinge_d_loss, hinge_g_loss, kl_loss
from .options import TrainOptions


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """The reference `xavier` init: xavier_normal_(gain 0.02) on conv / linear weights, zero biases, batch-norm
    scales N(1, 0.02). For spectral-norm convs that is the raw weight (weight_orig), as in the reference."""
    for m in module.modules():
        if isinstance(m, SNConv2d):
            nn.init.xavier_normal_(m.weight_orig, gain=gain)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
            continue
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def learning_rate(base: float, epoch: int, niter: int, niter_decay: int) -> float:
    """The reference schedule for 0-based `epoch`: constant for `niter` epochs, then minus base/niter_decay
    per epoch, reaching base/niter_decay in the last one."""
    if niter_decay == 0 or epoch < niter:
        return base
    return base * max(0.0, 1 - (epoch - niter) / niter_decay)


class Trainer:
    def __init__(self, opts: TrainOptions, cfg: GeneratorConfig, device: torch.device,
                 dist_info: distributed.Dist | None = None):
        self.opts, self.cfg, self.device = opts, cfg, device
        self.dist = dist_info or distributed.Dist()
        memory_format = torch.channels_last if opts.channels_last else torch.preserve_format
        self.memory_format = memory_format

        def build(module: nn.Module) -> nn.Module:
            init_weights(module)
            module = distributed.prepare_batchnorm(module, device).to(device, memory_format=memory_format)
            return module.train()

        self.G = build(SPADEGenerator(cfg))
        self.E = build(ConvEncoder(cfg)) if cfg.use_vae else None
        self.D = build(MultiscaleDiscriminator(cfg.semantic_nc + 3, opts.ndf, opts.n_layers_D, opts.num_D))
        # DDP wrappers carry the gradient all-reduce; the discriminator is called unwrapped (and frozen) in the
        # generator step, whose discriminator gradients the reference computes and then throws away.
        self.G_ddp = distributed.wrap(self.G, self.dist, device)
        self.E_ddp = distributed.wrap(self.E, self.dist, device) if self.E is not None else None
        self.D_ddp = distributed.wrap(self.D, self.dist, device)
        self.vgg = None
        if opts.vgg_weights:
            self.vgg = VGGLoss(VGG19Features.from_file(opts.vgg_weights)).to(device, memory_format=memory_format)
        elif opts.lambda_vgg > 0 and self.dist.is_main:
            warnings.warn("no --vgg-weights given: the VGG19 perceptual loss (x10 in the reference recipe) is off; "
                          "pass torchvision's vgg19-dcbb9e9d.pth to train the full recipe", stacklevel=2)
        g_params = list(self.G.parameters()) + (list(self.E.parameters()) if self.E is not None else [])
        self.opt_G = torch.optim.Adam(g_params, lr=opts.lr_G, betas=(opts.beta1, opts.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=opts.lr_D, betas=(opts.beta1, opts.beta2))

    # ------------------------------------------------------------------ steps
    def generator_step(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, float], torch.Tensor]:
        semantics, real = self._inputs(batch)
        self.opt_G.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        with self._autocast():
            fake, kld = self._generate(semantics, real)
            pred_fake, pred_real = self._discriminate(self.D, semantics, fake, real)
            losses = {"G_GAN": hinge_g_loss(pred_fake)}
            if not self.opts.no_ganFeat_loss:
                losses["G_feat"] = feature_matching_loss(pred_fake, pred_real, self.opts.lambda_feat)
            if self.vgg is not None:
                losses["G_VGG"] = self.vgg(fake.float(), real) * self.opts.lambda_vgg
            if kld is not None:
                losses["G_KLD"] = kld * self.opts.lambda_kld
        total = sum(v.float() for v in losses.values())
        total.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)
        return _floats(losses), fake.detach()

    def discriminator_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        semantics, real = self._inputs(batch)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            with torch.no_grad():  # the reference generates a fresh fake for the D step
                fake, _ = self._generate(semantics, real)
            pred_fake, pred_real = self._discriminate(self.D_ddp, semantics, fake.detach(), real)
            d_real, d_fake = hinge_d_loss(pred_real, pred_fake)
        (d_fake.float() + d_real.float()).backward()
        self.opt_D.step()
        return {"D_real": d_real.item(), "D_fake": d_fake.item()}

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor], style: bool = True) -> torch.Tensor:
        """Eval-mode images in [-1, 1] for the batch's masks (style from the real image when the model has one,
        z = mu, as at inference). Leaves the models in training mode."""
        semantics, real = self._inputs(batch)
        self.G.eval()
        try:
            z = None
            if self.E is not None:
                self.E.eval()
                z = self.E(real)[0] if style else None
                self.E.train()
            with self._autocast():
                return self.G(semantics, z).float()
        finally:
            self.G.train()

    def set_epoch(self, epoch: int) -> None:
        """Learning rates for 0-based `epoch` (TTUR split kept)."""
        o = self.opts
        for opt, base in ((self.opt_G, o.lr_G), (self.opt_D, o.lr_D)):
            for group in opt.param_groups:
                group["lr"] = learning_rate(base, epoch, o.niter, o.niter_decay)

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": {k: v.detach().cpu() for k, v in self.D.state_dict().items()},
                "optimizer_G": self.opt_G.state_dict(), "optimizer_D": self.opt_D.state_dict()}

    def load_state_dict(self, generator: dict, encoder: dict | None, state: dict[str, Any]) -> None:
        self.G.load_state_dict(generator)
        if self.E is not None:
            if encoder is None:
                raise ValueError("the checkpoint has no style encoder but this run trains one (use_vae)")
            self.E.load_state_dict(encoder)
        self.D.load_state_dict(state["discriminator"])
        self.opt_G.load_state_dict(state["optimizer_G"])
        self.opt_D.load_state_dict(state["optimizer_D"])

    # ------------------------------------------------------------------ internals
    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        label = batch["label"].to(self.device, non_blocking=True)
        instance = batch["instance"].to(self.device, non_blocking=True) if self.cfg.use_instance else None
        semantics = semantics_tensor(label, instance, self.cfg).contiguous(memory_format=self.memory_format)
        real = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return semantics, real

    def _generate(self, semantics: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = kld = None
        if self.E_ddp is not None:
            mu, logvar = self.E_ddp(real)
            mu, logvar = mu.float(), logvar.float()
            z = reparameterize(mu, logvar)
            kld = kl_loss(mu, logvar) if torch.is_grad_enabled() else None
        return self.G_ddp(semantics, z), kld

    @staticmethod
    def _discriminate(D: nn.Module, semantics: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """Real and fake through D in one batch, as the reference does; returns (fake features, real features)."""
        both = torch.cat([torch.cat([semantics, fake.to(semantics.dtype)], 1), torch.cat([semantics, real], 1)], 0)
        outputs = D(both)
        n = fake.shape[0]
        fake_features = [[f[:n].float() for f in scale] for scale in outputs]
        real_features = [[f[n:].float() for f in scale] for scale in outputs]
        return fake_features, real_features

    def _autocast(self):
        if self.opts.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _floats(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: v.item() for k, v in losses.items()}
