/*
 * make bench-codec: the page codecs on a guest RAM image, one core, no QEMU.
 *
 * Usage: codec IMAGE [MAX_MIB]
 *
 * Takes every third 4 KiB page of IMAGE (a raw RAM dump) that is not all
 * zeroes, at most MAX_MIB of them (default 256), and for each codec
 * setting compresses them in frames of N pages, as the compression threads
 * do, then decodes them back and checks the result.  Prints a Markdown
 * table: ratio (page bytes / compressed bytes), CPU microseconds per page
 * to compress and to decode, each the best of REPS (default 5) passes
 * (decode: of the passes after the first, which also checks the pages).
 * zlib is one stream per page with the engine's settings (4 KiB window,
 * memLevel 7), the 9.0 wire format.
 *
 * With LEVELS=1 it sweeps the levels instead: zlib 1-9, zstd 1-19 on
 * frames of 256 and 1024 pages (level 1 with the engine's minimum match
 * of 6), lz4 and lz4's HC levels; the measurement behind the level that
 * follows the link (compress-level-max).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lz4.h>
#include <lz4hc.h>
#include <zlib.h>
#include <zstd.h>

#define PAGE 4096

typedef enum { ZLIB, ZSTD, LZ4, LZ4HC } Method;

typedef struct {
    Method method;
    int level;
    int frame;          /* pages per frame */
    int min_match;      /* zstd: 0 = the level's own */
} Setting;

static const Setting settings[] = {
    { ZLIB, 1, 1, 0 },
    { ZSTD, 1, 64, 0 },
    { ZSTD, 1, 256, 0 },
    { ZSTD, 1, 256, 6 },
    { ZSTD, 2, 64, 0 },
    { ZSTD, 2, 256, 0 },
    { ZSTD, 3, 256, 0 },
    { LZ4, 1, 64, 0 },
    { LZ4, 1, 256, 0 },
};

#define MAX_FRAME 1024
#define MAX_SETTINGS 64

/* LEVELS=1: every level of every method */
static int level_settings(Setting *out)
{
    static const int frames[] = { 256, MAX_FRAME };
    int n = 0;

    for (int l = 1; l <= 9; l++) {
        out[n++] = (Setting){ ZLIB, l, 1, 0 };
    }
    for (int f = 0; f < 2; f++) {
        for (int l = 1; l <= 19; l++) {
            out[n++] = (Setting){ ZSTD, l, frames[f], l == 1 ? 6 : 0 };
        }
        out[n++] = (Setting){ LZ4, 1, frames[f], 0 };
    }
    for (int l = 3; l <= 12; l += 3) {
        out[n++] = (Setting){ LZ4HC, l, 256, 0 };
    }
    return n;
}

static double cpu_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int is_zero(const uint8_t *p)
{
    for (int i = 0; i < PAGE / 8; i++) {
        if (((const uint64_t *)p)[i]) {
            return 0;
        }
    }
    return 1;
}

static void die(const char *what)
{
    fprintf(stderr, "codec: %s\n", what);
    exit(1);
}

/* Compress every frame of @mem into @out; returns the total size */
static size_t compress_all(const Setting *s, const uint8_t *mem, size_t pages,
                           uint8_t *out, size_t *pos, size_t *len)
{
    size_t frame = (size_t)s->frame * PAGE, frames = pages / s->frame;
    size_t total = 0;
    ZSTD_CCtx *cctx = NULL;
    z_stream z = { 0 };

    if (s->method == ZSTD) {
        cctx = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, s->level);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
        if (s->min_match) {
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, s->min_match);
        }
    } else if (s->method == ZLIB) {
        if (deflateInit2(&z, s->level, Z_DEFLATED, 12, 7,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            die("deflateInit2");
        }
    }
    for (size_t k = 0; k < frames; k++) {
        const uint8_t *src = mem + k * frame;
        size_t n;

        if (s->method == ZSTD) {
            n = ZSTD_compress2(cctx, out + total, ZSTD_compressBound(frame),
                               src, frame);
            if (ZSTD_isError(n)) {
                die("ZSTD_compress2");
            }
        } else if (s->method == LZ4 || s->method == LZ4HC) {
            int r = s->method == LZ4 ?
                LZ4_compress_default((const char *)src, (char *)out + total,
                                     frame, LZ4_compressBound(frame)) :
                LZ4_compress_HC((const char *)src, (char *)out + total,
                                frame, LZ4_compressBound(frame), s->level);
            if (r <= 0) {
                die("LZ4 compression failed");
            }
            n = r;
        } else {
            deflateReset(&z);
            z.next_in = (uint8_t *)src;
            z.avail_in = frame;
            z.next_out = out + total;
            z.avail_out = compressBound(frame);
            if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
                die("deflate");
            }
            n = z.total_out;
        }
        pos[k] = total;
        len[k] = n;
        total += n;
    }
    if (cctx) {
        ZSTD_freeCCtx(cctx);
    } else if (s->method == ZLIB) {
        deflateEnd(&z);
    }
    return total;
}

static void decode_all(const Setting *s, const uint8_t *mem, size_t pages,
                       const uint8_t *out, const size_t *pos,
                       const size_t *len, uint8_t *buf, int check)
{
    size_t frame = (size_t)s->frame * PAGE, frames = pages / s->frame;
    ZSTD_DCtx *dctx = s->method == ZSTD ? ZSTD_createDCtx() : NULL;
    z_stream z = { 0 };

    if (s->method == ZLIB && inflateInit(&z) != Z_OK) {
        die("inflateInit");
    }
    for (size_t k = 0; k < frames; k++) {
        size_t n;

        if (s->method == ZSTD) {
            n = ZSTD_decompressDCtx(dctx, buf, frame, out + pos[k], len[k]);
        } else if (s->method == LZ4 || s->method == LZ4HC) {
            int r = LZ4_decompress_safe((const char *)out + pos[k],
                                        (char *)buf, len[k], frame);
            n = r < 0 ? 0 : r;
        } else {
            inflateReset(&z);
            z.next_in = (uint8_t *)out + pos[k];
            z.avail_in = len[k];
            z.next_out = buf;
            z.avail_out = frame;
            n = inflate(&z, Z_FINISH) == Z_STREAM_END ? z.total_out : 0;
        }
        if (n != frame || (check && memcmp(buf, mem + k * frame, frame))) {
            die("a frame did not decode to its pages");
        }
    }
    if (dctx) {
        ZSTD_freeDCtx(dctx);
    } else if (s->method == ZLIB) {
        inflateEnd(&z);
    }
}

/*
 * The zlib load path of QEMU 2.4 to 9.0 inflated each page straight into
 * guest RAM; this series inflates into the thread's buffer and copies the
 * page once it decoded to exactly one page.  Both, into an area as large
 * as the sample (guest RAM: mostly not in the cache); returns us/page.
 */
static double zlib_load(const uint8_t *out, const size_t *pos,
                        const size_t *len, size_t pages, uint8_t *ram,
                        uint8_t *buf, int bounce)
{
    z_stream z = { 0 };
    double t0;

    if (inflateInit(&z) != Z_OK) {
        die("inflateInit");
    }
    t0 = cpu_now();
    for (size_t k = 0; k < pages; k++) {
        uint8_t *dst = bounce ? buf : ram + k * PAGE;

        inflateReset(&z);
        z.next_in = (uint8_t *)out + pos[k];
        z.avail_in = len[k];
        z.next_out = dst;
        z.avail_out = PAGE;
        if (inflate(&z, Z_FINISH) != Z_STREAM_END || z.total_out != PAGE) {
            die("a page did not decode");
        }
        if (bounce) {
            memcpy(ram + k * PAGE, buf, PAGE);
        }
    }
    t0 = cpu_now() - t0;
    inflateEnd(&z);
    return t0 * 1e6 / pages;
}

int main(int argc, char **argv)
{
    static const char *names[] = { "zlib", "zstd", "lz4", "lz4hc" };
    Setting sweep[MAX_SETTINGS];
    const Setting *list = settings;
    int nsettings = sizeof(settings) / sizeof(settings[0]);
    size_t max = (argc > 2 ? strtoull(argv[2], NULL, 0) : 256) << 20;
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 5;
    uint8_t page[PAGE], *mem, *out, *buf;
    size_t pages = 0, all = 0, *pos, *len;
    FILE *f;

    if (argc < 2) {
        die("usage: [REPS=N] codec IMAGE [MAX_MIB]");
    }
    if (reps < 2) {
        reps = 2;   /* the first pass checks the output, untimed decode */
    }
    f = fopen(argv[1], "rb");
    if (!f) {
        die("cannot open the image");
    }
    mem = malloc(max);
    while (fread(page, PAGE, 1, f) == 1) {
        all++;
        /* a sample spread over all of RAM */
        if (all % 3 == 0 && !is_zero(page) && pages * PAGE < max) {
            memcpy(mem + pages++ * PAGE, page, PAGE);
        }
    }
    fclose(f);
    pages -= pages % MAX_FRAME;
    if (!pages) {
        die("no non-zero pages in the image");
    }
    out = malloc(pages * PAGE * 2);
    buf = malloc(MAX_FRAME * PAGE);
    pos = malloc(pages * sizeof(*pos));
    len = malloc(pages * sizeof(*len));
    memset(out, 0, pages * PAGE * 2);

    printf("Image %s: %zu pages; used %zu (every third "
           "page that is not all zeroes); best of %d passes, one core.\n\n",
           argv[1], all, pages, reps);
    printf("| method | level | pages/frame | min match | ratio | "
           "compress us/page | decode us/page |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    if (getenv("LEVELS") && atoi(getenv("LEVELS"))) {
        nsettings = level_settings(sweep);
        list = sweep;
    }
    for (int i = 0; i < nsettings; i++) {
        const Setting *s = &list[i];
        double best_c = 1e9, best_d = 1e9;
        size_t total = 0;

        for (int r = 0; r < reps; r++) {
            double t0 = cpu_now(), t1, t2;

            total = compress_all(s, mem, pages, out, pos, len);
            t1 = cpu_now();
            decode_all(s, mem, pages, out, pos, len, buf, r == 0);
            t2 = cpu_now();
            best_c = t1 - t0 < best_c ? t1 - t0 : best_c;
            best_d = r && t2 - t1 < best_d ? t2 - t1 : best_d;
        }
        printf("| %s | %d | %d | %s | %.3f | %.2f | %.2f |\n",
               names[s->method], s->level, s->frame,
               s->min_match ? (s->min_match == 6 ? "6" : "?") : "level's",
               (double)pages * PAGE / total, best_c * 1e6 / pages,
               best_d * 1e6 / pages);
    }

    /* zlib level 1, one page per stream: the 9.0 format's load path */
    {
        static const Setting z1 = { ZLIB, 1, 1, 0 };
        uint8_t *ram = malloc(pages * PAGE);
        double direct = 1e9, bounce = 1e9;

        memset(ram, 1, pages * PAGE);
        compress_all(&z1, mem, pages, out, pos, len);
        for (int r = 0; r < reps; r++) {
            double d = zlib_load(out, pos, len, pages, ram, buf, 0);
            double b = zlib_load(out, pos, len, pages, ram, buf, 1);

            direct = d < direct ? d : direct;
            bounce = b < bounce ? b : bounce;
        }
        if (memcmp(ram, mem, pages * PAGE)) {
            die("zlib load: wrong pages");
        }
        printf("\nzlib level 1, one page per stream, decoded into an area "
               "of %zu MiB: straight into it %.2f us/page, into a buffer "
               "and copied %.2f us/page (%+.1f %%).\n",
               pages * PAGE >> 20, direct, bounce,
               (bounce / direct - 1) * 100);
        free(ram);
    }
    return 0;
}
