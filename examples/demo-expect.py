#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run the demo and require lines of its output: the test fails when a check
the demo must make did not run (or said anything else), not only when the
demo's exit code says so.

    demo-expect.py [--expect PREFIX]... -- COMMAND [ARG]...

Each PREFIX must begin some line of the output. The command's output is
passed through; its exit code is kept when it is not 0 (77: skipped).
"""
import subprocess
import sys


def main(argv):
    if '--' not in argv:
        sys.exit('usage: demo-expect.py [--expect PREFIX]... -- COMMAND [ARG]...')
    sep = argv.index('--')
    opts, cmd = argv[:sep], argv[sep + 1:]
    expect = [opts[i + 1] for i in range(len(opts) - 1) if opts[i] == '--expect']
    run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, errors='replace')
    sys.stdout.write(run.stdout)
    sys.stdout.flush()
    if run.returncode != 0:
        return run.returncode
    lines = run.stdout.splitlines()
    missing = [e for e in expect if not any(line.startswith(e) for line in lines)]
    for e in missing:
        print(f'demo-expect: no line starts with {e!r}', file=sys.stderr)
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
