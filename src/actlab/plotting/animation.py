"""Animated GIFs built from matplotlib figures, one figure per frame.

An experiment's ``figures()`` may return an :class:`Animation` beside its Figures; the run store
saves it as ``figures/NAME.gif``. Frames are drawn lazily (one Figure alive at a time), rendered
with the Agg canvas and written by Pillow with one shared 256-colour palette, so a GIF of 50
frames of a 800 x 300 px figure weighs a few hundred kB.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["Animation", "BlitRenderer", "render_frame"]


def render_frame(fig: Figure, dpi: float) -> np.ndarray:
    """``fig`` rendered as an RGB array ``(height, width, 3)`` uint8 (no cropping)."""
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class BlitRenderer:
    """Renders frames of one Figure whose static part (axes, ticks, text, data that does not
    move) is drawn once; per frame only the ``animated`` artists are redrawn on a copy of that
    background (matplotlib's blitting; ~10x faster than a full draw of a multi-panel figure).

    Update the artists' data, then call :meth:`render`.
    """

    def __init__(self, fig: Figure, animated: list, dpi: float):
        self.fig, self.animated = fig, list(animated)
        for artist in self.animated:
            artist.set_animated(True)
        fig.set_dpi(dpi)
        self.canvas = FigureCanvasAgg(fig)
        self.canvas.draw()  # everything but the animated artists
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def render(self) -> np.ndarray:
        """The current frame as an RGB array ``(height, width, 3)`` uint8."""
        self.canvas.restore_region(self.background)
        for artist in self.animated:
            self.fig.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


@dataclass(frozen=True)
class Animation:
    """A GIF of ``n_frames`` frames; ``draw(i)`` returns frame ``i`` as a Figure (a new one,
    or the same one with its artists updated: frames are rendered in order, each before the
    next ``draw`` call) or as an RGB array (e.g. from a :class:`BlitRenderer`).

    ``fps`` frames per second; the last frame is held ``hold_last`` times longer so that a
    reader sees the end state before the loop restarts.
    """

    draw: Callable[[int], Figure]
    n_frames: int
    fps: float = 8.0
    dpi: float = 72.0
    hold_last: float = 4.0

    def __post_init__(self) -> None:
        if self.n_frames < 1:
            raise ValueError(f"an animation needs at least one frame, got {self.n_frames}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")

    def frames(self) -> list[np.ndarray]:
        """Every frame as an RGB array, all of one size."""
        out = []
        for i in range(self.n_frames):
            frame = self.draw(i)
            out.append(frame if isinstance(frame, np.ndarray) else render_frame(frame, self.dpi))
        shapes = {f.shape for f in out}
        if len(shapes) != 1:
            raise ValueError(f"the frames differ in size: {sorted(shapes)}")
        return out

    def to_gif(self) -> bytes:
        """The animation as GIF bytes (looping forever)."""
        from PIL import Image

        frames = self.frames()
        # One palette for every frame (from a mosaic of a few of them): no flicker between
        # frames, and Pillow can store only what changed.
        step = max(1, len(frames) // 8)
        sample = np.concatenate(frames[::step], axis=0)
        palette = Image.fromarray(sample).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
        images = [
            Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames
        ]
        ms = round(1000 / self.fps)
        durations = [ms] * (len(images) - 1) + [round(ms * self.hold_last)]
        buffer = io.BytesIO()
        images[0].save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
            optimize=False,
            disposal=1,
        )
        return buffer.getvalue()
