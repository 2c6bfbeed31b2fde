#!/usr/bin/env python3
"""Runs a command and writes its wall time, CPU time and peak RSS as JSON.

    rusage.py OUT.json -- command args...

The command's output passes through. CPU time (user + system, all threads,
the whole process including start-up and model loading) is a second view of
speed that a busy machine disturbs less than wall time does.
"""

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        json.dump(
            {
                "command": cmd,
                "exit_code": rc,
                "wall_s": wall,
                "user_s": after.ru_utime - before.ru_utime,
                "sys_s": after.ru_stime - before.ru_stime,
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                # Linux reports ru_maxrss in KiB (the largest child so far).
                "peak_rss_mb": after.ru_maxrss / 1024.0,
            },
            f,
            indent=2,
        )
    return rc


if __name__ == "__main__":
    sys.exit(main())
