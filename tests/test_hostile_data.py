"""The data layer against hostile input: Oxford archives with links, devices and escaping paths,
and folder arguments that cannot be used. Each is refused by name, on one line, without writing
anything outside where it was asked to. Image files: test_hostile_images.py."""

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from test_oxford import make_pet
from tinycats.cli import main
from tinycats.data import oxford

# --- helpers ---------------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, str]:
    """Everything under root (links not followed): relative path -> kind and content digest."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"link {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "special"
    return found


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


def one_line_error(code: int, err: str) -> str:
    assert code != 0 and err.startswith("tinycats: error: ") and err.count("\n") == 1, (code, err)
    return err


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, data


@pytest.fixture
def hostile_archives(tmp_path, monkeypatch):
    """build(images=..., annotations=..., drop=...) writes tmp_path/archives/{images,annotations}.tar.gz
    from the fake Pet set, without the members in `drop` and with the extra members appended, and
    registers them as the official files (so the MD5 check passes and _read_tar is what is tested)."""
    extracted = tmp_path / "extracted"
    lists = make_pet(extracted)

    def build(images=(), annotations=(), drop=()) -> Path:
        root = tmp_path / "archives"
        root.mkdir(exist_ok=True)
        resources = {}
        for part, extra in (("images", images), ("annotations", annotations)):
            path = root / f"{part}.tar.gz"
            with tarfile.open(path, "w:gz") as tar:
                for file in sorted((extracted / part).rglob("*")):
                    arcname = f"{part}/{file.relative_to(extracted / part)}"
                    if arcname not in drop:
                        tar.add(file, arcname=arcname, recursive=False)
                for info, data in extra:
                    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
            resources[path.name] = (f"http://127.0.0.1:9/{path.name}", hashlib.md5(path.read_bytes()).hexdigest())
        monkeypatch.setattr(oxford, "RESOURCES", resources)
        return root

    build.lists = lists
    return build


# --- Oxford archives ---------------------------------------------------------------------------------

JPEG = b"\xff\xd8 any bytes: these members are never decoded"
WANTED = "images/Abyssinian_1.jpg"  # a listed cat: prepare would use this member


@pytest.mark.parametrize(
    ("hostile", "problem"),
    [
        (member(WANTED, tarfile.SYMTYPE, linkname="../../outside.jpg"), "symbolic link to '../../outside.jpg'"),
        (member(WANTED, tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link to '/etc/passwd'"),
        (member(WANTED, tarfile.LNKTYPE, linkname="images/Abyssinian_2.jpg"), "hard link to 'images/Abyssinian_2.jpg'"),
        (member(WANTED, tarfile.CHRTYPE), "character device"),
        (member(WANTED, tarfile.BLKTYPE), "block device"),
        (member(WANTED, tarfile.FIFOTYPE), "FIFO"),
        (member(WANTED, tarfile.DIRTYPE), "folder"),
        (member("../Abyssinian_1.jpg", data=JPEG), "path with '..'"),
        (member("/abs/images/Abyssinian_1.jpg", data=JPEG), "absolute path"),
        (member("images/../../Abyssinian_1.jpg", data=JPEG), "path with '..'"),
    ],
    ids=["symlink-up", "symlink-abs", "hardlink", "chardev", "blockdev", "fifo", "dir", "dotdot", "absolute", "inner-dotdot"],
)
def test_a_wanted_member_that_is_a_link_device_or_escapes_is_refused_by_name(
    hostile_archives, tmp_path, capsys, hostile, problem
):
    info, _ = hostile
    archives = hostile_archives(images=[hostile], drop={WANTED})
    before = tree(tmp_path)
    code, err = run_cli(["data", "prepare", "--source", str(archives), "--out", str(tmp_path / "cats")], capsys)
    one_line_error(code, err)
    assert f"{info.name!r} ({problem})" in err
    assert "images.tar.gz is not the official archive: 1 member(s)" in err and "download it again" in err
    assert tree(tmp_path) == before  # no OUT, no staging folder, nothing beside or above it


def test_an_annotations_member_that_is_a_link_or_escapes_is_refused(hostile_archives, tmp_path, capsys):
    archives = hostile_archives(
        annotations=[
            member("annotations/list.txt", tarfile.SYMTYPE, linkname="/etc/passwd"),
            member("../trainval.txt", data=b"Abyssinian_1 1 1 1\n"),
        ],
        drop={"annotations/list.txt", "annotations/trainval.txt"},
    )
    before = tree(tmp_path)
    code, err = run_cli(["data", "prepare", "--source", str(archives), "--out", str(tmp_path / "cats")], capsys)
    one_line_error(code, err)
    assert "2 member(s)" in err and "'annotations/list.txt' (symbolic link to '/etc/passwd')" in err
    assert "'../trainval.txt' (path with '..')" in err
    assert tree(tmp_path) == before


def test_odd_members_nobody_asked_for_are_never_opened(hostile_archives, tmp_path, capsys):
    """Links, devices and escaping paths under names that are in no list are ignored: nothing reads
    them, nothing is written for them, and the preparation succeeds as with the clean archive."""
    archives = hostile_archives(
        images=[
            member("../evil.jpg", data=JPEG),
            member("/abs/images/x.jpg", data=JPEG),
            member("images/../../x.jpg", data=JPEG),
            member("images/link.jpg", tarfile.SYMTYPE, linkname="/etc/passwd"),
            member("images/hard.jpg", tarfile.LNKTYPE, linkname="images/Abyssinian_2.jpg"),
            member("images/dev.jpg", tarfile.CHRTYPE),
            member("images/fifo.jpg", tarfile.FIFOTYPE),
        ]
    )
    before = tree(tmp_path)
    out = tmp_path / "cats"
    assert main(["data", "prepare", "--source", str(archives), "--out", str(out)]) == 0
    added = set(tree(tmp_path)) - set(before)
    assert added and all(path == "cats" or path.startswith("cats/") for path in added)
    assert {k: v for k, v in tree(tmp_path).items() if k in before} == before
    listed = {name for entries in hostile_archives.lists.values() for name, _, _ in entries}
    assert {p.stem for p in out.rglob("*.jpg")} <= listed and not (tmp_path.parent / "evil.jpg").exists()
    assert all(p.is_file() and not p.is_symlink() for p in out.rglob("*.jpg"))


def test_list_names_that_are_paths_are_refused(tmp_path, capsys):
    """An image name becomes OUT/split/Class/<name>.jpg: a list naming '../../evil_1' would write
    outside OUT, so the annotations are refused before anything is made."""
    make_pet(tmp_path / "extracted")
    annotations = tmp_path / "extracted" / "annotations"
    for name in ("list.txt", "trainval.txt"):
        with open(annotations / name, "a") as f:
            f.write("../../evil_1 5 2 1\n")
    before = tree(tmp_path)
    code, err = run_cli(["data", "prepare", "--source", str(tmp_path / "extracted"), "--out", str(tmp_path / "cats")], capsys)
    assert "list.txt line" in one_line_error(code, err) and "'../../evil_1' is not a plain image name" in err
    assert tree(tmp_path) == before


def test_lists_that_are_not_text_are_refused(tmp_path, capsys):
    make_pet(tmp_path / "extracted")
    (tmp_path / "extracted" / "annotations" / "test.txt").write_bytes(b"\xff\xfe\x00binary")
    code, err = run_cli(["data", "prepare", "--source", str(tmp_path / "extracted"), "--out", str(tmp_path / "cats")], capsys)
    assert "test.txt is not text" in one_line_error(code, err) and not (tmp_path / "cats").exists()


def test_a_damaged_manifest_is_one_line(tmp_path, capsys):
    out = tmp_path / "cats"
    out.mkdir()
    (out / oxford.MANIFEST).write_text("{not json")
    code, err = run_cli(["data", "prepare", "--source", str(tmp_path), "--out", str(out)], capsys)
    assert f"{out / oxford.MANIFEST} is damaged" in one_line_error(code, err) and f"remove {out}" in err


# --- folder arguments that cannot be used ----------------------------------------------------------


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("a file, not a folder")
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data", "validate", "{missing}"], "data directory {missing} does not exist: create toy cats with"),
        (["data", "validate", "{file}"], "data directory {file} is not a folder: pass the folder that holds train/"),
        (["data", "synth", "{file}", "--per-class", "1", "--test-per-class", "0"], "{file} is a file, not a folder"),
        (["data", "synth", "{file}/sub", "--per-class", "1"], "cannot create {file}/sub: {file} is a file, not a folder"),
        (["data", "prepare", "--source", "{tmp}", "--out", "{file}"], "{file} exists and was not made by"),
        (["data", "prepare", "--source", "{tmp}", "--out", "{file}/cats"], "cannot create --out {file}/cats: {file} is a file"),
        (["data", "prepare", "--source", "{file}", "--out", "{tmp}/cats"], "--source {file} is not a folder"),
        (["data", "prepare", "--source", "{missing}", "--out", "{tmp}/cats"], "{missing} does not exist, so it has neither"),
        (["data", "download", "--out", "{file}/cats", "--cache", "{tmp}/cache"], "cannot create --out {file}/cats"),
        (["data", "download", "--out", "{tmp}/cats", "--cache", "{file}"], "cannot use {file} as the download cache"),
        (["data", "download", "--out", "{tmp}/cats", "--timeout", "0"], "--timeout must be a positive number"),
        (["data", "validate", "{tmp}", "--workers", "-1"], "--workers must be at least 1"),
        (["data", "synth", "{tmp}/toy", "--image-size", "8"], "--image-size must be 16 to 256 px, not 8"),
        (["data", "synth", "{tmp}/toy", "--test-per-class", "-1"], "--test-per-class must be >= 0, not -1"),
    ],
    ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None,
)
def test_unusable_folder_arguments_are_one_line_and_write_nothing(tmp_path, a_file, capsys, args, expected):
    names = {"missing": tmp_path / "nowhere", "file": a_file, "tmp": tmp_path}
    before = tree(tmp_path)
    code, err = run_cli([a.format(**names) for a in args], capsys)
    assert expected.format(**names) in one_line_error(code, err)
    assert tree(tmp_path) == before


def test_synth_into_a_folder_whose_train_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "train").write_text("in the way")
    before = tree(tmp_path)
    code, err = run_cli(["data", "synth", str(tmp_path / "toy"), "--per-class", "1", "--workers", "1"], capsys)
    assert f"cannot write toy cats to {tmp_path / 'toy'}: " in one_line_error(code, err) and "Not a directory" in err
    assert tree(tmp_path) == before
