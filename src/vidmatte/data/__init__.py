"""Synthetic and real data sets, compositing and augmentation.

- Synthetic clips: :mod:`~vidmatte.data.synthetic` (``generate_clip``), built from
  :mod:`~vidmatte.data.figure` (articulated figures), :mod:`~vidmatte.data.hair` (strands),
  :mod:`~vidmatte.data.background` (moving backgrounds), :mod:`~vidmatte.data.texture` and
  :mod:`~vidmatte.data.raster`; written to disk by :mod:`~vidmatte.data.synthesize`, streamed for
  training by :mod:`~vidmatte.data.synthetic_dataset`.
- Guidance masks with segmenter errors and MSG-VIM's mask augmentations: :mod:`~vidmatte.data.guidance`.
- Compositing: :mod:`~vidmatte.io.composite`; clip-consistent augmentation: :mod:`~vidmatte.data.augment`.
- Real data: :mod:`~vidmatte.data.videomatte` (VideoMatte240K), :mod:`~vidmatte.data.vim`
  (multi-instance clips), :mod:`~vidmatte.data.ytvis` (YouTube-VIS, COCO), read through
  :mod:`~vidmatte.data.sources`; training items share :mod:`~vidmatte.data.items`.
- Benchmarks: :mod:`~vidmatte.data.benchmarks` (VM, VIM50, CRGNN layouts) and
  :mod:`~vidmatte.data.vm_builder` (rebuilding the VM benchmark).
"""
