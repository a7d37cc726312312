"""Synthetic and real data sets, compositing and augmentation.

- Synthetic clips: the folder :mod:`~vidmatte.data.synthetic` (its ``__init__`` lists its files).
- Guidance masks with segmenter errors and MSG-VIM's mask augmentations: :mod:`~vidmatte.data.guidance`.
- Compositing: :mod:`~vidmatte.io.composite`; clip-consistent augmentation: :mod:`~vidmatte.data.augment`.
- Real data: :mod:`~vidmatte.data.videomatte` (VideoMatte240K), :mod:`~vidmatte.data.vim`
  (multi-instance clips), :mod:`~vidmatte.data.ytvis` (YouTube-VIS, COCO), read through
  :mod:`~vidmatte.data.sources`; training items share :mod:`~vidmatte.data.items`.
- Benchmarks: :mod:`~vidmatte.data.benchmarks` (VM, VIM50, CRGNN layouts) and
  :mod:`~vidmatte.data.vm_builder` (rebuilding the VM benchmark).
"""
