"""Where the visual tokens and the question sit in each row of a batch.

Qwen-VL processors expand every image into t*h*w / merge^2 copies of the image token, where
(t, h, w) is its row of ``image_grid_thw`` in patches; the merged grid the decoder sees is
(h / merge, w / merge) per frame. Rows of ``image_grid_thw`` list the images of sample 0 first,
then sample 1, and so on, in order of appearance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SampleLayout:
    """One row of the batch.

    ``visual_positions`` are the sequence positions of all its visual tokens (images in order);
    image ``j`` owns ``visual_positions[image_slices[j][0]:image_slices[j][1]]``, laid out row-major
    on ``grids[j] = (h, w)`` (frames of a multi-frame image stacked along h). ``question_positions``
    are the prompt tokens after the last visual token and before the completion: positions
    ``question_span[0]`` up to (not including) ``question_span[1]``.
    """

    visual_positions: Tensor
    image_slices: tuple[tuple[int, int], ...]
    grids: tuple[tuple[int, int], ...]
    question_span: tuple[int, int]

    @property
    def n_visual(self) -> int:
        return int(self.visual_positions.numel())

    @property
    def question_positions(self) -> Tensor:
        # built on demand: only ``regions: attention`` reads them, and slicing a tensor for every row was a
        # third of the layout's cost on a GRPO batch
        return torch.arange(*self.question_span, device=self.visual_positions.device)


def image_grids(image_grid_thw: Tensor, merge_size: int) -> list[tuple[int, int]]:
    """Merged (h, w) grid of each image; frames of a t > 1 image are stacked along h."""
    grids = []
    for i, (t, h, w) in enumerate(image_grid_thw.tolist()):
        if h % merge_size or w % merge_size:
            raise ValueError(f"image_grid_thw row {i} = {(t, h, w)} is not divisible by merge size {merge_size}")
        grids.append((int(t) * int(h) // merge_size, int(w) // merge_size))
    return grids


def visual_layout(input_ids: Tensor, image_grid_thw: Tensor | None, image_token_id: int, merge_size: int,
                  prompt_lengths: Tensor | None = None) -> list[SampleLayout]:
    """Per sample: visual token positions per image with their merged grid, and the question positions.

    ``prompt_lengths[b]`` is the position where row b's completion starts (with TRL's left-padded
    prompts that is the padded prompt width for every row); without it the question runs to the end
    of the row.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B, L], got shape {tuple(input_ids.shape)}")
    batch, length = input_ids.shape
    grids = image_grids(image_grid_thw, merge_size) if image_grid_thw is not None else []
    sizes = [h * w for h, w in grids]
    is_visual = input_ids == image_token_id
    counts_t = is_visual.sum(dim=1)
    counts = counts_t.tolist()
    rows, cols = is_visual.nonzero(as_tuple=True)
    per_row = torch.split(cols, counts)
    ends = prompt_lengths.tolist() if prompt_lengths is not None else [length] * batch
    # each row's last visual position, for all rows in one gather (rows without images read nothing)
    lasts = cols[(counts_t.cumsum(0) - 1)[counts_t > 0]].tolist()

    layouts: list[SampleLayout] = []
    image = 0
    with_images = 0
    for b in range(batch):
        positions = per_row[b]
        slices: list[tuple[int, int]] = []
        sample_grids: list[tuple[int, int]] = []
        filled = 0
        while filled < counts[b]:
            if image >= len(sizes):
                raise ValueError(f"row {b} has {counts[b]} image tokens but image_grid_thw accounts for only "
                                 f"{sum(sizes)} over the whole batch")
            slices.append((filled, filled + sizes[image]))
            sample_grids.append(grids[image])
            filled += sizes[image]
            image += 1
        if filled != counts[b]:
            raise ValueError(f"row {b} has {counts[b]} image tokens, which does not match its images' grids "
                             f"{sample_grids} (merge size {merge_size})")
        if counts[b]:
            start = lasts[with_images] + 1
            with_images += 1
        else:
            start = int(ends[b])
        layouts.append(SampleLayout(positions, tuple(slices), tuple(sample_grids), (start, max(start, int(ends[b])))))
    if image != len(sizes):
        raise ValueError(f"image_grid_thw has {len(sizes)} images but the batch's image tokens fill only {image}")
    return layouts
