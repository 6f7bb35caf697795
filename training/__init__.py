"""Training: `python -m training.train` reproduces the NVlabs SPADE/GauGAN recipe on one GPU, several, or CPU.

    options.py        TrainOptions, dataset presets with the reference defaults, the command line
    transforms.py     the reference resize / crop / flip (nearest for labels, bicubic for images)
    datasets.py       Cityscapes, ADE20K, COCO-Stuff, custom folder pairs, and the built-in procedural scenes
    discriminator.py  multiscale PatchGAN discriminator (spectral norm + instance norm)
    losses.py         hinge GAN, feature matching, VGG19 perceptual, KL
    trainer.py        models, reference initialization, TTUR optimizers, linear decay, one G and one D step
    distributed.py    torchrun / DDP set-up (NCCL + SyncBatchNorm on CUDA, gloo on CPU)
    run.py            numbered run directories, the progress line, TensorBoard, checkpoints and resume
    metrics.py        FID (Inception weights from a path), mIoU (a segmentation model, or the procedural oracle)
    train.py          the command

Depends on `gaugan_sdk` (models, labels, checkpoint format); never on `export`.
"""

__all__ = ["train"]  # the command's module; the rest are used through it (and by the tests)
