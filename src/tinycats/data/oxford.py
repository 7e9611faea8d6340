"""Oxford-IIIT Pet -> OUT/train/<Class>/ and OUT/test/<Class>/: the 12 cat breeds, plus "Other", a
balanced sample of the dog photos, on the official trainval/test split (never a split of our own).

The two archives are fetched with a resumable download (a `.part` file continued with an HTTP Range
request, renamed only once its MD5 matches), or read from files the user already has (the tarballs,
or their extracted `images/` and `annotations/` folders). Cat or dog is the species column of the
annotation lists, checked against the naming convention (capitalised cat breeds, lower-case dogs).
The JPEGs are copied (hard-linked when possible) byte for byte under their original names: the
training loader decodes whatever they are (CMYK, greyscale, a PNG named .jpg).

The prepared folder is built next to OUT, a manifest is written last and the folder is renamed into
place, so OUT either is complete or does not exist; a second run finds the manifest and does nothing.

Hostile input cannot write outside OUT: files are only ever written to paths made from image names
that must be plain names (letters, digits, _ and -), archive members are streamed, never extracted
by their own paths (see data/archive.py), and a --out, --source or --cache that cannot be used is one
DataError line before anything is downloaded or written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO

import numpy as np
from torchvision.datasets import OxfordIIITPet
from torchvision.datasets.utils import calculate_md5, check_integrity
from tqdm.auto import tqdm

from tinycats.breeds import CAT_BREEDS, CLASS_NAMES, OTHER
from tinycats.data.archive import read_members
from tinycats.data.source import OXFORD_MANIFEST
from tinycats.errors import DataError, DownloadError, Unreachable
from tinycats.runtime import cache_dir

HOME_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
# file name -> (url, md5): "images.tar.gz" and "annotations.tar.gz", as torchvision lists them.
RESOURCES: dict[str, tuple[str, str]] = {url.rsplit("/", 1)[1]: (url, md5) for url, md5 in OxfordIIITPet._RESOURCES}
SPLITS = {"train": "trainval.txt", "test": "test.txt"}  # our split -> the official list
LISTS = (*SPLITS.values(), "list.txt")
MANIFEST = OXFORD_MANIFEST
NETWORK_ERRORS = (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # an image name from the lists: no '/', '\\', '..' or leading '.'
MAX_LIST_BYTES = 16 << 20  # the real list.txt is ~240 kB


@dataclass(frozen=True)
class Entry:
    name: str  # file name without extension, e.g. "Abyssinian_100"
    breed: str  # "Abyssinian", "american_bulldog"
    is_cat: bool


@dataclass
class Prepared:
    out: Path
    counts: dict[str, dict[str, int]]  # split -> class -> images
    already: bool  # True when OUT was complete and nothing was done


def default_cache() -> Path:
    return cache_dir() / "oxford-iiit-pet"


def download(
    out: str | Path = "data/cats",
    cache: str | Path | None = None,
    other_per_split: int | None = None,
    seed: int = 0,
    timeout: float = 30.0,
    progress: bool = True,
) -> Prepared:
    """Fetch both archives into `cache` (kept, so preparing again needs no download), then prepare."""
    out, settings = Path(out), _settings(other_per_split, seed)
    counts = _prepared_counts(out, settings)
    if counts is not None:
        return Prepared(out, counts, already=True)
    cache = Path(cache) if cache else default_cache()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise DataError(f"cannot use {cache} as the download cache ({exc.strerror or exc}): choose another --cache") from exc
    try:
        for filename, (url, md5) in RESOURCES.items():
            fetch(url, cache / filename, md5, timeout, progress)
    except Unreachable as exc:
        urls = " and ".join(url for url, _ in RESOURCES.values())
        raise Unreachable(
            f"{exc}. Offline? On a connected machine fetch {urls} (see {HOME_PAGE}), then either put both files "
            f"in {cache} and run this command again (their MD5s are checked), or put them in any folder DIR "
            f"and run `tinycats data prepare --source DIR --out {out}`"
        ) from exc
    return prepare(cache, out, other_per_split, seed, progress)


def fetch(url: str, path: Path, md5: str, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download `url` to `path` through `path.part`, resuming a previous partial download."""
    if check_integrity(path, md5):
        return path
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "tinycats", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            if response.status != 206 or not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                have = 0  # the server sent the whole file: start again
            length = int(response.headers.get("Content-Length") or 0)
            bar = tqdm(total=have + length or None, initial=have, unit="B", unit_scale=True, desc=path.name, disable=not progress)
            received = 0
            with open(part, "ab" if have else "wb") as f, bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if received < length:  # urllib ends a cut-off body quietly
                raise ConnectionError(f"the connection closed after {received} of {length} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416: nothing left past `have`, the part may be complete
            raise Unreachable(_broken_off(url, exc, part)) from exc
    except NETWORK_ERRORS as exc:
        raise Unreachable(_broken_off(url, exc, part)) from exc
    if calculate_md5(part) != md5:
        part.unlink()
        raise DownloadError(f"{url} arrived corrupt (its MD5 is not {md5}); the file was deleted: run the command again")
    part.replace(path)
    return path


def _broken_off(url: str, exc: Exception, part: Path) -> str:
    reason = getattr(exc, "reason", None) or exc
    kept = f" (the partial file {part} is kept and resumes next time)" if part.exists() and part.stat().st_size else ""
    return f"cannot download {url}: {reason}{kept}"


def prepare(
    source: str | Path, out: str | Path = "data/cats", other_per_split: int | None = None, seed: int = 0, progress: bool = True
) -> Prepared:
    """Lay out OUT from SOURCE: the two tarballs, or their extracted images/ and annotations/ folders."""
    source, out, settings = Path(source), Path(out), _settings(other_per_split, seed)
    counts = _prepared_counts(out, settings)
    if counts is not None:
        return Prepared(out, counts, already=True)
    if source.exists() and not source.is_dir():
        raise DataError(
            f"--source {source} is not a folder: pass the folder that holds {' and '.join(RESOURCES)} "
            "(or their extracted images/ and annotations/ folders)"
        )
    images, annotations = (_locate(source, part) for part in ("images", "annotations"))
    layout = plan(_read_lists(annotations), other_per_split, seed)
    staging = out.parent / f".{out.name}.partial"
    if staging.is_symlink() or staging.is_file():  # never build through a link planted there
        staging.unlink()
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run
    destinations = {}
    for split, classes in layout.items():
        for class_name, names in classes.items():
            (staging / split / class_name).mkdir(parents=True)
            destinations.update({f"{name}.jpg": staging / split / class_name / f"{name}.jpg" for name in names})
    try:
        _copy_images(images, destinations, progress)
        missing = sorted(name for name, path in destinations.items() if not path.exists())
        if missing:
            example = ", ".join(missing[:3])
            raise DataError(f"{len(missing)} listed image(s) missing from {images} (e.g. {example}): get the full images archive")
    except BaseException:  # Ctrl-C included: leave no half-made folder behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = {split: {c: len(names) for c, names in classes.items()} for split, classes in layout.items()}
    _write_json(staging / MANIFEST, {**settings, "counts": counts})
    if out.is_dir():
        out.rmdir()  # empty (checked by _prepared_counts)
    staging.rename(out)
    return Prepared(out, counts, already=False)


def _settings(other_per_split: int | None, seed: int) -> dict:
    if other_per_split is not None and other_per_split < 0:
        raise DataError(f"--other-per-split must be >= 0, not {other_per_split}")
    return {"data_set": "Oxford-IIIT Pet", "other_per_split": other_per_split, "seed": seed}


def _prepared_counts(out: Path, settings: dict) -> dict[str, dict[str, int]] | None:
    """The counts when OUT is already prepared with these settings; None when OUT is free to use
    (then it can be made: no file in the way of it or of its parent folders, and they are writable)."""
    if not (out / MANIFEST).is_file():
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise DataError(f"{out} exists and was not made by `tinycats data prepare`: remove it or choose another --out")
        if out.is_symlink():
            raise DataError(f"--out {out} is a symbolic link: pass the folder it points to, or another --out")
        _check_can_create(out)
        return None
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        recorded = {k: manifest.get(k) for k in settings}
        counts = {
            split: {str(class_name): int(n) for class_name, n in classes.items()}
            for split, classes in manifest["counts"].items()
            if split in SPLITS
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # not JSON, or not our manifest's shape
        raise DataError(f"{out / MANIFEST} is damaged ({exc}): remove {out} and run again") from exc
    if recorded != settings:
        other = recorded["other_per_split"]
        raise DataError(
            f"{out} was prepared with --other-per-split {'(default)' if other is None else other} --seed {recorded['seed']}: "
            "remove it to prepare it with other settings"
        )
    for split, classes in counts.items():
        for class_name, expected in classes.items():
            folder = out / split / class_name  # only the known class folders are looked into
            found = sum(1 for _ in folder.glob("*.jpg")) if class_name in CLASS_NAMES and folder.is_dir() else 0
            if found != expected:
                raise DataError(f"{out}/{split}/{class_name} has {found} images, not {expected}: remove {out} and run again")
    return counts


def _check_can_create(out: Path) -> None:
    """A DataError when OUT could not be made: a file where a parent folder should be, or no write permission."""
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"cannot create --out {out}: {parent} is a file, not a folder; choose another --out")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise DataError(f"cannot create --out {out}: {parent} is not writable; choose another --out")
            return
        if parent.is_symlink():  # a dangling link: mkdir would fail on it
            raise DataError(f"cannot create --out {out}: {parent} is a broken symbolic link; choose another --out")


def parse_list(text: str, source: str) -> list[Entry]:
    """Lines `Abyssinian_100 1 1 1`: name, class id (1-37), species (1 cat, 2 dog), breed id; `#` comments."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or line.startswith("#"):
            continue
        if len(fields) != 4 or fields[2] not in ("1", "2"):
            raise DataError(f"{source} line {number}: expected 'NAME CLASS_ID SPECIES(1 cat, 2 dog) BREED_ID', got {line!r}")
        name, is_cat = fields[0], fields[2] == "1"
        if not NAME.fullmatch(name):  # it becomes a file name under OUT: no paths
            raise DataError(f"{source} line {number}: {name!r} is not a plain image name (letters, digits, _ and -)")
        breed = name.rsplit("_", 1)[0]
        if is_cat != breed[:1].isupper():
            kind = "cat (species 1)" if is_cat else "dog (species 2)"
            raise DataError(f"{source} line {number}: {name} is listed as a {kind}, which disagrees with its capitalisation")
        if is_cat and breed not in CAT_BREEDS:
            raise DataError(f"{source} line {number}: {breed} is not one of the 12 Oxford cat breeds ({', '.join(CAT_BREEDS)})")
        entries.append(Entry(name, breed, is_cat))
    return entries


def plan(lists: dict[str, str], other_per_split: int | None = None, seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """split -> class (CLASS_NAMES order) -> image names. By default "Other" gets as many dogs per split
    as the split's mean cat breed has images."""
    listed = {e.name: e for e in parse_list(lists["list.txt"], "list.txt")}
    layout, owner = {}, {}
    for index, (split, filename) in enumerate(SPLITS.items()):
        classes: dict[str, list[str]] = {breed: [] for breed in CAT_BREEDS}
        dogs = defaultdict(list)
        for entry in parse_list(lists[filename], filename):
            if listed.get(entry.name) != entry:
                raise DataError(f"{filename} lists {entry.name} unlike list.txt does: the annotations are inconsistent")
            if owner.setdefault(entry.name, split) != split:
                raise DataError(f"{entry.name} is in both {SPLITS[owner[entry.name]]} and {filename}: the lists are inconsistent")
            (classes[entry.breed] if entry.is_cat else dogs[entry.breed]).append(entry.name)
        n = other_per_split if other_per_split is not None else round(sum(map(len, classes.values())) / len(CAT_BREEDS))
        classes[OTHER] = balanced_sample(dogs, n, np.random.default_rng([seed, index]))
        layout[split] = {c: sorted(classes[c]) for c in CLASS_NAMES}
    return layout


def balanced_sample(groups: dict[str, list[str]], n: int, rng: np.random.Generator) -> list[str]:
    """`n` names spread as evenly as the groups allow: one at a time to the group with the fewest so far
    that has names left (so counts differ by at most one, except groups that ran out). Which names,
    and which groups get one more, depend only on the rng."""
    available = sum(map(len, groups.values()))
    if n > available:
        raise DataError(f"cannot sample {n} 'Other' images: the split has only {available} dog images")
    pools = {}
    for g in sorted(groups):
        names = sorted(groups[g])
        pools[g] = [names[i] for i in rng.permutation(len(names))]
    order = [sorted(groups)[i] for i in rng.permutation(len(groups))]
    take = dict.fromkeys(order, 0)
    for _ in range(n):
        take[min((g for g in order if take[g] < len(pools[g])), key=take.get)] += 1
    return [name for g in order for name in pools[g][: take[g]]]


def _locate(source: Path, part: str) -> Path:
    """SOURCE/images/ or SOURCE/images.tar.gz (also under oxford-iiit-pet/, where torchvision puts them)."""
    for root in (source, source / "oxford-iiit-pet"):
        if (root / part).is_dir():
            return root / part
        if (root / f"{part}.tar.gz").is_file():
            archive = root / f"{part}.tar.gz"
            url, md5 = RESOURCES[archive.name]
            if not check_integrity(archive, md5):
                raise DataError(f"{archive} is damaged or not the official file (MD5 is not {md5}): download it again from {url}")
            return archive
    has = "has" if source.is_dir() else "does not exist, so it has"
    raise DataError(
        f"{source} {has} neither {part}/ nor {part}.tar.gz: download {' and '.join(RESOURCES)} from {HOME_PAGE} "
        "into it (or run `tinycats data download`)"
    )


def _read_lists(annotations: Path) -> dict[str, str]:
    if annotations.is_dir():
        missing = [name for name in LISTS if not (annotations / name).is_file()]
        if missing:
            raise DataError(f"{annotations} lacks {', '.join(missing)}: extract the full annotations archive there")
        lists = {}
        for name in LISTS:
            with open(annotations / name, "rb") as file:
                lists[name] = _read_list(annotations / name, file)
        return lists
    lists = {}

    def keep(name: str, file: IO[bytes]) -> None:
        lists[name] = _read_list(f"{annotations}: annotations/{name}", file)

    read_members(annotations, "annotations", LISTS, keep, _download_hint(annotations))
    if len(lists) != len(LISTS):
        raise DataError(f"{annotations} lacks annotations/{', '.join(sorted(set(LISTS) - set(lists)))}: download it again")
    return lists


def _read_list(source: object, file: IO[bytes]) -> str:
    data = file.read(MAX_LIST_BYTES + 1)
    if len(data) > MAX_LIST_BYTES:
        raise DataError(f"{source} is over {MAX_LIST_BYTES >> 20} MiB, not an Oxford-IIIT Pet list: get the official annotations")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{source} is not text ({exc}): get the official annotations") from exc


def _copy_images(images: Path, destinations: dict[str, Path], progress: bool) -> None:
    """Place every wanted file (by its name in images/): hard-link or copy from a folder, stream from a tarball."""
    bar = tqdm(total=len(destinations), desc="preparing", unit="img", disable=not progress)
    if images.is_dir():
        for name, dest in destinations.items():
            if (images / name).is_file():
                try:
                    os.link(images / name, dest)
                except OSError:  # another file system, or links not supported
                    shutil.copyfile(images / name, dest)
                bar.update()
    else:

        def write(name: str, file: IO[bytes]) -> None:
            with open(destinations[name], "wb") as dst:
                shutil.copyfileobj(file, dst)
            bar.update()

        read_members(images, "images", destinations, write, _download_hint(images))
    bar.close()


def _download_hint(archive: Path) -> str:
    return f"download it again from {RESOURCES.get(archive.name, (HOME_PAGE, ''))[0]}"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
