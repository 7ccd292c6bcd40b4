/*
 * LD_PRELOAD shim over zlib, for fault injection in the e2e tests.
 * Environment:
 *   ZSHIM_FAIL_DEFLATE_INIT=N  the N-th deflateInit2_() call (from 1) fails
 *                              with Z_MEM_ERROR; the others work
 *   ZSHIM_FAIL_INFLATE_INIT=N  the same for inflateInit_()
 *   ZSHIM_LARGE=1              behave like a zlib whose output can exceed
 *                              stock zlib's compressBound() (zlib-ng at
 *                              level 1): compressBound() returns more, and
 *                              a deflate(Z_FINISH) of incompressible input
 *                              is written as a valid stream of 64-byte
 *                              stored blocks, larger than stock zlib's
 *                              bound; when it does not fit, deflate()
 *                              returns Z_OK with the output full, as zlib
 *                              does.
 * Every injected fault is logged on stderr ("zshim: ...").
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static long env_long(const char *name)
{
    const char *v = getenv(name);

    return v ? strtol(v, NULL, 10) : 0;
}

static void *real(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (!fn) {
        fprintf(stderr, "zshim: no %s\n", name);
        abort();
    }
    return fn;
}

static atomic_long deflate_inits, inflate_inits;

/* Count a call of @what; true (and @strm->msg set) if $@env names it */
static int inject_failure(atomic_long *calls, const char *env,
                          const char *what, z_streamp strm)
{
    long n = atomic_fetch_add(calls, 1) + 1;

    if (n != env_long(env)) {
        return 0;
    }
    fprintf(stderr, "zshim: %s call %ld fails\n", what, n);
    strm->msg = (char *)"injected failure";
    return 1;
}

int deflateInit2_(z_streamp strm, int level, int method, int windowBits,
                  int memLevel, int strategy, const char *version,
                  int stream_size)
{
    static int (*fn)(z_streamp, int, int, int, int, int, const char *, int);

    if (inject_failure(&deflate_inits, "ZSHIM_FAIL_DEFLATE_INIT",
                       "deflateInit2_", strm)) {
        return Z_MEM_ERROR;
    }
    if (!fn) {
        fn = real("deflateInit2_");
    }
    return fn(strm, level, method, windowBits, memLevel, strategy, version,
              stream_size);
}

int inflateInit_(z_streamp strm, const char *version, int stream_size)
{
    static int (*fn)(z_streamp, const char *, int);

    if (inject_failure(&inflate_inits, "ZSHIM_FAIL_INFLATE_INIT",
                       "inflateInit_", strm)) {
        return Z_MEM_ERROR;
    }
    if (!fn) {
        fn = real("inflateInit_");
    }
    return fn(strm, version, stream_size);
}

uLong compressBound(uLong len)
{
    static uLong (*fn)(uLong);

    if (env_long("ZSHIM_LARGE")) {
        return len + (len >> 3) + 64;
    }
    if (!fn) {
        fn = real("compressBound");
    }
    return fn(len);
}

#define STORED_CHUNK 64

/* A zlib stream of @len bytes of @src in stored blocks; returns its size */
static size_t stored_stream(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint8_t *p = dst;
    uLong adler = adler32(0, src, len);
    size_t off = 0;

    *p++ = 0x78;
    *p++ = 0x01;
    do {
        size_t n = len - off < STORED_CHUNK ? len - off : STORED_CHUNK;

        *p++ = off + n == len;          /* BFINAL, BTYPE 00 */
        *p++ = n & 0xff;
        *p++ = n >> 8;
        *p++ = ~n & 0xff;
        *p++ = (~n >> 8) & 0xff;
        memcpy(p, src + off, n);
        p += n;
        off += n;
    } while (off < len);
    *p++ = adler >> 24;
    *p++ = adler >> 16;
    *p++ = adler >> 8;
    *p++ = adler;
    return p - dst;
}

int deflate(z_streamp strm, int flush)
{
    static int (*fn)(z_streamp, int);
    const Bytef *in = strm->next_in;
    uInt in_len = strm->avail_in;
    Bytef *out = strm->next_out;
    uInt out_len = strm->avail_out;
    uint8_t tmp[1 << 16];
    size_t n;
    int ret;

    if (!fn) {
        fn = real("deflate");
    }
    if (!env_long("ZSHIM_LARGE") || flush != Z_FINISH || strm->total_in ||
        in_len > 8192) {
        return fn(strm, flush);
    }
    /* compress for real; incompressible input becomes the larger stream */
    strm->next_out = tmp;
    strm->avail_out = sizeof(tmp);
    ret = fn(strm, flush);
    n = sizeof(tmp) - strm->avail_out;
    if (ret != Z_STREAM_END || n < in_len * 3 / 4) {
        if (n > out_len) {
            n = out_len;
            ret = Z_OK;
        }
        memcpy(out, tmp, n);
    } else {
        n = stored_stream(tmp, in, in_len);
        if (n > out_len) {
            n = out_len;
            ret = Z_OK;
        }
        memcpy(out, tmp, n);
    }
    strm->next_out = out + n;
    strm->avail_out = out_len - n;
    return ret;
}
