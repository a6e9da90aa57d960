"""A weight-free baseline model: colour-histogram similarity of the two halves of a ConViS pair clip.

It needs no download, so the demo and the CI can drive the real lmms-eval CLI end to end on a CPU.
It answers like an LMM ("Score: 3.4") so the normal parser and metrics are exercised.
"""

from __future__ import annotations

from typing import List

import numpy as np
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from convis_tasks.video.decode import read_frames
from convis_tasks.video.decode import count_frames


def colour_histogram(frames: np.ndarray, bins: int = 4) -> np.ndarray:
    """Normalised joint RGB histogram (``bins``^3 cells) of a stack of frames."""
    quantised = (frames.reshape(-1, 3).astype(np.int64) * bins) // 256
    cells = quantised[:, 0] * bins * bins + quantised[:, 1] * bins + quantised[:, 2]
    hist = np.bincount(cells, minlength=bins ** 3).astype(float)
    return hist / hist.sum()


def histogram_score(frames1: np.ndarray, frames2: np.ndarray, bins: int = 4) -> float:
    """Histogram intersection in [0, 1] mapped linearly onto the 1-5 scale."""
    overlap = float(np.minimum(colour_histogram(frames1, bins), colour_histogram(frames2, bins)).sum())
    return 1.0 + 4.0 * overlap


class ColourHistogramSimilarity(lmms):
    """``--model convis_colour_histogram``: scores a pair clip (or two videos) by colour-histogram overlap."""

    def __init__(self, bins: int = 4, frames_per_video: int = 8, **kwargs) -> None:
        super().__init__()
        import torch

        self._device = torch.device("cpu")  # lmms-eval's multi-process gather puts small tensors here
        self.bins = int(bins)
        self.frames_per_video = int(frames_per_video)

    @property
    def device(self):
        return self._device

    def _pair_frames(self, visuals: list) -> tuple[np.ndarray, np.ndarray]:
        if len(visuals) == 2:  # input: two_videos
            return (read_frames(visuals[0], self.frames_per_video), read_frames(visuals[1], self.frames_per_video))
        if len(visuals) != 1:
            raise ValueError(f"expected one concatenated pair clip or two videos, got {len(visuals)} visuals")

        total = count_frames(visuals[0])
        frames = read_frames(visuals[0], total)
        half = total // 2
        return frames[:half], frames[half:]

    def generate_until(self, requests: List[Instance]) -> List[str]:
        answers = []
        for context, gen_kwargs, doc_to_visual, doc_id, task, split in tqdm(
                [r.args for r in requests], disable=self.rank != 0, desc="convis_colour_histogram"):
            visuals = doc_to_visual(self.task_dict[task][split][doc_id])
            frames1, frames2 = self._pair_frames(list(visuals))
            answers.append(f"Score: {histogram_score(frames1, frames2, self.bins):.2f}")
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("convis_colour_histogram only generates scores")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("convis_colour_histogram only generates scores")
