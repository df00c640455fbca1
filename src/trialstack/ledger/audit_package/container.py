"""A canonical ZIP container: every byte of the file is either an entry's data or a header this module derives.

Entries are laid out back to back from offset 0 with fixed metadata (1980-01-01 timestamps, fixed attributes, no
comments, no data descriptors); streamed entries are DEFLATE with ZIP64 sizes, small ones are STORED. Given the
entry list, `layout` re-derives every header byte, so a verifier compares the file against it and only has to
vouch for the entries' data (which the manifest and the signed checkpoint cover). Plain `unzip` reads it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, replace
from typing import BinaryIO

STORED, DEFLATED = 0, 8
_VERSION = 45  # 4.5: ZIP64
_MADE_BY = (3 << 8) | _VERSION  # UNIX
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_ATTRIBUTES = 0o100644 << 16
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int

    @property
    def zip64(self) -> bool:
        """Streamed (DEFLATE) entries always carry ZIP64 sizes: their size is unknown when the header is written."""
        return self.method == DEFLATED

    @property
    def data_offset(self) -> int:
        return self.offset + len(local_header(self))


def local_header(entry: Entry) -> bytes:
    name = entry.name.encode("ascii")
    if entry.zip64:
        extra = struct.pack("<HHQQ", 0x0001, 16, entry.size, entry.compressed_size)
        sizes = (_MAX32, _MAX32)
    else:
        extra, sizes = b"", (entry.compressed_size, entry.size)
    fixed = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, _VERSION, 0, entry.method, 0, _DOS_DATE, entry.crc, *sizes, len(name), len(extra)
    )
    return fixed + name + extra


def central_header(entry: Entry) -> bytes:
    name = entry.name.encode("ascii")
    fields = b""
    sizes = (entry.compressed_size, entry.size)
    if entry.zip64:
        fields, sizes = struct.pack("<QQ", entry.size, entry.compressed_size), (_MAX32, _MAX32)
    offset = entry.offset
    if offset >= _MAX32:
        fields, offset = fields + struct.pack("<Q", offset), _MAX32
    extra = struct.pack("<HH", 0x0001, len(fields)) + fields if fields else b""
    fixed = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, _VERSION, 0, entry.method, 0, _DOS_DATE, entry.crc, *sizes,
        len(name), len(extra), 0, 0, 0, _ATTRIBUTES, offset,
    )  # fmt: skip
    return fixed + name + extra


def end_records(count: int, directory_offset: int, directory_size: int) -> bytes:
    """End of central directory, preceded by the ZIP64 end record and locator only when a field overflows."""
    if count < _MAX16 and directory_offset < _MAX32 and directory_size < _MAX32:
        return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, directory_size, directory_offset, 0)
    zip64_offset = directory_offset + directory_size
    record = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, _VERSION, 0, 0, count, count, directory_size, directory_offset
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, zip64_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, _MAX16, _MAX16, _MAX32, _MAX32, 0)
    return record + locator + end


def canonical(entries: list[Entry]) -> list[Entry]:
    """The entries at the offsets the canonical layout gives them: back to back from 0, in this order."""
    placed, position = [], 0
    for entry in entries:
        placed.append(replace(entry, offset=position))
        position += len(local_header(entry)) + entry.compressed_size
    return placed


def layout(entries: list[Entry]) -> list[tuple[int, bytes]]:
    """Every (offset, header bytes) of the canonical file holding `entries`; all other bytes are entry data."""
    placed = canonical(entries)
    headers = [(entry.offset, local_header(entry)) for entry in placed]
    start = placed[-1].data_offset + placed[-1].compressed_size if placed else 0
    directory = b"".join(central_header(entry) for entry in placed)
    return [*headers, (start, directory + end_records(len(placed), start, len(directory)))]


class StreamedEntry:
    """An entry being DEFLATE-compressed as it is written; tracks CRC, sizes and the SHA-256 of both forms."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.crc = 0
        self.size = 0
        self.compressed_size = 0
        self.sha256 = hashlib.sha256()
        self.stored_sha256 = hashlib.sha256()

    def _emit(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self.stored_sha256.update(data)
            self.compressed_size += len(data)

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        self.sha256.update(data)
        self._emit(self._compressor.compress(data))

    def finish(self) -> None:
        self._emit(self._compressor.flush())


class PackageWriter:
    """Writes a canonical container to a seekable file: stream the big entry first, then the small ones."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.entries: list[Entry] = []

    def _position(self) -> int:
        return sum(len(local_header(e)) + e.compressed_size for e in self.entries)

    def begin_streamed(self, name: str) -> StreamedEntry:
        placeholder = Entry(name, DEFLATED, 0, 0, 0, self._position())
        self._file.seek(placeholder.offset)
        self._file.write(local_header(placeholder))
        return StreamedEntry(self._file)

    def end_streamed(self, name: str, stream: StreamedEntry) -> Entry:
        stream.finish()
        entry = Entry(name, DEFLATED, stream.crc, stream.compressed_size, stream.size, self._position())
        self._file.seek(entry.offset)
        self._file.write(local_header(entry))
        self._file.seek(entry.data_offset + entry.compressed_size)
        self.entries.append(entry)
        return entry

    def add_stored(self, name: str, data: bytes) -> Entry:
        entry = Entry(name, STORED, zlib.crc32(data), len(data), len(data), self._position())
        self._file.seek(entry.offset)
        self._file.write(local_header(entry) + data)
        self.entries.append(entry)
        return entry

    def close(self) -> None:
        offset, tail = layout(self.entries)[-1]
        self._file.seek(offset)
        self._file.write(tail)
        self._file.truncate()
        self._file.flush()
