"""iraas/classroom/s3_video.py: a video in S3 read as a seekable file, a ranged GET per block."""

from __future__ import annotations

import io
import os

from iraas import aws
from iraas.classroom.s3_video import S3VideoFile


def test_reads_and_seeks_return_the_objects_bytes_with_one_get_per_block(stack) -> None:
    s3 = aws.client(stack, "s3")
    data = os.urandom(10 * 1024 + 7)
    s3.put_object(Bucket=stack.image_input_bucket, Key="video.mp4", Body=data)
    calls: list[str] = []

    def count(params, **_):
        calls.append(params.get("Range", ""))

    s3.meta.events.register("before-parameter-build.s3.GetObject", count)
    try:
        with S3VideoFile(s3, stack.image_input_bucket, "video.mp4", block_bytes=4096) as video:
            assert video.size == len(data) and video.seekable()
            assert video.read(10) == data[:10]
            video.seek(-100, io.SEEK_END)  # the index at the end of an MP4
            assert video.read() == data[-100:]
            video.seek(5000)
            assert video.read(200) == data[5000:5200]
            video.seek(10)
            assert video.read(4086 + 20) == data[10:4116]  # across a block boundary
            assert video.read(10**6) == data[4116:]
            assert video.read(1) == b""
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", count)
    # Blocks 0, 2 and 1, each read once (the end block was cached), in the order first needed.
    assert calls == ["bytes=0-4095", "bytes=8192-10246", "bytes=4096-8191"]
