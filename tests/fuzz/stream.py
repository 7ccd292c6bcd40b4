"""Parse a QEMU 10.0 migration stream (as `migrate file:` writes it) into
the pieces the fuzzer mutates: the file header, the configuration, the RAM
sections and every RAM record in them (with the offset and size of each
field), the device sections and the trailing VM description.

Only what the series' seeds contain is understood: precopy, no postcopy,
no ignore-shared, no mapped-ram, no multifd.  Device state is not decoded:
device sections are found by their header and footer only.
"""

import struct

# savevm.c section types
EOF, START, PART, END, FULL, SUBSECTION, VMDESC, CONFIG, COMMAND = range(9)
FOOTER = 0x7e
MAGIC = 0x5145564d

# RAM record flags (migration/ram.h); 0x01 is unused
F_ZERO, F_MEM_SIZE, F_PAGE = 0x02, 0x04, 0x08
F_EOS, F_CONTINUE, F_XBZRLE, F_HOOK = 0x10, 0x20, 0x40, 0x80
F_COMPRESS, F_MULTIFD_FLUSH = 0x100, 0x200
# the length of a compressed page record that introduces a frame
FRAME_ESCAPE = 0xffffffff
PAGE = 4096
PAGE_MASK = PAGE - 1


class ParseError(Exception):
    pass


class Piece:
    """A span [start, end) of the stream.  kind: 'header', 'config',
    'section' (a section's header, sec: its type), 'footer', 'record'
    (a RAM record, rkind: mem_size/zero/page/xbzrle/zlib/frame/eos),
    'device' (a device section's body), 'vmdesc'.  fields: name ->
    (offset, size) of the fixed-size fields inside."""

    def __init__(self, kind, start, **kw):
        self.kind = kind
        self.start = start
        self.end = start
        self.fields = {}
        self.__dict__.update(kw)

    def __repr__(self):
        extra = getattr(self, "rkind", getattr(self, "sec", ""))
        return f"<{self.kind} {extra} {self.start}:{self.end}>"


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def need(self, n):
        if self.p + n > len(self.d):
            raise ParseError(f"truncated at {self.p} (+{n})")

    def u8(self):
        self.need(1)
        self.p += 1
        return self.d[self.p - 1]

    def be16(self):
        self.need(2)
        self.p += 2
        return struct.unpack_from(">H", self.d, self.p - 2)[0]

    def be32(self):
        self.need(4)
        self.p += 4
        return struct.unpack_from(">I", self.d, self.p - 4)[0]

    def be64(self):
        self.need(8)
        self.p += 8
        return struct.unpack_from(">Q", self.d, self.p - 8)[0]

    def skip(self, n):
        self.need(n)
        self.p += n


def _field(piece, r, name, size):
    piece.fields[name] = (r.p, size)
    return {1: r.u8, 2: r.be16, 4: r.be32, 8: r.be64}[size]()


def _idstr(piece, r, name="idstr"):
    n = _field(piece, r, name + "_len", 1)
    piece.fields[name] = (r.p, n)
    r.skip(n)
    return bytes(r.d[r.p - n:r.p])


def _ram_body(r, out, blocks):
    """RAM records up to and including EOS."""
    while True:
        rec = Piece("record", r.p)
        hdr = _field(rec, r, "hdr", 8)
        flags = hdr & PAGE_MASK
        rec.flags = flags
        if flags & F_MEM_SIZE:
            rec.rkind = "mem_size"
            total = hdr & ~PAGE_MASK
            seen = 0
            i = 0
            while seen < total:
                name = _idstr(rec, r, f"block{i}")
                length = _field(rec, r, f"block{i}_length", 8)
                blocks[name] = length
                seen += length
                i += 1
        elif flags & F_EOS:
            rec.rkind = "eos"
        else:
            if not flags & F_CONTINUE:
                _idstr(rec, r)
            if flags & F_ZERO:
                rec.rkind = "zero"
                _field(rec, r, "fill", 1)
            elif flags & F_PAGE:
                rec.rkind = "page"
                rec.fields["data"] = (r.p, PAGE)
                r.skip(PAGE)
            elif flags & F_XBZRLE:
                rec.rkind = "xbzrle"
                _field(rec, r, "encoding", 1)
                n = _field(rec, r, "len", 2)
                rec.fields["data"] = (r.p, n)
                r.skip(n)
            elif flags & F_COMPRESS and \
                    struct.unpack_from(">I", r.d, r.p)[0] != FRAME_ESCAPE:
                rec.rkind = "zlib"
                n = _field(rec, r, "len", 4)
                rec.fields["data"] = (r.p, n)
                r.skip(n)
            elif flags & F_COMPRESS:
                rec.rkind = "frame"
                _field(rec, r, "escape", 4)
                _field(rec, r, "method", 1)
                count = _field(rec, r, "count", 2)
                plen = _field(rec, r, "plen", 4)
                rec.count = count
                rec.fields["bitmap"] = (r.p, (count + 7) // 8)
                r.skip((count + 7) // 8)
                rec.fields["offsets"] = (r.p, 4 * max(count - 1, 0))
                r.skip(4 * max(count - 1, 0))
                rec.fields["data"] = (r.p, plen)
                r.skip(plen)
            else:
                raise ParseError(f"record flags {flags:#x} at {rec.start}")
        rec.end = r.p
        out.append(rec)
        if rec.rkind == "eos":
            return


def _footer(r, out, sid):
    f = Piece("footer", r.p)
    if _field(f, r, "marker", 1) != FOOTER or _field(f, r, "id", 4) != sid:
        raise ParseError(f"bad footer at {f.start}")
    f.end = r.p
    out.append(f)


def _looks_like_full(d, p):
    """A FULL section header at p: 0x04, be32 id, a printable idstr, be32
    instance, be32 version."""
    if p + 14 > len(d) or d[p] != FULL:
        return False
    n = d[p + 5]
    if n == 0 or p + 6 + n + 8 > len(d):
        return False
    name = d[p + 6:p + 6 + n]
    return all(32 < c < 127 for c in name)


def parse(data):
    """The list of pieces, in stream order, covering all of data."""
    d = bytes(data)
    r = Reader(d)
    out = []
    h = Piece("header", 0)
    if _field(h, r, "magic", 4) != MAGIC:
        raise ParseError("not a migration stream")
    _field(h, r, "version", 4)
    h.end = r.p
    out.append(h)
    blocks = {}
    ram_id = None
    # the configuration section (machine name, maybe subsections): up to
    # the START section of "ram"
    i = d.find(b"\x03ram", r.p)
    if i < 5 or d[i - 5] != START:
        raise ParseError("no ram START section")
    c = Piece("config", r.p)
    c.end = r.p = i - 5
    out.append(c)
    while r.p < len(d):
        s = Piece("section", r.p)
        s.sec = _field(s, r, "type", 1)
        if s.sec in (START, FULL):
            sid = _field(s, r, "id", 4)
            name = _idstr(s, r)
            _field(s, r, "instance", 4)
            _field(s, r, "version", 4)
            s.end = r.p
            out.append(s)
            if name == b"ram":
                ram_id = sid
                _ram_body(r, out, blocks)
                _footer(r, out, sid)
            else:
                # a device section: its body ends with a footer that the
                # next section's header or EOF follows
                body = Piece("device", r.p, name=name)
                foot = bytes([FOOTER]) + struct.pack(">I", sid)
                q = r.p
                while True:
                    q = d.find(foot, q)
                    if q < 0:
                        raise ParseError(f"no footer for section {name!r}")
                    nxt = q + 5
                    if nxt < len(d) and (d[nxt] == EOF or _looks_like_full(d, nxt)):
                        break
                    q += 1
                body.end = r.p = q
                out.append(body)
                _footer(r, out, sid)
        elif s.sec in (PART, END):
            sid = _field(s, r, "id", 4)
            s.end = r.p
            out.append(s)
            if sid != ram_id:
                raise ParseError(f"section {sid} is not ram")
            _ram_body(r, out, blocks)
            _footer(r, out, sid)
        elif s.sec == COMMAND:
            _field(s, r, "cmd", 2)
            n = _field(s, r, "len", 2)
            r.skip(n)
            s.end = r.p
            out.append(s)
        elif s.sec == EOF:
            s.end = r.p
            out.append(s)
            if r.p < len(d):
                v = Piece("vmdesc", r.p)
                v.end = r.p = len(d)
                out.append(v)
            break
        else:
            raise ParseError(f"section type {s.sec} at {s.start}")
    return out, blocks


def summary(pieces):
    """{record kind: count} and the other pieces' counts."""
    counts = {}
    for p in pieces:
        k = p.rkind if p.kind == "record" else p.kind
        counts[k] = counts.get(k, 0) + 1
    return counts


if __name__ == "__main__":
    import sys
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            pieces, blocks = parse(f.read())
        print(path, summary(pieces), {k.decode(): v for k, v in blocks.items()})
