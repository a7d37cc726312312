"""Training progress for rank 0: a progress bar on a terminal or plain log lines, a JSON-lines log,
and TensorBoard scalars and sample images when ``tensorboard`` is installed.

``<out>/train_log.jsonl`` holds one object per logged step (``step``, ``loss``, each term, ``lr``,
``seconds_per_step``, ``clips_per_second``); the loss and each term are means over the steps since the
previous record (a term over the steps that computed it: AdaM's alternating stage logs both its matting
and its segmentation terms). On resume, lines after the checkpoint's step are dropped so that the file
describes one continuous run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

LOG_NAME = "train_log.jsonl"


class ProgressReporter:
    """Reports steps ``start + 1 ... total`` of a run.

    Args:
        out: the run folder.
        total: the run's last step.
        start: steps already done (0, or the resumed checkpoint's step).
        log_every: steps between log lines, JSON lines and scalars.
        enabled: ``False`` on ranks other than 0 (every method is then a no-op).
    """

    def __init__(self, out: Path, total: int, start: int, log_every: int, enabled: bool = True) -> None:
        self.enabled, self.total, self.log_every = enabled, total, log_every
        self._bar = None
        self._writer = None
        self._last_time, self._last_step, self._clips = time.perf_counter(), start, 0
        self._sums: dict[str, float] = {}  # loss and terms summed since the last record
        self._counts: dict[str, int] = {}
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        self.log_path = out / LOG_NAME
        _truncate_log(self.log_path, start)
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            pass
        else:
            self._writer = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1)

    def step(self, step: int, loss: float, terms: dict[str, float], lr: float, clips: int) -> None:
        """Record step ``step`` (its loss averaged over ranks) that processed ``clips`` clips in all."""
        if not self.enabled:
            return
        self._clips += clips
        for name, value in {"loss": loss, **terms}.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1
        if self._bar is not None:
            self._bar.update(1)
        if step % self.log_every and step != self.total:
            return
        now = time.perf_counter()
        elapsed, steps = now - self._last_time, max(1, step - self._last_step)
        record = {
            "step": step,
            **{name: total / self._counts[name] for name, total in self._sums.items()},
            "lr": lr,
            "seconds_per_step": elapsed / steps,
            "clips_per_second": self._clips / max(elapsed, 1e-9),
        }
        self._last_time, self._last_step, self._clips = now, step, 0
        self._sums, self._counts = {}, {}
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", clips_s=f"{record['clips_per_second']:.2f}")
        else:
            print(
                f"step {step}/{self.total} loss {record['loss']:.4f} lr {lr:.2e} "
                f"{record['seconds_per_step']:.3f} s/step {record['clips_per_second']:.2f} clips/s",
                flush=True,
            )
        if self._writer is not None:
            for name, value in record.items():
                if name != "step":
                    self._writer.add_scalar(f"train/{name}", value, step)

    def scalars(self, step: int, prefix: str, values: dict[str, float]) -> None:
        """Log named values (e.g. validation scores) at ``step``."""
        if not self.enabled:
            return
        message = " ".join(f"{k} {v:.4f}" for k, v in values.items())
        if self._bar is not None:
            self._bar.write(f"step {step} {prefix}: {message}")
        else:
            print(f"step {step} {prefix}: {message}", flush=True)
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps({"step": step, **{f"{prefix}_{k}": v for k, v in values.items()}}) + "\n")
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{prefix}/{name}", value, step)

    def images(self, step: int, frames: Tensor, alpha: Tensor, truth: Tensor) -> None:
        """TensorBoard sample of the last frame of the first clip: input, predicted and true alpha.

        Args:
            frames: ``(B, T, 3, H, W)`` in ``[0, 1]``.
            alpha, truth: ``(B, T, 1, H, W)`` in ``[0, 1]``.
        """
        if not self.enabled or self._writer is None:
            return
        size = frames.shape[-2:]
        truth = torch.nn.functional.interpolate(truth[0, -1:].float(), size, mode="bilinear")
        alpha = torch.nn.functional.interpolate(alpha[0, -1:].float(), size, mode="bilinear")
        row = torch.cat(
            [frames[0, -1].float(), alpha[0].expand(3, -1, -1), truth[0].expand(3, -1, -1)], dim=2
        )
        self._writer.add_image("sample/input_predicted_truth", row.clamp(0, 1).cpu(), step)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            self._writer.close()


def _truncate_log(path: Path, step: int) -> None:
    """Drop the log's records after ``step`` (from a run killed after its last checkpoint)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a killed process
            continue
    path.write_text("".join(line + "\n" for line in kept))
