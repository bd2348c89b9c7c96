"""Pretrained networks shared by the metrics and the synthesizers (the ground floor under both).

* :mod:`texbench.nets.pretrained`: :func:`~texbench.nets.pretrained.load_pretrained`, the one loader that
  resolves a network's weights file, loads it, falls back to a recorded random initialisation where
  allowed, and returns the provenance stored with every score;
* :mod:`texbench.nets.vgg19`: the VGG-19 feature extractor (Gatys' normalised Caffe weights or
  torchvision's ImageNet weights);
* :mod:`texbench.nets.backbones`: torchvision-layout AlexNet / VGG-16 / SqueezeNet ``features`` with their
  weight specs and the flax-checkpoint reader, and the tapped VGG-16 loss network of Johnson et al.;
* :mod:`texbench.nets.lpips`: the LPIPS network with its v0.1 linear calibration;
* :mod:`texbench.nets.inception`: the FID Inception-v3 (TF 2015-12-05 graph).

Nothing is imported here: ``import texbench.nets`` stays light, each network loads when its module does.
"""
