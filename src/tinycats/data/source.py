"""Which data set a training folder holds, recorded in every checkpoint so that a published model
says what it was trained on (the model card's `datasets`) without anyone typing it again.

The two data sets tinycats makes leave a marker at the folder's root: `tinycats data download` /
`prepare` write Oxford's manifest, `tinycats data synth` writes `toy-cats.json`. Anything else is a
plain ImageFolder, named by its folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OXFORD_MANIFEST = "oxford-pet.json"
TOY_CATS_MARKER = "toy-cats.json"

OXFORD = {"source": "oxford-iiit-pet", "name": "Oxford-IIIT Pet", "url": "https://www.robots.ox.ac.uk/~vgg/data/pets/"}
TOY_CATS = {"source": "toy-cats", "name": "toy cats (procedural, rendered by tinycats)", "url": None}


def describe(root: str | Path) -> dict[str, Any]:
    """{"source", "name", "url", "folder"} for the data folder `root`."""
    root = Path(root)
    if (root / OXFORD_MANIFEST).is_file():
        found = OXFORD
    elif (root / TOY_CATS_MARKER).is_file():
        found = TOY_CATS
    else:
        found = {"source": "image-folder", "name": f"an image folder ({root.name})", "url": None}
    return {**found, "folder": root.name}


def write_toy_cats_marker(root: Path, settings: dict[str, Any]) -> None:
    (root / TOY_CATS_MARKER).write_text(json.dumps({"generator": "tinycats toy cats", **settings}, indent=1) + "\n")
