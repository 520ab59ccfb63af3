"""A video in S3 read as a seekable file, by byte ranges: a segment of a long lecture reads its own
minutes (and the container's index), not the whole video.

FFmpeg (through PyAV) reads a file-like object with ``read``, ``seek`` and ``tell``; each miss is
one ranged GetObject of ``block_bytes`` (4 MiB), and the last few blocks are kept, since the
demuxer reads the index at one end and then the packets forward. A 60-second segment of a 1080p
lecture at 5 Mbit/s is about 38 MB: ten GETs, and the index's one or two.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

BLOCK_BYTES = 4 * 1024 * 1024
CACHED_BLOCKS = 4


class S3VideoFile(io.RawIOBase):
    """A read-only, seekable view of ``s3://bucket/key`` (its size from one HEAD, its bytes by range)."""

    def __init__(self, s3: Any, bucket: str, key: str, block_bytes: int = BLOCK_BYTES, size: int | None = None) -> None:
        super().__init__()
        self.s3, self.bucket, self.key, self.block_bytes = s3, bucket, key, block_bytes
        self.size = size if size is not None else int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        self.position = 0
        self.gets = 0  # ranged GETs made: what reading a segment cost
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self.position))
        done = 0
        while done < wanted:
            index, offset = divmod(self.position, self.block_bytes)
            block = self._block(index)
            chunk = block[offset : offset + wanted - done]
            if not chunk:
                break
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self.position += len(chunk)
        return done

    def _block(self, index: int) -> bytes:
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        start = index * self.block_bytes
        end = min(self.size, start + self.block_bytes) - 1
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}")["Body"].read()
        self.gets += 1
        self._blocks[index] = body
        while len(self._blocks) > CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return body
