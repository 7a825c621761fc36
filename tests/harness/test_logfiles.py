"""The report folder's logs are gzipped at the end of a run, every line kept."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from harness.logfiles import compress_logs, point_at_compressed

ACCESS_LOG = b"".join(
    b'{"method":"GET","path":"/","response_code":200,"x_request_id":"%d"}\n' % n
    for n in range(5000)
)


def _logs(folder: Path) -> Path:
    logs = folder / "logs"
    logs.mkdir(parents=True)
    (logs / "frontend-0-sidecar.log").write_bytes(ACCESS_LOG)
    (logs / "forkserver.log").write_bytes(b"")
    (logs / "notes.txt").write_text("not a log")
    for path in logs.iterdir():
        os.utime(path, (1_000_000, 1_000_000))
    return logs


def test_every_log_becomes_a_gzip_file_with_the_same_lines(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    renamed = compress_logs(logs)
    assert renamed == {
        logs / "forkserver.log": logs / "forkserver.log.gz",
        logs / "frontend-0-sidecar.log": logs / "frontend-0-sidecar.log.gz",
    }
    assert sorted(p.name for p in logs.iterdir()) == [
        "forkserver.log.gz",
        "frontend-0-sidecar.log.gz",
        "notes.txt",
    ]
    compressed = logs / "frontend-0-sidecar.log.gz"
    assert gzip.decompress(compressed.read_bytes()) == ACCESS_LOG
    assert compressed.stat().st_size * 10 < len(ACCESS_LOG)
    assert gzip.decompress((logs / "forkserver.log.gz").read_bytes()) == b""
    # The header names the log (FNAME, after the 10-byte fixed header), as `gunzip -N` reads it,
    # and the file keeps the log's modification time.
    assert compressed.read_bytes()[10:33] == b"frontend-0-sidecar.log\0"
    assert compressed.stat().st_mtime == 1_000_000
    assert compress_logs(logs) == {}  # nothing left to compress


def test_the_same_log_compresses_to_the_same_bytes(tmp_path: Path) -> None:
    first, second = _logs(tmp_path / "a"), _logs(tmp_path / "b")
    compress_logs(first)
    compress_logs(second)
    for name in ("frontend-0-sidecar.log.gz", "forkserver.log.gz"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_a_missing_folder_has_nothing_to_compress(tmp_path: Path) -> None:
    assert compress_logs(tmp_path / "logs") == {}


def test_crash_messages_then_name_the_compressed_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    renamed = {
        logs / "a-0.log": logs / "a-0.log.gz",
        logs / "a-0-sidecar.log": logs / "a-0-sidecar.log.gz",
    }
    messages = [
        f"a/0 exited with status 3 at 2.5s after it started; its log: {logs / 'a-0.log'}",
        f"a/0 sidecar exited; its log: {logs / 'a-0-sidecar.log'}",
        f"b/0 exited; its log: {logs / 'a-0.log-old'}",  # not a log that was compressed
    ]
    assert point_at_compressed(messages, renamed) == [
        f"a/0 exited with status 3 at 2.5s after it started; its log: {logs / 'a-0.log.gz'}",
        f"a/0 sidecar exited; its log: {logs / 'a-0-sidecar.log.gz'}",
        messages[2],
    ]
    assert point_at_compressed(messages, {}) == messages
