"""Raw message storage: new blobs are Zstandard frames, old zlib blobs stay readable."""

from __future__ import annotations

import threading
import zlib

from webmail.mail import blobs

RAW = b"Subject: hello\r\nMessage-ID: <b@example.test>\r\n\r\n" + b"some text to keep\r\n" * 500


def test_pack_writes_a_zstandard_frame_that_unpacks_to_the_same_bytes():
    packed = blobs.pack(RAW)
    assert packed.startswith(blobs.ZSTD_MAGIC)
    assert len(packed) < len(RAW) // 10
    assert blobs.unpack(packed) == RAW
    assert blobs.unpack(memoryview(packed)) == RAW


def test_unpack_still_reads_blobs_stored_with_zlib():
    for level in (1, 6, 9):
        assert blobs.unpack(zlib.compress(RAW, level)) == RAW
    assert blobs.unpack(zlib.compress(b"")) == b""


def test_empty_and_incompressible_messages_round_trip():
    noise = bytes((i * 7919) % 251 for i in range(100_000))
    for raw in (b"", noise):
        assert blobs.unpack(blobs.pack(raw)) == raw


def test_threads_pack_at_once_without_sharing_a_context():
    raws = [RAW + str(n).encode() * n for n in range(40)]
    out: dict[int, bytes] = {}

    def work(n: int) -> None:
        for _ in range(20):
            out[n] = blobs.pack(raws[n])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(raws))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [blobs.unpack(out[n]) for n in range(len(raws))] == raws
