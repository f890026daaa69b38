"""`edgesr-data photos --lomiri`: the photographs of lomiri-wallpapers-16.04/-20.04, their
licences from the Debian copyright file, the downscale factor, and the refusals.

The copyright excerpt below is written out by hand in the format of the package's
debian/copyright (DEP-5), with stanzas as they appear in lomiri-wallpapers 20.04.0-2."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesr.data.cli import main
from edgesr.data.lomiri import lomiri_licences
from edgesr.data.photos import downscale_factor

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lomiri-wallpapers

Files: warty-final-ubuntu.png
Copyright: 2004, Nathaniel McCallum <npmccallum@gentoo.org>
License: CC-BY-SA-3.0

Files: 16.04/life_by_Aitzol_Berasategi.jpg
Copyright: Aitzol Berasategi, 2018
License: CC-BY-4.0

Files: 16.04/seeding_by_Clements_Engelhardt.jpg
Copyright: Clemens Engelhardt, 2018
License: CC0-1.0

Files: 16.04/umang_by_Abhishek_Mudgal.jpg
Copyright: Abhishek Mudgal, 2018
License: CC-BY-4.0

Files: 20.04/Kleiber_by_Lukas_Baubkus.jpg
Copyright: 2021, Lukas Baubkus
License: CC-BY-SA-3.0
"""


def test_licences_are_read_per_photo_with_its_series() -> None:
    licences = lomiri_licences(COPYRIGHT)
    assert licences["life_by_Aitzol_Berasategi"] == ("16.04", "CC-BY-4.0", "Aitzol Berasategi, 2018")
    assert licences["seeding_by_Clements_Engelhardt"] == ("16.04", "CC0-1.0", "Clemens Engelhardt, 2018")
    assert licences["Kleiber_by_Lukas_Baubkus"] == ("20.04", "CC-BY-SA-3.0", "2021, Lukas Baubkus")
    assert "warty-final-ubuntu" not in licences  # a PNG render outside the series folders


@pytest.mark.parametrize(("size", "factor"), [
    ((6028, 3391), 3),   # Kleiber: ceil(6028 / 2048) = 3 -> 2010 px
    ((4352, 2448), 3),   # Bridge: ceil(4352 / 2048) = 3
    ((4096, 2304), 2),   # exactly 2 x 2048
    ((1365, 1074), 2),   # small photos still lose their JPEG blocks: at least x2
    ((2560, 3837), 2),   # portrait: the long side counts
    ((8193, 100), 5),
])
def test_downscale_brings_the_long_side_to_2048_and_is_at_least_two(size: tuple[int, int], factor: int) -> None:
    assert downscale_factor(*size) == factor


def _unpacked_package(root: Path) -> Path:
    backgrounds = root / "usr/share/backgrounds"
    backgrounds.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("life_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "umang_by_Abhishek_Mudgal"):
        cv2.imwrite(str(backgrounds / f"{name}.jpg"), rng.integers(0, 256, (60, 100, 3), np.uint8))
    doc = root / "usr/share/doc/lomiri-wallpapers-16.04"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    return root


def test_photos_go_to_train_downscaled_with_their_licences(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    package = _unpacked_package(tmp_path / "lomiri")
    assert main(["photos", str(tmp_path / "corpus"), "--lomiri", str(package)]) == 0
    train = tmp_path / "corpus/train"
    made = sorted(p.name for p in train.glob("lomiri-*.png"))
    # umang is a render: not taken
    assert made == ["lomiri-life_by_Aitzol_Berasategi.png", "lomiri-seeding_by_Clements_Engelhardt.png"]
    assert cv2.imread(str(train / made[0])).shape == (30, 50, 3)  # 100x60, downscaled x2
    assert not list((tmp_path / "corpus/val").glob("lomiri-*"))
    licences = (tmp_path / "corpus/LICENSES.md").read_text()
    assert ("| train | train/lomiri-seeding_by_Clements_Engelhardt.png | Debian lomiri-wallpapers-16.04 "
            "(downscaled x2) | CC0-1.0 | Clemens Engelhardt, 2018 |") in licences
    assert "train: 8 images" in capsys.readouterr().out  # the 6 scikit-image training photos + 2


def test_a_package_without_the_photos_is_refused_and_nothing_is_left(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "lomiri-wallpapers"
    (empty / "usr/share/backgrounds").mkdir(parents=True)
    assert main(["photos", str(tmp_path / "corpus"), "--lomiri", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds none of the Lomiri photographs" in err[0]
    assert not (tmp_path / "corpus").exists()
