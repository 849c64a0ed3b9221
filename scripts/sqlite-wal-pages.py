#!/usr/bin/env python3
"""Which of herald's b-trees a SQLite write-ahead log's frames wrote, and how often each page.

Every commit writes each page it changed to the log whole (4 KiB), however little changed, so
the frames a delivery costs, and which tables and indexes they belong to, are what decide a
commit's cost. Run the benchmark with `HERALD_BENCH_KEEP=DIR` (each SQLite row's database and
log are kept there, with checkpoints off so the log holds every frame of the row), then:

  scripts/sqlite-wal-pages.py DIR/sqlite-api-50.db-wal

Frames are told apart by what their first cell holds (an `ep_` id then a time is
`deliveries_ready`, a `dlv_` id then a time `attempts_by_delivery`, ...), not by the page's
owner at the end: pages freed during the run (the pending deliveries' index empties as they are
sent) are reused by other b-trees, so `dbstat` on the finished database misattributes them.
"""
import collections
import struct
import sys


def varint(buf, i):
    value = 0
    for n in range(9):
        byte = buf[i + n]
        if n == 8:
            return (value << 8) | byte, i + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + n + 1
    raise ValueError


def columns(buf, i):
    """The leading values of the record at `i` (texts as their first 4 bytes, ints as 'int')."""
    start = i
    header, i = varint(buf, i)
    end_header = start + header
    types = []
    while i < end_header:
        serial, i = varint(buf, i)
        types.append(serial)
    values, body = [], end_header
    for serial in types:
        if serial == 0:
            values.append('null')
            continue
        if serial in (1, 2, 3, 4, 5, 6, 8, 9):
            size = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 8: 0, 9: 0}[serial]
            values.append('int')
        elif serial == 7:
            size = 8
            values.append('real')
        elif serial >= 13 and serial % 2:
            size = (serial - 13) // 2
            text = bytes(buf[body:body + size])
            values.append(text.split(b'_')[0].decode(errors='replace') + '_' if b'_' in text[:5] else 'text')
        else:
            size = (serial - 12) // 2
            values.append('blob')
        body += size
    return values


# A b-tree by the shape of its first cell: (leading values) -> name.
INDEXES = {
    ('ep_', 'int', 'int'): 'deliveries_ready (endpoint, due) where pending',
    ('ep_', 'dlv_', 'int'): 'deliveries_by_endpoint (endpoint, id)',
    ('evt_', 'int'): 'deliveries_by_event (event)',
    ('dlv_', 'int'): 'deliveries primary key (id)',
    ('dlv_', 'int', 'int'): 'attempts_by_delivery (delivery, started)',
    ('att_', 'int'): 'attempts primary key (id)',
}
TABLES = {'dlv_': 'deliveries (rows)', 'att_': 'attempts (rows)', 'evt_': 'events (rows)'}


def owner(page, first):
    offset = 100 if first else 0
    kind = page[offset]
    cells = struct.unpack('>H', page[offset + 3:offset + 5])[0]
    if cells == 0:
        return 'empty page'
    header = 12 if kind in (2, 5) else 8
    cell = struct.unpack('>H', page[offset + header:offset + header + 2])[0]
    try:
        if kind == 13:  # table leaf: payload size, rowid, record
            _, i = varint(page, cell)
            _, i = varint(page, i)
            return TABLES.get(columns(page, i)[0], 'other table (rows)')
        if kind in (10, 2):  # index leaf or interior: [child,] payload size, record
            _, i = varint(page, cell + (4 if kind == 2 else 0))
            values = tuple(columns(page, i))
            suffix = '' if kind == 10 else ' (interior)'
            for width in (3, 2):
                if values[:width] in INDEXES and len(values) == width:
                    return INDEXES[values[:width]] + suffix
            return 'other index' + suffix
        if kind == 5:
            return 'table interior pages'
    except (IndexError, ValueError):
        pass
    return 'other'


def main(path):
    data = open(path, 'rb').read()
    size = struct.unpack('>I', data[8:12])[0]
    frames, commits, writes = collections.Counter(), 0, collections.defaultdict(collections.Counter)
    offset = 32
    while offset + 24 + size <= len(data):
        number, after = struct.unpack('>II', data[offset:offset + 8])
        page = data[offset + 24:offset + 24 + size]
        name = owner(page, number == 1)
        frames[name] += 1
        writes[name][number] += 1
        commits += after != 0
        offset += 24 + size
    total = sum(frames.values())
    print(f'{total} frames of {size} bytes in {commits} commits, {total / max(commits, 1):.1f} a commit')
    print(f"{'frames':>8} {'share':>6} {'pages':>7} {'writes a page':>14}  b-tree")
    for name, count in frames.most_common():
        pages = len(writes[name])
        print(f'{count:8} {count / total:6.1%} {pages:7} {count / pages:14.1f}  {name}')


if __name__ == '__main__':
    main(sys.argv[1])
