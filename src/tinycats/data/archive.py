"""Reading wanted files out of a .tar.gz safely, for archives nobody vouches for yet.

A tarball's member names and kinds are the archive author's choice: extracting by them can write
outside the target (absolute or '..' paths), follow links, or create devices. This module never
extracts: it streams the bytes of wanted regular members to a callback, and refuses by name any
member that could be taken for a wanted file but is not a plain, relative regular file.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Callable, Container
from pathlib import Path, PurePosixPath
from typing import IO

from tinycats.errors import DataError


def read_members(archive: Path, folder: str, names: Container[str], use: Callable[[str, IO[bytes]], None], fix: str) -> None:
    """Call `use(name, file)` for each regular file folder/<name> of a .tar.gz with a wanted name, in
    one pass; a broken archive raises an error that names it and ends in `fix`.

    Nothing is extracted by the archive's own paths: only the bytes of wanted regular members are
    read, and the caller decides where they go (paths made from the annotation lists), so no member
    can write outside OUT. A member that could be taken for a wanted file (its last component is a
    wanted name, wherever it sits) but is a symbolic or hard link, a device, a FIFO or a folder, or
    whose path is absolute or climbs with '..', is refused, every such member named in one DataError
    once the pass is over: skipping it would surface later as a puzzling "missing image", and
    following a link would take another member's bytes than the name says. The official archives
    (their MD5 is checked before this) have none. Any other odd member is never opened, so it is
    ignored: refusing what is never touched would add a failure without adding safety.
    """
    bad = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if path.name not in names:
                    continue
                problem = member_problem(member, path)
                if problem:
                    bad.append(f"{member.name!r} ({problem})")
                elif path.parent.name == folder and not bad:  # once refused, the rest is only checked
                    with tar.extractfile(member) as file:
                        use(path.name, file)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{archive} is damaged ({exc}): {fix}") from exc
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(
            f"{archive} is not the official archive: {len(bad)} member(s) named like its {folder} are unsafe: {shown}; "
            f"nothing was prepared: {fix}"
        )


def member_problem(member: tarfile.TarInfo, path: PurePosixPath) -> str:
    """Why a tar member may not stand for a wanted file, or "" when it may."""
    if path.is_absolute():
        return "absolute path"
    if ".." in path.parts:
        return "path with '..'"
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return f"{'character' if member.ischr() else 'block'} device"
    if member.isfifo():
        return "FIFO"
    if member.isdir():
        return "folder"
    return "" if member.isfile() else "not a regular file"
