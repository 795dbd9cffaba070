"""An export as files: the JSONL, CSV or Parquet bundle with its datasheet, and several files
streamed as one zip archive in constant memory."""

import io
import zipfile

from .datasheet import datasheet
from .fields import arrow_schema
from .options import (
    CSV_TABLES,
    DATASHEET_NAME,
    ExportError,
    ExportOptions,
    FORMATS,
    JSONL_NAME,
    PARQUET_NAME,
    VERSIONS_NAME,
    check_postgresql,
)
from .records import csv_lines, jsonl_lines, version_lines


def chunked(lines, size: int = 256 * 1024):
    """Join small byte strings into chunks of about `size` bytes, for fewer, larger writes."""
    buffer, length = [], 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


def parquet_batches(options: ExportOptions, rows_per_group: int = 20_000):
    """Arrow tables of up to rows_per_group records, parsed by Arrow's JSON reader with the fixed schema."""
    import pyarrow.json as pajson

    schema = arrow_schema()
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    batch, count = [], 0
    for line in jsonl_lines(options):
        batch.append(line)
        count += 1
        if count == rows_per_group:
            yield pajson.read_json(io.BytesIO(b"".join(batch)), parse_options=parse)
            batch, count = [], 0
    if batch:
        yield pajson.read_json(io.BytesIO(b"".join(batch)), parse_options=parse)


def write_parquet(options: ExportOptions, sink, on_rows=None) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(sink, arrow_schema(), compression="zstd") as writer:
        for table in parquet_batches(options):
            writer.write_table(table)
            rows += table.num_rows
            if on_rows:
                on_rows(table.num_rows)
    return rows


class _Pipe(io.RawIOBase):
    """A write-only stream whose written bytes are taken out as they come (for streaming a zip)."""

    def __init__(self):
        self.parts = []
        self.position = 0

    def writable(self):
        return True

    def write(self, data):
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self):
        return self.position

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(files):
    """files: (name, iterable of bytes) pairs -> the bytes of a zip archive holding them, produced
    as the iterables are consumed (constant memory)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as archive:
        for name, chunks in files:
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk)
                    data = pipe.take()
                    if len(data) > 0:
                        yield data
            yield pipe.take()
    yield pipe.take()


def bundle(fmt: str, options: ExportOptions):
    """The (file name, chunks) pairs of an export in a format, datasheet included."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        check_postgresql()
    files = [(DATASHEET_NAME, [datasheet(options, fmt).encode()]), (VERSIONS_NAME, version_lines(options))]
    if fmt == "jsonl":
        files.append((JSONL_NAME, chunked(jsonl_lines(options))))
    elif fmt == "csv":
        files += [(f"{table}.csv", chunked(csv_lines(table, options))) for table in CSV_TABLES]
    else:
        files.append((PARQUET_NAME, _parquet_chunks(options)))
    return files


def _parquet_chunks(options: ExportOptions):
    import pyarrow.parquet as pq

    pipe = _Pipe()
    with pq.ParquetWriter(pipe, arrow_schema(), compression="zstd") as writer:
        for table in parquet_batches(options):
            writer.write_table(table)
            yield pipe.take()
    yield pipe.take()
