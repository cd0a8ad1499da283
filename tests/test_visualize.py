"""tools/visualize.py draws real, input-dependent pictures of activations, attention and masks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from kdtools.visualization import figure, weights_note

ROOT = Path(__file__).resolve().parents[1]


def test_visualize_writes_pictures_that_depend_on_the_image(make_config, tmp_path):
    cfg = make_config([dict(type="DFMSD", connector="conv1x1"), dict(type="RND", connector="conv1x1")])
    config = tmp_path / "kd.py"
    cfg.dump(str(config))
    pictures = []
    for index in (0, 1):
        out = tmp_path / f"vis{index}.png"
        result = subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), str(config), str(out), "--index",
                                 str(index), "--levels", "p3", "p4"], check=True, cwd=ROOT, capture_output=True,
                                 text=True)
        assert "no --checkpoint given" in result.stderr and "untrained" in result.stderr
        pictures.append(np.asarray(Image.open(out).convert("RGB"), dtype=np.int16))
    first, second = pictures
    assert first.shape == second.shape and first.shape[0] > 200 and first.shape[1] > 800
    assert first.std() > 10, "the picture is blank"
    assert np.abs(first - second).mean() > 1.0, "the picture does not depend on the input image"


def test_every_map_has_its_colour_bar_and_the_caption_defines_the_panels():
    attention = np.linspace(0.0, 4.0, 64).reshape(8, 8)
    maps = {"p3": {"teacher attention": attention, "dmkd: masked positions": np.eye(8)},
            "p4": {"teacher attention": 1.0 + np.eye(4)}}
    fig = figure(np.zeros((32, 32, 3)), maps, note=weights_note(None))
    images = [image for ax in fig.axes for image in ax.images]
    bars = [image.colorbar for image in images if image.colorbar is not None]
    assert len(images) == 2 + 3 and len(bars) == 3  # the image of each row, then the three maps
    assert [(bar.norm.vmin, bar.norm.vmax) for bar in bars] == [(0.0, 4.0), (0.0, 1.0), (1.0, 2.0)]
    caption = fig.texts[-1]
    text = caption.get_text()
    assert "teacher attention: softmax over positions" in text and "'<distiller>: <map>'" in text
    assert "UNTRAINED" in text and "student |F|" not in text  # only the panels drawn are defined
    fig.canvas.draw()
    box = caption.get_window_extent()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1, "the caption runs off the figure"
    assert "trained weights of epoch_3.pth" in weights_note("work/epoch_3.pth")
