"""The cold build's floor: the per-file work alone, on all cores, with nothing else.

Walks the tree and has lambdazip-tf's own Packer read, sha256, crc32 and deflate (level 6) every
regular file, then throws the bytes away: no selection, no zip writing, no cache. `make bench`
times this beside the cold build so that the cold target can be judged against what the
per-file work (libdeflate level 6, lambdazip_tf/core/compress.py) costs on the same machine
in the same run.
"""

from __future__ import annotations

import os
import stat
import sys

from lambdazip_tf.core.entries import Entry
from lambdazip_tf.speed.pool import Packer


def main(argv: list[str]) -> int:
    """Pack every regular file at or under each of argv; print how many bytes deflate made."""
    files: list[Entry] = []
    for top in argv:
        walked = (
            [(os.path.dirname(top), [os.path.basename(top)])]
            if os.path.isfile(top)
            else [(dirpath, filenames) for dirpath, _, filenames in os.walk(top)]
        )
        for dirpath, filenames in walked:
            for name in filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode):
                    files.append(Entry(path, "file", 0o644, path, None, st.st_size))
    files.sort()
    with Packer(6) as packer:
        total = sum(len(packed.data) for _, packed in packer.pack(files))
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
