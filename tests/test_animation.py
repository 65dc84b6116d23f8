"""GIF animations: frame count, timing, content and the run store's dispatch."""

import io

import numpy as np
import pytest
from PIL import Image

from actlab.plotting.animation import Animation, render_frame
from actlab.plotting.style import new_figure
from actlab.store import RunStore


def _frame(i: int):
    fig = new_figure(figsize=(2, 1.5), layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.axvspan(0, (i + 1) / 4, color="#d62728")  # red bar growing with i
    ax.set_xlim(0, 1)
    return fig


def test_gif_has_every_frame_with_its_duration_and_content():
    anim = Animation(_frame, n_frames=4, fps=10, dpi=40, hold_last=3)
    gif = Image.open(io.BytesIO(anim.to_gif()))
    assert gif.n_frames == 4
    durations, reds = [], []
    for i in range(4):
        gif.seek(i)
        durations.append(gif.info["duration"])
        rgb = np.asarray(gif.convert("RGB")).astype(int)
        expected = render_frame(_frame(i), 40).astype(int)
        assert rgb.shape == expected.shape
        assert np.abs(rgb - expected).max() < 40  # palette rounding only
        reds.append(((rgb[..., 0] > 150) & (rgb[..., 1] < 100)).mean())
    assert durations == [100, 100, 100, 300]
    assert np.all(np.diff(reds) > 0.2) and reds[-1] > 0.95


def test_bad_animations_are_refused():
    with pytest.raises(ValueError, match="at least one frame"):
        Animation(_frame, n_frames=0)
    with pytest.raises(ValueError, match="fps"):
        Animation(_frame, n_frames=2, fps=0)

    def varying(i):
        fig = _frame(i)
        fig.set_size_inches(2 + i, 1.5)
        return fig

    with pytest.raises(ValueError, match="differ in size"):
        Animation(varying, n_frames=2).frames()


def test_run_store_saves_an_animation_as_gif(tmp_path):
    store = RunStore(tmp_path / "run")
    path = store.save_figure("growth", Animation(_frame, n_frames=3, dpi=30))
    assert path.name == "growth.gif"
    assert Image.open(path).n_frames == 3
