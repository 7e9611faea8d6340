"""Oxford-IIIT Pet preparation on a small fake archive in the real format, and the download path
against a local HTTP server (resume, MD5 mismatch, offline)."""

import hashlib
import http.server
import tarfile
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinycats.breeds import CAT_BREEDS, CLASS_NAMES
from tinycats.cli import main
from tinycats.data import oxford
from tinycats.data.decode import load_image
from tinycats.data.folder import DataError, build_cache, scan

HEADER = """#Image CLASS-ID SPECIES BREED ID
#ID: 1:37 Class ids
#SPECIES: 1:Cat 2:Dog
#BREED ID: 1-25:Cat 1:12:Dog
#All images with 1st letter as captial are cat images
#images with small first letter are dog images
"""
# breed -> (trainval images, test images); numbering continues from trainval into test, as in the real lists.
CATS = {"Abyssinian": (4, 2), "British_Shorthair": (3, 3), "Egyptian_Mau": (5, 2)}
DOGS = {"american_bulldog": (6, 4), "beagle": (6, 4), "german_shorthaired": (2, 1), "yorkshire_terrier": (7, 3)}
SPECIAL = {"Egyptian_Mau_1": "CMYK", "Abyssinian_2": "L", "British_Shorthair_3": "PNG"}  # as the real set has


def write_image(path: Path, name: str, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    kind = SPECIAL.get(name)
    if kind == "PNG":
        Image.fromarray(pixels).save(path, format="PNG")  # a PNG under a .jpg name
    elif kind:
        Image.fromarray(pixels).convert(kind).save(path, format="JPEG")
    else:
        Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def make_pet(root: Path) -> dict[str, list[tuple[str, str, bool]]]:
    """root/images/*.jpg and root/annotations/{list,trainval,test}.txt; returns split -> (name, breed, is_cat)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    breeds = sorted({**CATS, **DOGS}, key=str.lower)
    lists = {"train": [], "test": []}
    lines = {"train": [], "test": []}
    for breed, (n_train, n_test) in {**CATS, **DOGS}.items():
        is_cat = breed in CATS
        same_species = sorted((CATS if is_cat else DOGS), key=str.lower)
        for i in range(1, n_train + n_test + 1):
            split = "train" if i <= n_train else "test"
            name = f"{breed}_{i}"
            write_image(root / "images" / f"{name}.jpg", name, rng)
            lists[split].append((name, breed, is_cat))
            ids = f"{breeds.index(breed) + 1} {1 if is_cat else 2} {same_species.index(breed) + 1}"
            lines[split].append(f"{name} {ids}")
    write_image(root / "images" / "Abyssinian_99.jpg", "Abyssinian_99", rng)  # in no list: left out
    (root / "images" / "Abyssinian_100.mat").write_bytes(b"MATLAB")  # the real archive has a few
    Image.new("L", (4, 4)).save(root / "annotations" / "trimaps" / "Abyssinian_1.png")
    (root / "annotations" / "trainval.txt").write_text("\n".join(lines["train"]) + "\n")
    (root / "annotations" / "test.txt").write_text("\n".join(lines["test"]) + "\n")
    (root / "annotations" / "list.txt").write_text(HEADER + "\n".join(sorted(lines["train"] + lines["test"])) + "\n")
    return lists


def make_tarballs(root: Path, folder: Path) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    for part in ("images", "annotations"):
        with tarfile.open(root / f"{part}.tar.gz", "w:gz") as tar:
            tar.add(folder / part, arcname=part)
    return {name: (root / name).read_bytes() for name in oxford.RESOURCES}


@pytest.fixture
def pet(tmp_path, monkeypatch):
    """The fake data set as folders (`extracted`) and as tarballs (`archives`), registered as the official files."""
    lists = make_pet(tmp_path / "extracted")
    files = make_tarballs(tmp_path / "archives", tmp_path / "extracted")
    resources = {name: (f"http://127.0.0.1:9/{name}", hashlib.md5(data).hexdigest()) for name, data in files.items()}
    monkeypatch.setattr(oxford, "RESOURCES", resources)
    return {"root": tmp_path, "lists": lists, "files": files}


def dogs_by_breed(names):
    return Counter(name.rsplit("_", 1)[0] for name in names)


def check_layout(out: Path, pet: dict, other_per_split: int | None = None) -> None:
    """Every listed cat in its split and class folder, byte-identical; Other = dogs of the split only."""
    images = pet["root"] / "extracted" / "images"
    for split, entries in pet["lists"].items():
        cats = [name for name, _, is_cat in entries if is_cat]
        for name, breed, is_cat in entries:
            if is_cat:
                assert (out / split / breed / f"{name}.jpg").read_bytes() == (images / f"{name}.jpg").read_bytes()
        placed = {p.stem for p in (out / split).glob("*/*.jpg")} - {p.stem for p in (out / split / "Other").iterdir()}
        assert placed == set(cats)  # nothing else, nothing from the other split, not the unlisted Abyssinian_99
        assert sorted(d.name for d in (out / split).iterdir()) == sorted(CLASS_NAMES)
        other = sorted(p.name for p in (out / split / "Other").iterdir())
        dogs = {name for name, _, is_cat in entries if not is_cat}
        assert {Path(n).stem for n in other} <= dogs
        for n in other:
            assert (out / split / "Other" / n).read_bytes() == (images / n).read_bytes()
        expected = other_per_split if other_per_split is not None else round(len(cats) / len(CAT_BREEDS))
        assert len(other) == expected


def test_prepare_from_tarballs_puts_every_image_in_its_place(pet, tmp_path):
    result = oxford.prepare(tmp_path / "archives", tmp_path / "cats", other_per_split=10, progress=False)
    check_layout(tmp_path / "cats", pet, other_per_split=10)
    assert result.counts["train"]["Egyptian_Mau"] == 5 and result.counts["test"]["Other"] == 10 and not result.already
    # Other is balanced over the dog breeds: 10 over 4 breeds, german_shorthaired has only 2 in train.
    train_dogs = dogs_by_breed(p.stem for p in (tmp_path / "cats" / "train" / "Other").iterdir())
    assert train_dogs["german_shorthaired"] == 2 and sorted(train_dogs.values()) == [2, 2, 3, 3]


def test_prepare_from_folders_hard_links_the_same_layout(pet, tmp_path):
    oxford.prepare(tmp_path / "extracted", tmp_path / "linked", progress=False)  # default Other size
    check_layout(tmp_path / "linked", pet)
    oxford.prepare(tmp_path / "archives", tmp_path / "unpacked", progress=False)
    assert sorted(p.relative_to(tmp_path / "linked") for p in (tmp_path / "linked").rglob("*.jpg")) == sorted(
        p.relative_to(tmp_path / "unpacked") for p in (tmp_path / "unpacked").rglob("*.jpg")
    )
    linked = tmp_path / "linked" / "train" / "Abyssinian" / "Abyssinian_1.jpg"
    assert linked.stat().st_ino == (tmp_path / "extracted" / "images" / "Abyssinian_1.jpg").stat().st_ino


def test_other_sample_is_deterministic_balanced_and_sized(pet):
    lists = {name: (pet["root"] / "extracted" / "annotations" / name).read_text() for name in oxford.LISTS}
    first = oxford.plan(lists, other_per_split=9, seed=1)
    assert first == oxford.plan(lists, other_per_split=9, seed=1)
    assert first["train"]["Other"] != oxford.plan(lists, other_per_split=9, seed=2)["train"]["Other"]
    for split in ("train", "test"):
        assert len(first[split]["Other"]) == 9
        counts = dogs_by_breed(first[split]["Other"])
        available = Counter(breed for _, breed, is_cat in pet["lists"][split] if not is_cat)
        full = {b for b in available if counts[b] == available[b]}  # breeds that ran out
        assert max(counts.values()) - min(counts[b] for b in available if b not in full) <= 1
        assert all(counts[b] >= counts[c] for b in available if b not in full for c in full)
    with pytest.raises(DataError, match="only 21 dog images"):
        oxford.plan(lists, other_per_split=22)


def test_balanced_sample_fills_the_groups_that_have_images():
    groups = {"a": [f"a{i}" for i in range(2)], "b": [f"b{i}" for i in range(10)], "c": [f"c{i}" for i in range(10)]}
    sample = oxford.balanced_sample(groups, 15, np.random.default_rng(0))
    assert len(set(sample)) == 15 and sorted(Counter(s[0] for s in sample).values()) == [2, 6, 7]
    assert oxford.balanced_sample(groups, 0, np.random.default_rng(0)) == []


def test_second_run_does_nothing_and_changed_settings_are_refused(pet, tmp_path):
    out = tmp_path / "cats"
    oxford.prepare(tmp_path / "archives", out, progress=False)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = oxford.prepare(tmp_path / "archives", out, progress=False)
    assert again.already and {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamp
    assert oxford.download(out, cache=tmp_path / "nowhere", timeout=1, progress=False).already  # no network needed
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(DataError, match=r"prepared with --other-per-split \(default\) --seed 0: remove it"):
        oxford.prepare(tmp_path / "archives", out, seed=5, progress=False)
    next(iter((out / "test" / "Abyssinian").iterdir())).unlink()
    with pytest.raises(DataError, match="test/Abyssinian has 1 images, not 2"):
        oxford.prepare(tmp_path / "archives", out, progress=False)


def test_an_interrupted_prepare_leaves_nothing_and_the_next_run_completes(pet, tmp_path, monkeypatch):
    real_copy = oxford._copy_images

    def copy_then_fail(images, destinations, progress):
        real_copy(images, dict(list(destinations.items())[:5]), progress)
        raise KeyboardInterrupt

    monkeypatch.setattr(oxford, "_copy_images", copy_then_fail)
    with pytest.raises(KeyboardInterrupt):
        oxford.prepare(tmp_path / "archives", tmp_path / "cats", progress=False)
    assert not (tmp_path / "cats").exists() and not list(tmp_path.glob(".cats*"))
    (tmp_path / ".cats.partial" / "train").mkdir(parents=True)  # as a killed run (no cleanup) leaves it
    monkeypatch.setattr(oxford, "_copy_images", real_copy)
    oxford.prepare(tmp_path / "archives", tmp_path / "cats", progress=False)
    check_layout(tmp_path / "cats", pet)
    assert not list(tmp_path.glob(".cats*"))


def test_the_training_loader_reads_every_prepared_image(pet, tmp_path):
    out = tmp_path / "cats"
    oxford.prepare(tmp_path / "extracted", out, other_per_split=5, progress=False)
    for split in ("train", "test"):
        images = scan(out, split)
        cache = build_cache(images, 16, progress=False)
        assert cache.skipped == [] and len(cache.labels) == sum(1 for _ in (out / split).glob("*/*.jpg"))
        assert cache.class_names == list(CLASS_NAMES)
    modes = {n: Image.open(out / "train" / n.rsplit("_", 1)[0] / f"{n}.jpg").mode for n in SPECIAL}
    assert modes == {"Egyptian_Mau_1": "CMYK", "Abyssinian_2": "L", "British_Shorthair_3": "RGB"}
    assert load_image(out / "train" / "Abyssinian" / "Abyssinian_2.jpg", 8).shape == (8, 8, 3)


def test_annotations_that_disagree_are_refused():
    with pytest.raises(DataError, match="beagle_1 is listed as a cat"):
        oxford.parse_list("beagle_1 5 1 2\n", "trainval.txt")
    with pytest.raises(DataError, match="Bengal_1 is listed as a dog"):
        oxford.parse_list("Bengal_1 6 2 2\n", "test.txt")
    with pytest.raises(DataError, match="line 2: expected"):
        oxford.parse_list("# header\nBengal_1 6\n", "list.txt")


def test_missing_or_damaged_source_files_are_reported(pet, tmp_path):
    with pytest.raises(DataError, match=r"neither images/ nor images.tar.gz.*tinycats data download"):
        oxford.prepare(tmp_path / "empty", tmp_path / "cats", progress=False)
    archive = tmp_path / "archives" / "images.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"images\.tar\.gz is damaged or not the official file"):
        oxford.prepare(tmp_path / "archives", tmp_path / "cats", progress=False)
    assert archive.exists()  # the user's file is left alone
    (tmp_path / "extracted" / "images" / "Abyssinian_3.jpg").unlink()
    with pytest.raises(DataError, match=r"1 listed image\(s\) missing .*Abyssinian_3\.jpg"):
        oxford.prepare(tmp_path / "extracted", tmp_path / "cats", progress=False)
    assert not (tmp_path / "cats").exists()


def test_an_archive_that_breaks_mid_stream_leaves_nothing(pet, tmp_path, monkeypatch):
    archive = tmp_path / "archives" / "images.tar.gz"
    archive.write_bytes(archive.read_bytes()[: len(pet["files"]["images.tar.gz"]) // 2])
    url, _ = oxford.RESOURCES["images.tar.gz"]
    monkeypatch.setitem(oxford.RESOURCES, "images.tar.gz", (url, hashlib.md5(archive.read_bytes()).hexdigest()))
    with pytest.raises(DataError, match=r"images\.tar\.gz is damaged \(.*\): download it again"):
        oxford.prepare(tmp_path / "archives", tmp_path / "cats", progress=False)
    assert not (tmp_path / "cats").exists() and not list(tmp_path.glob(".cats*"))


def test_the_official_files_are_torchvisions():
    assert {name: url for name, (url, _) in oxford.RESOURCES.items()} == {
        "images.tar.gz": "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        "annotations.tar.gz": "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
    }
    assert all(len(md5) == 32 for _, md5 in oxford.RESOURCES.values())


class PetServer:
    """Serves the fake archives on 127.0.0.1 with HTTP Range support; can cut a response short."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.cut_after, self.ranges = files, [], None, True
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = server.files[self.path.lstrip("/")]
                server.requests.append(self.headers.get("Range"))
                start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") and server.ranges else 0
                if start >= len(data) > 0:
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.cut_after is not None:
                    body, server.cut_after = body[: server.cut_after], None  # the connection drops
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def server(pet, monkeypatch):
    served = PetServer(pet["files"])
    monkeypatch.setattr(oxford, "RESOURCES", {n: (f"{served.url}/{n}", md5) for n, (_, md5) in oxford.RESOURCES.items()})
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def test_download_fetches_checks_and_prepares(pet, server, tmp_path):
    result = oxford.download(tmp_path / "cats", cache=tmp_path / "cache", progress=False)
    check_layout(tmp_path / "cats", pet)
    assert not result.already and server.requests == [None, None]
    assert (tmp_path / "cache" / "images.tar.gz").read_bytes() == pet["files"]["images.tar.gz"]


def test_an_interrupted_download_resumes(pet, server, tmp_path):
    url, md5 = oxford.RESOURCES["images.tar.gz"]
    target = tmp_path / "cache" / "images.tar.gz"
    target.parent.mkdir()
    server.cut_after = 1000
    with pytest.raises(
        oxford.Unreachable, match=r"connection closed after 1000 of \d+ bytes \(the partial file .*images\.tar\.gz\.part is kept"
    ):
        oxford.fetch(url, target, md5, timeout=5, progress=False)
    assert (tmp_path / "cache" / "images.tar.gz.part").stat().st_size == 1000 and not target.exists()
    oxford.fetch(url, target, md5, timeout=5, progress=False)
    assert server.requests == [None, "bytes=1000-"]
    assert target.read_bytes() == pet["files"]["images.tar.gz"] and not target.with_suffix(".gz.part").exists()


def test_a_complete_part_file_is_finished_without_downloading(pet, server, tmp_path):
    url, md5 = oxford.RESOURCES["annotations.tar.gz"]
    target = tmp_path / "annotations.tar.gz"
    target.with_name("annotations.tar.gz.part").write_bytes(pet["files"]["annotations.tar.gz"])  # stopped before the rename
    oxford.fetch(url, target, md5, timeout=5, progress=False)
    assert target.read_bytes() == pet["files"]["annotations.tar.gz"] and server.requests == [
        f"bytes={len(pet['files']['annotations.tar.gz'])}-"
    ]


def test_a_server_that_ignores_ranges_restarts_the_download(pet, server, tmp_path):
    url, md5 = oxford.RESOURCES["annotations.tar.gz"]
    target = tmp_path / "annotations.tar.gz"
    target.with_name("annotations.tar.gz.part").write_bytes(b"stale bytes from somewhere else")
    server.ranges = False
    oxford.fetch(url, target, md5, timeout=5, progress=False)
    assert target.read_bytes() == pet["files"]["annotations.tar.gz"]


def test_a_corrupt_download_is_deleted_with_an_error(server, tmp_path):
    url, _ = oxford.RESOURCES["images.tar.gz"]
    target = tmp_path / "cache" / "images.tar.gz"
    target.parent.mkdir()
    with pytest.raises(oxford.DownloadError, match=r"arrived corrupt .* deleted: run the command again"):
        oxford.fetch(url, target, "0" * 32, timeout=5, progress=False)
    assert list(target.parent.iterdir()) == []


def test_offline_download_says_how_to_get_the_files_by_hand(pet, tmp_path, capsys):
    # pet's RESOURCES point at http://127.0.0.1:9/, a closed port.
    code = main(["data", "download", "--out", str(tmp_path / "cats"), "--cache", str(tmp_path / "c"), "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("tinycats: error: cannot download http://127.0.0.1:9/images.tar.gz")
    assert oxford.HOME_PAGE in err and f"tinycats data prepare --source DIR --out {tmp_path / 'cats'}`" in err
    assert all(url in err for url, _ in oxford.RESOURCES.values()) and f"in {tmp_path / 'c'} and run" in err
    assert not (tmp_path / "cats").exists()


def test_prepare_through_the_cli_twice(pet, tmp_path, capsys):
    args = ["data", "prepare", "--source", str(tmp_path / "archives"), "--out", str(tmp_path / "cats"), "--seed", "3"]
    assert main(args) == 0
    assert "is ready" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "already prepared" in out and "train: 12 cats in 12 breeds + 1 Other" in out
