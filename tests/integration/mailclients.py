"""Running real mail clients from the tests: mutt needs a terminal, so it
runs in a pseudo-terminal with a bounded wait."""
import os
import pty
import select
import time


def run_mutt(muttrc, home, push, timeout=30):
    """Runs `mutt -n -F muttrc -e "push PUSH"` in a pseudo-terminal with
    HOME=home and returns (exit status, everything it drew)."""
    return run_in_pty(["mutt", "-n", "-F", muttrc, "-e", "push " + push],
                      home, timeout)


def run_in_pty(argv, home, timeout=30, cwd=None):
    """Runs argv in a pseudo-terminal with HOME=home (in cwd when given)
    and returns (exit status, everything it drew). The child is reaped
    whatever happens; one still running after timeout seconds is
    killed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm", HOME=home)
        if cwd:
            os.chdir(cwd)
        os.execvp(argv[0], argv)
    out, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child is gone
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    return status, out
