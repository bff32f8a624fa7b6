"""Opening a photo file without ever blocking, and Pillow's optional HEIF plugin, for every reader.

Only regular files are read. A named pipe (FIFO) blocks ``open()`` until a writer comes, a socket
cannot be opened, and a device (a link to /dev/zero) never ends: any of them dropped into a watched
folder would stop intake for good. So the type is checked before opening (``stat``, following
symbolic links unless told not to), the file is opened with ``O_NONBLOCK`` (a FIFO then opens at
once instead of waiting) and the opened descriptor is checked again with ``fstat``, since the path
may have been swapped for something else between the two.
"""

from __future__ import annotations

import functools
import io
import os
import stat

# What a file is, by its type bits, in the words a rejection uses.
_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
)

# Added to open()'s own flags: a FIFO opens at once instead of waiting for a writer, and a terminal
# device does not become the daemon's controlling terminal.
_EXTRA_FLAGS = os.O_NONBLOCK | os.O_NOCTTY


class NotRegularFile(OSError):
    """The path is not a regular file (a FIFO, socket, device, folder); ``reason`` says which."""

    def __init__(self, mode: int) -> None:
        self.mode = mode
        self.kind = file_kind(mode)
        self.reason = f"not a regular file but {self.kind}; only ordinary photo files are read"
        super().__init__(self.reason)


def file_kind(mode: int) -> str:
    """A file's type in words ("a named pipe (FIFO)", ...); "a regular file" for a regular file."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "a special file")


def require_regular(st: os.stat_result) -> None:
    """Raise NotRegularFile unless ``st`` describes a regular file."""
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(st.st_mode)


def open_photo(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> io.BufferedReader:
    """The file at ``path``, opened for reading in binary mode, only if it is a regular file.

    Raises NotRegularFile for anything else, OSError when it cannot be opened. Never blocks: a
    FIFO put in place between the check and the open is opened non-blocking and refused by the
    ``fstat`` of what was actually opened. With ``follow_symlinks=False`` a symbolic link (even one
    that appears after the caller looked) is refused, by the kernel if need be (``O_NOFOLLOW``).
    """
    require_regular(os.stat(path, follow_symlinks=follow_symlinks))
    extra = _EXTRA_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW)

    def opener(name: str, flags: int) -> int:
        return os.open(name, flags | extra)

    handle = open(path, "rb", opener=opener)  # noqa: SIM115 - returned to the caller, who closes it
    try:
        fd = handle.fileno()
        require_regular(os.fstat(fd))
        # Reads of a regular file never wait anyway; blocking mode keeps network file systems from
        # answering EAGAIN.
        os.set_blocking(fd, True)
    except BaseException:
        handle.close()
        raise
    return handle


@functools.cache
def heif_support() -> bool:
    """Whether the optional pillow-heif plugin is installed; registers it with Pillow (once) if so.

    Every reader that hands a file to Pillow calls this first, so HEIC photos open the same way in
    intake, preparation, ``preview`` and ``retry``.
    """
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True
