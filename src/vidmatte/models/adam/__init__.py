"""AdaM (Adaptive Human Matting for Dynamic Videos, Lin et al., CVPR 2023), one concept per module.

``encoder`` (MobileNetV2 + 1x1 reduction), ``projection`` (Q/K/V), ``embedding`` (Fg/Bg value
embeddings), ``memory`` (:class:`~vidmatte.models.adam.memory.MemoryBank`), ``transformer`` (the
Fg/Bg structuring network), ``decoder``, ``guided_filter`` (HD upsampling) with
``guided_kernel`` (its full-resolution step as one CPU kernel), ``geometry`` (resizing
and padding), ``model`` (the assembly) and ``factory`` (named configurations).
"""
