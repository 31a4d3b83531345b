#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write an initramfs: an uncompressed cpio archive in the "newc" format the
Linux kernel unpacks (the kernel's Documentation/driver-api/early-userspace/
buffer-format.rst), so that no cpio tool and no root privileges are needed.

    mkinitramfs.py OUT ENTRY...
        DEST=SRC      a regular file, copied from SRC with SRC's permissions
        DEST/         a directory (mode 0755)
        DEST@TARGET   a symbolic link to TARGET
Parent directories are made as needed; DEST is relative to the root.
"""
import os
import stat
import sys


def header(ino, mode, nlink, size, name):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08x" % f for f in fields)


def pad(n):
    return b"\0" * ((4 - n % 4) % 4)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, entries = argv[1], argv[2:]
    made = set()
    ino = [1]

    def emit(f, name, mode, data=b"", nlink=1):
        nb = name.encode()
        hdr = header(ino[0], mode, nlink, len(data), nb)
        ino[0] += 1
        f.write(hdr + nb + b"\0" + pad(len(hdr) + len(nb) + 1))
        f.write(data + pad(len(data)))

    def parents(f, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in made:
                made.add(d)
                emit(f, d, stat.S_IFDIR | 0o755, nlink=2)

    with open(out + ".tmp", "wb") as f:
        for e in entries:
            if "=" in e:
                dest, src = e.split("=", 1)
                dest = dest.strip("/")
                parents(f, dest)
                with open(src, "rb") as s:
                    data = s.read()
                perm = stat.S_IMODE(os.stat(src).st_mode)
                emit(f, dest, stat.S_IFREG | perm, data)
            elif "@" in e:
                dest, target = e.split("@", 1)
                dest = dest.strip("/")
                parents(f, dest)
                emit(f, dest, stat.S_IFLNK | 0o777, target.encode())
            elif e.endswith("/"):
                dest = e.strip("/")
                parents(f, dest + "/x")
            else:
                sys.exit("mkinitramfs.py: what is %r?" % e)
        emit(f, "TRAILER!!!", 0, nlink=1)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv)
