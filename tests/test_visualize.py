"""tools/visualize.py draws real, input-dependent pictures of activations, attention and masks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_visualize_writes_pictures_that_depend_on_the_image(make_config, tmp_path):
    cfg = make_config([dict(type="DFMSD", connector="conv1x1"), dict(type="RND", connector="conv1x1")])
    config = tmp_path / "kd.py"
    cfg.dump(str(config))
    pictures = []
    for index in (0, 1):
        out = tmp_path / f"vis{index}.png"
        subprocess.run([sys.executable, str(ROOT / "tools/visualize.py"), str(config), str(out), "--index",
                        str(index), "--levels", "p3", "p4"], check=True, cwd=ROOT, capture_output=True)
        pictures.append(np.asarray(Image.open(out).convert("RGB"), dtype=np.int16))
    first, second = pictures
    assert first.shape == second.shape and first.shape[0] > 200 and first.shape[1] > 800
    assert first.std() > 10, "the picture is blank"
    assert np.abs(first - second).mean() > 1.0, "the picture does not depend on the input image"
