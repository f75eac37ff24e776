"""What this machine can start: the rank processes of `train --ranks N` that its memory
and process limits leave room for (check_room), read from /proc and from this process's
cgroups (a container's or a systemd slice's limits), before mpiexec starts any."""
from __future__ import annotations

import os

from .errors import UserError


# The least memory a rank holds of its own (resident, not shared with the other ranks)
# once it trains: the interpreter, numpy, mpi4py with MPICH, recurrent's kernels and a
# model of the smallest size. Set below what a rank of a tiny run holds, so that a count
# refused for memory could not start whatever the model; a count let through may still
# run short of memory for a large model or data set (a killed rank is reported as such).
RANK_MEMORY_FLOOR = 32 << 20


def _keyed_int(path: str, key: str) -> int | None:
    """The number after ``key`` on its line of a file of "key value" lines (/proc/meminfo's
    "MemAvailable:  1024 kB", a cgroup's memory.stat), or None where it cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0].rstrip(":") == key:
                    return int(fields[1])
    except (OSError, ValueError):
        pass
    return None


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (what new processes can get without
    swapping others out), or None where it is not known."""
    kib = _keyed_int("/proc/meminfo", "MemAvailable")
    return None if kib is None else kib * 1024


def _read_int(path: str) -> int | None:
    """The number a file starts with, or None where it cannot be read (or is no number:
    a cgroup limit's "max")."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tasks_of(uid: int) -> int:
    """The processes' threads whose real user is ``uid``: what Linux counts against
    RLIMIT_NPROC (processes that end while they are read are left out)."""
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return count


def _process_room() -> list[tuple[int, str]]:
    """(processes that can still start, which limit says so) for each limit of this
    machine that is known: the system's (pid_max and threads-max less the threads
    running, from /proc/loadavg) and, but for root, whom it does not bind, the user's
    RLIMIT_NPROC (ulimit -u) less the user's threads."""
    rooms = []
    limits = [n for n in (_read_int("/proc/sys/kernel/pid_max"),
                          _read_int("/proc/sys/kernel/threads-max")) if n]
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        running = None
    if limits and running is not None:
        rooms.append((max(0, min(limits) - running),
                      f"the system's limit of {min(limits):,} processes and threads "
                      f"(/proc/sys/kernel) leaves room for {max(0, min(limits) - running):,} "
                      f"more"))
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except (ImportError, AttributeError, OSError, ValueError):
        soft = None
    if (soft is not None and soft != resource.RLIM_INFINITY and os.getuid() != 0
            and os.path.isdir("/proc")):
        left = max(0, soft - _tasks_of(os.getuid()))
        rooms.append((left, f"the user's process limit (ulimit -u) of {soft:,} leaves room "
                            f"for {left:,} more"))
    return rooms


# Where this process's cgroups are read: /proc/self/cgroup names them, under the cgroup
# file system mounted at CGROUP_ROOT (the v2 hierarchy itself, or one directory per v1
# controller). Module values so that a test can point them at a tree of its own.
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"

# A v1 limit at least this large is no limit: an unlimited memory.limit_in_bytes reads
# as the largest page-aligned 63-bit count (9223372036854771712).
_CGROUP_UNLIMITED = 1 << 62


def _cgroup_dirs(controller: str) -> list[tuple[str, str]]:
    """(directory, "v1" or "v2") of each cgroup of this process that holds
    ``controller``'s files, from its own up to the hierarchy's root: a cgroup's limit
    binds all below it, so an ancestor's can be the one that binds. Directories that do
    not exist are skipped (in a container the path /proc/self/cgroup names is often not
    under the container's own mount, whose root is then the container's cgroup)."""
    try:
        with open(PROC_CGROUP) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    dirs = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3 or not fields[2].startswith("/"):
            continue
        if fields[0] == "0" and fields[1] == "":
            base, version = CGROUP_ROOT, "v2"
        elif controller in fields[1].split(","):
            base, version = os.path.join(CGROUP_ROOT, controller), "v1"
        else:
            continue
        parts = [p for p in fields[2].split("/") if p]
        for depth in range(len(parts), -1, -1):
            path = os.path.join(base, *parts[:depth])
            if os.path.isdir(path):
                dirs.append((path, version))
    return dirs


def _cgroup_limit(path: str) -> int | None:
    """The limit in a cgroup file ("max", or a v1 count too large to bind: None), or
    None where it cannot be read."""
    limit = _read_int(path)
    return limit if limit is not None and 0 <= limit < _CGROUP_UNLIMITED else None


def _cgroup_room(controller: str,
                 files: dict[str, tuple[str, str, str]]) -> tuple[int, str] | None:
    """(what the tightest of this process's ``controller`` cgroups leaves, the limit's
    file name), from the (limit file, usage file, memory.stat key of usage the kernel
    reclaims before it fails a charge, or "") of ``files`` for each cgroup version; None
    where no limit is known."""
    rooms = []
    for directory, version in _cgroup_dirs(controller):
        limit_name, usage_name, reclaimable = files[version]
        limit = _cgroup_limit(os.path.join(directory, limit_name))
        usage = _read_int(os.path.join(directory, usage_name))
        if limit is not None and usage is not None:
            if reclaimable:  # page cache not recently used counts in usage but is dropped
                usage -= min(usage, _keyed_int(os.path.join(directory, "memory.stat"),
                                               reclaimable) or 0)
            rooms.append((max(0, limit - usage), limit_name))
    return min(rooms, default=None)


def _cgroup_memory_room() -> tuple[int, str] | None:
    """(bytes the memory limits of this process's cgroups leave, the limit's file)."""
    return _cgroup_room("memory", {
        "v2": ("memory.max", "memory.current", "inactive_file"),
        "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")})


def _cgroup_pids_room() -> tuple[int, str] | None:
    """(tasks the pids limits of this process's cgroups leave room for, the limit's file)."""
    return _cgroup_room("pids", {"v2": ("pids.max", "pids.current", ""),
                                 "v1": ("pids.max", "pids.current", "")})


def check_room(ranks: int) -> None:
    """Refuse (UserError) ``ranks`` processes that this machine cannot start, before any
    starts: more than the memory available holds at RANK_MEMORY_FLOOR each, or more than
    the process limits leave room for. Memory available is the least of MemAvailable
    and what the memory limits of this process's cgroups (a container's, a systemd
    slice's) leave, since MemAvailable counts the whole machine's; their pids limits
    are process limits too. Too many would bring in the out-of-memory killer
    (or make forks fail) in the middle of the job's start, disturbing the whole machine.
    A count above the cores is not refused (each rank then gets a thread: a note)."""
    rooms = _process_room()
    pids = _cgroup_pids_room()
    if pids is not None:
        rooms.append((pids[0], f"the container's process limit (cgroup {pids[1]}) leaves "
                               f"room for {pids[0]:,} more"))
    memories = []
    memory = _available_memory()
    if memory is not None:
        memories.append((memory, f"{memory >> 20:,} MiB are available (MemAvailable, "
                                 f"/proc/meminfo)"))
    cgroup = _cgroup_memory_room()
    if cgroup is not None:
        memories.append((cgroup[0], f"the container's memory limit (cgroup {cgroup[1]}) "
                                    f"leaves {cgroup[0] >> 20:,} MiB"))
    if memories:
        memory, which = min(memories)
        rooms.append((memory // RANK_MEMORY_FLOOR,
                      f"each rank needs at least {RANK_MEMORY_FLOOR >> 20} MiB of memory and "
                      f"{which}"))
    fits, why = min(rooms, default=(ranks, ""))
    if ranks > fits:
        advice = (f"give --ranks {fits} or fewer" if fits > 1
                  else "train on one process (without --ranks)")
        raise UserError(f"--ranks {ranks}: more ranks than this machine can start: "
                        f"{why}; {advice}")
