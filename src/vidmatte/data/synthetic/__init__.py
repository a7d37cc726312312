"""Synthetic video matting data: figures with hair and transparent parts over moving backgrounds, with
exact ground truth.

- :mod:`.clips`: the generator (``ClipSpec``, ``generate_clip``, ``clip_seed``), built from
  :mod:`.figure` (articulated figures), :mod:`.hair` (strands), :mod:`.background` (moving
  backgrounds), :mod:`.texture` and :mod:`.raster`;
- :mod:`.folders`: a data set written to disk in the VM or VIM50 layout (``vidmatte synth``);
- :mod:`.dataset`: a torch data set that generates clips on the fly, for training.
"""
