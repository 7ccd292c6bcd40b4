"""Mutations of a parsed migration stream (stream.py) that know its format.

mutate(data, pieces, rng, donors) returns (new bytes, description).  One to
three operations are applied; most are aimed at a RAM record's fields (the
series' zlib page and zstd/lz4 frame records first), the others at section
headers, footers, device state (with device_state only) and random
bytes.  A stream is cut at a record or section boundary, or in the middle
of one, in about one case in six.

Device state and the configuration section are loaded by base QEMU code
this series does not touch (apart from one fix), with its own known gaps
for a corrupt stream: changing their bytes finds those (an abort on a
table-loader ROM resize, an allocation of a negative vmstate buffer
length), not the series' bugs.  So by default only their section headers
and footers change; device_state=True changes their bytes too.
"""

import struct

from stream import (F_COMPRESS, F_CONTINUE, F_EOS, F_MEM_SIZE,
                    F_MULTIFD_FLUSH, F_PAGE, F_XBZRLE, F_ZERO, F_HOOK, PAGE)

FLAG_BITS = [0x01, F_ZERO, F_MEM_SIZE, F_PAGE, F_EOS, F_CONTINUE,
             F_XBZRLE, F_HOOK, F_COMPRESS, F_MULTIFD_FLUSH, 0x400, 0x800]
SIZE_FMT = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}


def interesting(size, cur):
    """Values worth putting in an unsigned field of size bytes holding cur."""
    top = (1 << (8 * size)) - 1
    vals = {0, 1, top, top >> 1, (top >> 1) + 1, cur + 1, cur - 1 if cur else top,
            cur * 2 & top, cur ^ 0x80}
    if size >= 2:
        vals |= {255, 256, 257, PAGE - 1, PAGE, PAGE + 1, 4110, 4111, 0x7fff, 0x8000}
    if size >= 4:
        vals |= {0x10000, 0x10001, 1 << 20, 0x7ffffffe}
    return sorted(v & top for v in vals)


class Case:
    def __init__(self, data):
        self.d = bytearray(data)
        self.what = []

    def put(self, off, size, val):
        struct.pack_into(SIZE_FMT[size], self.d, off, val & ((1 << 8 * size) - 1))

    def get(self, off, size):
        return struct.unpack_from(SIZE_FMT[size], self.d, off)[0]


def _records(pieces, kinds=None):
    return [p for p in pieces if p.kind == "record" and
            (kinds is None or p.rkind in kinds)]


def op_field(c, pieces, rng):
    """An interesting value in one fixed-size field of a record."""
    recs = _records(pieces, ("zlib", "frame", "xbzrle", "zero", "mem_size")) or _records(pieces)
    rec = rng.choice(recs)
    names = [n for n, (o, s) in rec.fields.items() if s in (1, 2, 4, 8) and n != "hdr"]
    if not names:
        return op_flags(c, pieces, rng)
    name = rng.choice(names)
    off, size = rec.fields[name]
    val = rng.choice(interesting(size, c.get(off, size)))
    c.put(off, size, val)
    c.what.append(f"{rec.rkind}@{rec.start}.{name}={val:#x}")


def op_flags(c, pieces, rng):
    """Toggle one flag of a record header, or move its page offset."""
    rec = rng.choice(_records(pieces))
    off = rec.fields["hdr"][0]
    hdr = c.get(off, 8)
    if rng.random() < 0.6:
        bit = rng.choice(FLAG_BITS)
        c.put(off, 8, hdr ^ bit)
        c.what.append(f"{rec.rkind}@{rec.start}.flags^={bit:#x}")
    else:
        addr = rng.choice([1 << 27, (1 << 27) - PAGE, 1 << 40, (1 << 64) - PAGE,
                           (hdr & ~0xfff) + PAGE * rng.randint(1, 300),
                           (hdr & ~0xfff) ^ (PAGE << rng.randint(0, 40))])
        c.put(off, 8, (addr & ~0xfff & ((1 << 64) - 1)) | (hdr & 0xfff))
        c.what.append(f"{rec.rkind}@{rec.start}.addr={addr:#x}")


def op_idstr(c, pieces, rng):
    """A record's block name: another block, an unknown one, a bad length."""
    recs = [r for r in _records(pieces) if "idstr" in r.fields]
    if not recs:
        return op_flags(c, pieces, rng)
    rec = rng.choice(recs)
    loff, _ = rec.fields["idstr_len"]
    off, n = rec.fields["idstr"]
    k = rng.randrange(3)
    if k == 0:
        c.d[loff] = rng.choice([0, 255, max(n - 1, 0), n + 1])
        c.what.append(f"{rec.rkind}@{rec.start}.idstr_len={c.d[loff]}")
    elif k == 1 and n:
        c.d[off + rng.randrange(n)] ^= 1 << rng.randrange(8)
        c.what.append(f"{rec.rkind}@{rec.start}.idstr bitflip")
    else:
        names = [b"pc.rom", b"pc.bios", b"/rom@etc/acpi/rsdp", b"ram0"]
        new = rng.choice(names)
        c.d[off:off + n] = new[:n].ljust(n, b"\0") if len(new) > n else new + b"\0" * (n - len(new))
        c.d[loff] = len(new) if len(new) <= n else n
        c.what.append(f"{rec.rkind}@{rec.start}.idstr={new!r}")


def op_frame(c, pieces, rng):
    """A frame's bitmap and page offsets, kept consistent in size."""
    recs = _records(pieces, ("frame",))
    if not recs:
        return op_field(c, pieces, rng)
    rec = rng.choice(recs)
    boff, bn = rec.fields["bitmap"]
    ooff, on = rec.fields["offsets"]
    k = rng.randrange(5)
    if k == 0 and bn:
        c.d[boff + rng.randrange(bn)] ^= 1 << rng.randrange(8)
        c.what.append(f"frame@{rec.start} bitmap bit")
    elif k == 1 and bn:
        v = rng.choice([0, 0xff])
        c.d[boff:boff + bn] = bytes([v]) * bn
        c.what.append(f"frame@{rec.start} bitmap={v:#x}")
    elif on:
        i = rng.randrange(on // 4)
        cur = c.get(ooff + 4 * i, 4)
        prev = c.get(ooff + 4 * i - 4, 4) if i else 0
        val = rng.choice([0, prev, max(prev - 1, 0), (cur + 1) << 20, 0xffffffff,
                          1 << 15, cur + rng.randint(1, 64)])
        c.put(ooff + 4 * i, 4, val)
        c.what.append(f"frame@{rec.start} offset[{i}]={val:#x}")
    else:
        return op_field(c, pieces, rng)


def op_payload(c, pieces, rng, donors):
    """Damage a compressed payload, or swap in another record's."""
    recs = _records(pieces, ("zlib", "frame", "xbzrle", "page"))
    if not recs:
        return op_random(c, pieces, rng)
    rec = rng.choice(recs)
    off, n = rec.fields["data"]
    if n and rng.random() < 0.5:
        for _ in range(rng.randint(1, 4)):
            c.d[off + rng.randrange(n)] ^= 1 << rng.randrange(8)
        c.what.append(f"{rec.rkind}@{rec.start} payload bitflips")
        return
    # another record's payload of a (maybe) different kind or stream, with
    # the length field made to match, or not
    src_data, src_pieces = rng.choice(donors)
    others = _records(src_pieces, ("zlib", "frame", "xbzrle"))
    if not others:
        return op_random(c, pieces, rng)
    o = rng.choice(others)
    doff, dn = o.fields["data"]
    payload = src_data[doff:doff + dn]
    if "len" in rec.fields and rng.random() < 0.7:
        loff, lsize = rec.fields["len"]
        c.put(loff, lsize, min(dn, (1 << 8 * lsize) - 1))
    elif "plen" in rec.fields and rng.random() < 0.7:
        c.put(rec.fields["plen"][0], 4, dn)
    c.d[off:off + n] = payload
    c.what.append(f"{rec.rkind}@{rec.start} payload<-{o.rkind}({dn})")


def op_record(c, pieces, rng, donors):
    """Drop, duplicate or insert a whole record (maybe from another stream)."""
    recs = _records(pieces)
    rec = rng.choice(recs)
    k = rng.randrange(3)
    if k == 0:
        del c.d[rec.start:rec.end]
        c.what.append(f"drop {rec.rkind}@{rec.start}")
    elif k == 1:
        c.d[rec.end:rec.end] = c.d[rec.start:rec.end]
        c.what.append(f"dup {rec.rkind}@{rec.start}")
    else:
        src_data, src_pieces = rng.choice(donors)
        o = rng.choice(_records(src_pieces))
        c.d[rec.start:rec.start] = src_data[o.start:o.end]
        c.what.append(f"insert {o.rkind} before {rec.rkind}@{rec.start}")


def op_section(c, pieces, rng, device_state=False):
    """A section header's or footer's field, or (device_state) a device or
    the configuration section's bytes."""
    kinds = ("section", "footer") + (("device", "config") if device_state else ())
    secs = [p for p in pieces if p.kind in kinds]
    p = rng.choice(secs)
    if p.kind in ("device", "config") and p.end > p.start:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(p.start, p.end)
            c.d[i] = rng.choice([0, 0xff, c.d[i] ^ (1 << rng.randrange(8)), rng.randrange(256)])
        c.what.append(f"{p.kind}@{p.start} bytes")
        return
    names = [n for n, (o, s) in p.fields.items() if s in (1, 2, 4)]
    name = rng.choice(names)
    off, size = p.fields[name]
    val = rng.choice(interesting(size, c.get(off, size)) + list(range(9)) + [0x7e])
    c.put(off, size, val & ((1 << 8 * size) - 1))
    c.what.append(f"{p.kind}@{p.start}.{name}={val:#x}")


def op_random(c, pieces, rng):
    """Random bytes: flips, a run overwritten, bytes inserted or removed."""
    n = len(c.d)
    k = rng.randrange(4)
    i = rng.randrange(n)
    if k == 0:
        for _ in range(rng.randint(1, 8)):
            c.d[rng.randrange(n)] ^= 1 << rng.randrange(8)
        c.what.append("random bitflips")
    elif k == 1:
        m = rng.randint(1, 64)
        c.d[i:i + m] = bytes(rng.randrange(256) for _ in range(m))
        c.what.append(f"random run @{i}+{m}")
    elif k == 2:
        m = rng.randint(1, 16)
        c.d[i:i] = bytes(rng.randrange(256) for _ in range(m))
        c.what.append(f"insert {m} @{i}")
    else:
        del c.d[i:i + rng.randint(1, 16)]
        c.what.append(f"delete @{i}")


def truncate(c, pieces, rng):
    """Cut at a piece boundary (the format's record and section
    boundaries) or inside a piece."""
    p = rng.choice(pieces[1:])
    if rng.random() < 0.6:
        at = p.start
        c.what.append(f"cut before {getattr(p, 'rkind', p.kind)}@{at}")
    else:
        at = rng.randrange(p.start, max(p.end, p.start + 1))
        c.what.append(f"cut inside {getattr(p, 'rkind', p.kind)}@{at}")
    del c.d[at:]


OPS = [(op_field, 5), (op_flags, 3), (op_idstr, 1), (op_frame, 3),
       (op_payload, 4), (op_record, 2), (op_section, 2), (op_random, 2)]


def mutate(data, pieces, rng, donors, device_state=False):
    c = Case(data)
    if rng.random() < 0.2:
        truncate(c, pieces, rng)
        return bytes(c.d), "; ".join(c.what)
    ops = [o for o, w in OPS for _ in range(w)]
    chosen = [rng.choice(ops) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    # the operations that keep every size first, at most one that moves
    # bytes last (the parsed offsets hold until then)
    resizing = (op_payload, op_record, op_random)
    keep = [o for o in chosen if o not in resizing]
    move = [o for o in chosen if o in resizing][:1]
    for op in keep + move:
        if op in (op_payload, op_record):
            op(c, pieces, rng, donors)
        elif op is op_section:
            op(c, pieces, rng, device_state)
        else:
            op(c, pieces, rng)
    return bytes(c.d), "; ".join(c.what)
