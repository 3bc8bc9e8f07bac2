"""Reading one named file out of a job's tar archive (output.tar.gz), in memory.

Nothing is extracted to disk, so a member's path cannot escape anywhere; a member larger
than the caller's bound is refused before it is read.
"""
from __future__ import annotations

import tarfile
from pathlib import Path


class ArchiveError(ValueError):
    """The archive cannot be read, or a member is over the size bound; the message says which."""


def members_named(path: Path, name: str, max_bytes: int) -> list[tuple[str, bytes]]:
    """(member path, content) of every regular file in the archive whose base name is `name`."""
    found = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive.getmembers():
                if not member.isfile() or Path(member.name).name != name:
                    continue
                if member.size > max_bytes:
                    raise ArchiveError(f"{path}: {member.name} is {member.size} bytes, over the {max_bytes} expected")
                handle = archive.extractfile(member)
                found.append((member.name, handle.read() if handle is not None else b""))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{path}: not a readable tar archive ({error})") from None
    return found
