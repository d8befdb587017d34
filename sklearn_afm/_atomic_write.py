"""Write a file in one step: complete or not at all, as a plain write would leave it.

:func:`write_atomically` writes a temporary file next to the target and
renames it into place, so that a failed or interrupted write (an exception,
Ctrl-C, SIGTERM) leaves the previous file, and no temporary one.
"""

import contextlib
import os
import secrets
import signal
import stat
import threading


def write_atomically(path, write_to):
    """Write the file ``path`` with ``write_to(binary_file)``, through a temporary file.

    The temporary file, in the same folder, is renamed over ``path`` once
    complete, so that an interrupted save never leaves a half-written file in
    its place; any failure removes it, Ctrl-C and SIGTERM included.  The file
    gets the permissions that ``open(path, "wb")`` would give it: those of the
    file it replaces, else 0o666 less the umask.  A symbolic link is written
    through, to its target.
    """
    path = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    name = os.path.join(os.path.dirname(path), f".sklearn_afm-{secrets.token_hex(8)}.tmp")
    temporary = None
    with _unwound_by_sigterm():
        try:
            # Created as open() creates files (0o666 less the umask); O_EXCL never
            # opens someone else's file.
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
            temporary = name
            with os.fdopen(handle, "wb") as out:
                write_to(out)
            if mode is not None:
                os.chmod(temporary, mode)
            os.replace(temporary, path)
            temporary = None
        finally:
            if temporary is not None:
                os.unlink(temporary)


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class _Terminated(BaseException):
    """SIGTERM arrived during a save: unwinds it, so that its temporary file is removed."""


@contextlib.contextmanager
def _unwound_by_sigterm():
    """Let a SIGTERM during the block unwind it, as Ctrl-C does, before ending the process.

    SIGTERM's default action ends the process at once, which would leave a
    save's temporary file behind.  In the main thread, while SIGTERM has that
    default action (a handler of the program's own is left to decide), the
    block runs with a handler that raises instead; once the block has cleaned
    up, the signal is sent again with its default action, so that the process
    ends as it would have.  Other threads cannot set signal handlers: there the
    block runs as it is.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum, frame):
        raise _Terminated

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
