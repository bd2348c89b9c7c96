"""Image operations shared by the metrics and the synthesizers (the ground floor under both).

* :mod:`texbench.ops.color`: luma/luminance and YIQ conversions;
* :mod:`texbench.ops.resize`: the antialiased bicubic resize, the ``sr4`` task's ×4 operator and the
  bilinear pyramid down-sampler of the patch methods;
* :mod:`texbench.ops.filters`: Gaussian windows;
* :mod:`texbench.ops.patches`: patch extraction, aggregation and exact nearest-patch search;
* :mod:`texbench.ops.gram`: Gram matrices, the Gram (style) loss and its layer weights;
* :mod:`texbench.ops.distortion`: the pure PSNR.

Functions take and return tensors; nothing here holds weights or state.
"""
