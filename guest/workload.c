/*
 * workload.c - guest memory workload for the migration tests.
 *
 * Runs as PID 1 (/init) of a tiny initramfs.  It fills a memory region with
 * realistic, deterministic content (zero pages, x86 code, text, heap-like
 * data, random bytes), keeps a 64-bit checksum per page, dirties pages at a
 * fixed rate and verifies pages continuously.  Everything it has to say goes
 * to the serial console as single lines starting with "WL ".
 *
 * Parameters come from /proc/cmdline as dotted "wl.KEY=VALUE" words (the
 * kernel keeps dotted parameters away from init's argv and environment):
 *
 *   wl.mode=idle|dirty   idle: verify only; dirty: dirty and verify (dirty)
 *   wl.mb=N              region size in MiB (64)
 *   wl.seed=N            content and dirtying seed (1)
 *   wl.dirty_mbps=N      MiB/s of pages dirtied, i.e. N*256 pages/s (8)
 *   wl.check_mbps=N      MiB/s of pages verified, round-robin (64)
 *   wl.hb_ms=N           heartbeat period in ms (1000)
 *   wl.pfnmap=0|1        also print the region's physical runs (0)
 *   wl.fill=mix|random   page content: the realistic mix, or all random (mix)
 *   wl.grow_mb=N         after READY, take N MiB more, never touched before (0)
 *   wl.modules=0|1       load the kernel modules in /modules, in name order (0)
 *   wl.grow_mbps=N       ... at N MiB/s, filled like the region (8)
 *
 * Serial protocol (one line per event):
 *
 *   WL START mode=.. mb=.. seed=.. dirty_mbps=.. check_mbps=.. hb_ms=.. pfnmap=..
 *   WL FILL zero=.. code=.. text=.. heap=.. random=..   (pages per class)
 *   WL READY mode=.. mb=.. pages=.. seed=.. fill_ms=..
 *   WL PFN page=<index> pfn=0x<hex>           (first, middle and last page)
 *   WL PFNRUN page=<index> pfn=0x<hex> n=<pages>   (only with wl.pfnmap=1)
 *   WL HB seq=.. t_ms=.. dirtied=.. checked=.. passes=.. errors=..[ grown=..]
 *   WL GROWN pages=<total>            (once, when wl.grow_mb is reached)
 *   WL MODULE <file> loaded|error=..  (with wl.modules=1, before START)
 *   WL CORRUPT page=<index> expect=0x<sum> got=0x<sum>
 *   WL CORRUPT-SUPPRESSED n=<count>   (CORRUPT lines beyond 32 per heartbeat)
 *   WL WARN ... / WL FATAL ...
 *
 * On a fatal error it prints the reason and sleeps forever: PID 1 must not
 * exit, that would panic the kernel.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE        4096u
#define WORDS       (PAGE / 8)
#define TICK_NS     10000000L           /* 10 ms */
#define TICKS_PER_S 100
#define DIRTY_WORDS 4                   /* words written per dirty op */
#define MAX_CORRUPT_LINES 32            /* per heartbeat period */

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* One line, one write(): lines do not interleave with kernel messages. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    for (char *p = buf; n > 0;) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= w;
    }
}

static void __attribute__((noreturn)) hang(void)
{
    for (;;)
        pause();
}

#define fatal(...) do { say("WL FATAL " __VA_ARGS__); hang(); } while (0)

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */

/* wl.fill=random: every page random (incompressible), for the benchmark */
static int fill_random;

struct params {
    int idle;
    uint64_t mb, seed, dirty_mbps, check_mbps, hb_ms, pfnmap;
    uint64_t grow_mb, grow_mbps, modules;
};

static uint64_t parse_num(const char *key, const char *val, uint64_t min,
                          uint64_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(val, &end, 0);
    if (errno || end == val || *end || v < min || v > max)
        fatal("bad value wl.%s=%s (want %" PRIu64 "..%" PRIu64 ")",
              key, val, min, max);
    return v;
}

static void parse_cmdline(struct params *p)
{
    char buf[4096], *save = NULL, *tok;
    ssize_t n = 0;
    int fd = open("/proc/cmdline", O_RDONLY);

    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    if (n < 0)
        n = 0;
    buf[n] = 0;

    for (tok = strtok_r(buf, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char *key, *val;

        if (strncmp(tok, "wl.", 3))
            continue;
        key = tok + 3;
        val = strchr(key, '=');
        if (!val)
            fatal("parameter without value: %s", tok);
        *val++ = 0;
        if (!strcmp(key, "mode")) {
            if (!strcmp(val, "idle"))
                p->idle = 1;
            else if (!strcmp(val, "dirty"))
                p->idle = 0;
            else
                fatal("bad value wl.mode=%s (want idle or dirty)", val);
        } else if (!strcmp(key, "mb")) {
            p->mb = parse_num(key, val, 1, 1u << 20);
        } else if (!strcmp(key, "seed")) {
            p->seed = parse_num(key, val, 0, UINT64_MAX);
        } else if (!strcmp(key, "dirty_mbps")) {
            p->dirty_mbps = parse_num(key, val, 0, 1u << 20);
        } else if (!strcmp(key, "modules")) {
            p->modules = parse_num(key, val, 0, 1);
        } else if (!strcmp(key, "grow_mb")) {
            p->grow_mb = parse_num(key, val, 0, 1u << 20);
        } else if (!strcmp(key, "grow_mbps")) {
            p->grow_mbps = parse_num(key, val, 1, 1u << 20);
        } else if (!strcmp(key, "check_mbps")) {
            p->check_mbps = parse_num(key, val, 0, 1u << 20);
        } else if (!strcmp(key, "hb_ms")) {
            p->hb_ms = parse_num(key, val, 10, 3600000);
        } else if (!strcmp(key, "pfnmap")) {
            p->pfnmap = parse_num(key, val, 0, 1);
        } else if (!strcmp(key, "fill")) {
            if (!strcmp(val, "random"))
                fill_random = 1;
            else if (strcmp(val, "mix"))
                fatal("bad value wl.fill=%s (want mix or random)", val);
        } else {
            say("WL WARN unknown parameter wl.%s", key);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* System setup                                                             */

static void mount_fs(const char *src, const char *dir, const char *type)
{
    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, NULL) && errno != EBUSY)
        say("WL WARN mount %s on %s: %s", type, dir, strerror(errno));
}

static void setup_system(void)
{
    int fd;

    mount_fs("proc", "/proc", "proc");
    mount_fs("sysfs", "/sys", "sysfs");
    mount_fs("devtmpfs", "/dev", "devtmpfs");

    /* The kernel opened /dev/console of the initramfs for us if it was
     * there; reopen it from devtmpfs so that output works either way. */
    fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    /* Start on a fresh line: the firmware leaves escape sequences (and no
     * newline) on the serial port, and every line must start with "WL ". */
    say("%s", "");

    /* Keep compaction away from mlocked pages: their PFNs must not move,
     * a test corrupts them from outside at the printed physical address. */
    fd = open("/proc/sys/vm/compact_unevictable_allowed", O_WRONLY);
    if (fd < 0 || write(fd, "0\n", 2) != 2)
        say("WL WARN cannot write vm.compact_unevictable_allowed: %s",
            strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* ------------------------------------------------------------------------ */
/* Pseudo-random numbers and checksums                                      */

static uint64_t mix64(uint64_t x)       /* splitmix64 finalizer */
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t rnd(uint64_t *state)    /* splitmix64 */
{
    *state += 0x9e3779b97f4a7c15ull;
    return mix64(*state);
}

/* Contribution of one word to its page's checksum.  For a fixed index it is
 * a bijection of the word, so any single changed word changes the sum. */
static inline uint64_t word_mix(uint64_t w, unsigned idx)
{
    uint64_t m = (w ^ (idx * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;

    return m ^ (m >> 31);
}

static uint64_t page_sum(const uint64_t *w)
{
    uint64_t s = 0;

    for (unsigned i = 0; i < WORDS; i++)
        s += word_mix(w[i], i);
    return s;
}

/* The modules of /modules, in name order (the build numbers them so that
 * each comes after those it needs), e.g. virtio_balloon and its bus. */
static void load_modules(void)
{
    struct dirent **ents;
    int n = scandir("/modules", &ents, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        char path[512];
        int fd;

        if (ents[i]->d_name[0] == '.') {
            free(ents[i]);
            continue;
        }
        snprintf(path, sizeof(path), "/modules/%s", ents[i]->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || syscall(SYS_finit_module, fd, "", 0))
            say("WL MODULE %s error=%s", ents[i]->d_name, strerror(errno));
        else
            say("WL MODULE %s loaded", ents[i]->d_name);
        if (fd >= 0)
            close(fd);
        free(ents[i]);
    }
    if (n < 0)
        say("WL WARN no /modules: %s", strerror(errno));
    else
        free(ents);
}

/* ------------------------------------------------------------------------ */
/* Corpus: files of /corpus/code and /corpus/text, concatenated by name     */

struct corpus {
    unsigned char *data;
    size_t len;
};

static void load_corpus(const char *dir, struct corpus *c)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);

    if (n < 0)
        fatal("cannot read %s: %s", dir, strerror(errno));
    c->data = NULL;
    c->len = 0;
    for (int i = 0; i < n; i++) {
        char path[512];
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
        free(ents[i]);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            c->data = realloc(c->data, c->len + st.st_size);
            if (!c->data)
                fatal("out of memory loading %s", path);
            for (off_t done = 0; done < st.st_size;) {
                ssize_t r = read(fd, c->data + c->len + done,
                                 st.st_size - done);
                if (r <= 0)
                    fatal("read %s: %s", path, r ? strerror(errno) : "EOF");
                done += r;
            }
            c->len += st.st_size;
        }
        close(fd);
    }
    free(ents);
    if (c->len < PAGE)
        fatal("corpus %s too small (%zu bytes)", dir, c->len);
}

/* ------------------------------------------------------------------------ */
/* Page content                                                             */

enum { ZERO, CODE, TEXT, HEAP, RANDOM, NCLASSES };
static const char *const class_name[NCLASSES] = {
    "zero", "code", "text", "heap", "random"
};

/* Class shares in percent: 15 zero, 30 code, 25 text, 20 heap, 10 random. */
static int page_class(uint64_t h)
{
    unsigned r = h % 100;

    return r < 15 ? ZERO : r < 45 ? CODE : r < 70 ? TEXT : r < 90 ? HEAP
                                                                   : RANDOM;
}

static void copy_window(unsigned char *p, const struct corpus *c, uint64_t h)
{
    memcpy(p, c->data + h % (c->len - PAGE + 1), PAGE);
}

/*
 * Heap-like data: a run of malloc-style chunks of 32..128 bytes, each with a
 * size header followed by a mix of pointers into one 64 KiB arena near
 * 0x00007fxxxxxxxxxx, small integers, short strings and zero padding.
 */
static void fill_heap(unsigned char *p, uint64_t h, const struct corpus *text)
{
    uint64_t st = h;
    uint64_t arena = 0x00007f0000000000ull | (rnd(&st) & 0xffffff0000ull);
    unsigned off = 0;

    while (off < PAGE) {
        unsigned size = 32 + 16 * (rnd(&st) % 7), i = 1;
        uint64_t *w = (uint64_t *)(p + off);

        if (size > PAGE - off)
            size = PAGE - off;
        w[0] = size | 1;                        /* chunk header */
        while (i < size / 8) {
            uint64_t r = rnd(&st);

            switch (r % 8) {
            case 0: case 1: case 2:             /* pointer */
                w[i++] = arena + ((r >> 8) & 0xfff0);
                break;
            case 3: case 4:                     /* small integer */
                w[i++] = (r >> 8) % 1000;
                break;
            case 5: {                           /* short string, NUL-padded */
                unsigned nw = 1 + (r >> 8) % 3;
                const unsigned char *s = text->data +
                                         (r >> 16) % (text->len - 24);
                if (nw > size / 8 - i)
                    nw = size / 8 - i;
                memset(&w[i], 0, nw * 8);
                memcpy(&w[i], s, nw * 8 - 1);
                i += nw;
                break;
            }
            default:                            /* padding */
                w[i++] = 0;
            }
        }
        off += size;
    }
}

static int fill_page(unsigned char *p, uint64_t seed, uint64_t idx,
                     const struct corpus *code, const struct corpus *text)
{
    uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + idx + 1);
    uint64_t h2 = mix64(h), st = h2;
    int cls = fill_random ? RANDOM : page_class(h);

    switch (cls) {
    case ZERO:
        memset(p, 0, PAGE);
        break;
    case CODE:
        copy_window(p, code, h2);
        break;
    case TEXT:
        copy_window(p, text, h2);
        break;
    case HEAP:
        fill_heap(p, h2, text);
        break;
    default:
        for (unsigned i = 0; i < WORDS; i++)
            ((uint64_t *)p)[i] = rnd(&st);
    }
    return cls;
}

/* ------------------------------------------------------------------------ */
/* Physical addresses                                                       */

/* PFN of the page at virtual address va from /proc/self/pagemap, 0 if it is
 * not present (or hidden, which happens without CAP_SYS_ADMIN). */
static uint64_t pfn_of(int fd, const void *va)
{
    uint64_t e;

    if (pread(fd, &e, 8, (uintptr_t)va / PAGE * 8) != 8)
        return 0;
    return (e >> 63) ? e & ((1ull << 55) - 1) : 0;
}

static void print_pfns(const unsigned char *region, uint64_t pages, int runs)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t which[3] = { 0, pages / 2, pages - 1 };

    if (fd < 0) {
        say("WL WARN cannot open /proc/self/pagemap: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < 3; i++) {
        uint64_t pfn = pfn_of(fd, region + which[i] * PAGE);
        if (!pfn)
            say("WL WARN page %" PRIu64 " has no PFN", which[i]);
        say("WL PFN page=%" PRIu64 " pfn=0x%" PRIx64, which[i], pfn);
    }
    if (runs) {                 /* maximal runs of consecutive PFNs */
        uint64_t start = 0, first = pfn_of(fd, region), prev = first;

        for (uint64_t i = 1; i <= pages; i++) {
            uint64_t pfn = i < pages ? pfn_of(fd, region + i * PAGE) : 0;
            if (i == pages || !pfn || pfn != prev + 1) {
                say("WL PFNRUN page=%" PRIu64 " pfn=0x%" PRIx64 " n=%" PRIu64,
                    start, first, i - start);
                start = i;
                first = pfn;
            }
            prev = pfn;
        }
    }
    close(fd);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    struct params prm = {
        .idle = 0, .mb = 64, .seed = 1, .dirty_mbps = 8, .check_mbps = 64,
        .hb_ms = 1000, .pfnmap = 0, .grow_mb = 0, .grow_mbps = 8,
    };
    struct corpus code, text;
    unsigned char *region;
    uint64_t *sums, pages, grow_pages, active, t0, count[NCLASSES] = { 0 };

    if (getpid() != 1) {
        fprintf(stderr, "workload: this is an init for the test guest; "
                "it only runs as PID 1\n");
        return 1;
    }
    setup_system();
    parse_cmdline(&prm);
    if (prm.modules)
        load_modules();
    say("WL START mode=%s mb=%" PRIu64 " seed=%" PRIu64 " dirty_mbps=%" PRIu64
        " check_mbps=%" PRIu64 " hb_ms=%" PRIu64 " pfnmap=%" PRIu64
        " grow_mb=%" PRIu64 " grow_mbps=%" PRIu64,
        prm.idle ? "idle" : "dirty", prm.mb, prm.seed, prm.dirty_mbps,
        prm.check_mbps, prm.hb_ms, prm.pfnmap, prm.grow_mb, prm.grow_mbps);

    t0 = now_ns();                      /* fill_ms: allocation to READY */

    /* The region: no huge pages (a THP split or collapse would move it),
     * then locked and populated by mlockall along with everything else.
     * With wl.grow_mb, the region is that much larger and locked as it is
     * touched (MCL_ONFAULT): the part past wl.mb is touched after READY,
     * page by page, for the first time. */
    pages = prm.mb * (1024 * 1024 / PAGE);
    grow_pages = prm.grow_mb * (1024 * 1024 / PAGE);
    region = mmap(NULL, (pages + grow_pages) * PAGE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        fatal("mmap %" PRIu64 " MiB: %s", prm.mb + prm.grow_mb,
              strerror(errno));
    madvise(region, (pages + grow_pages) * PAGE, MADV_NOHUGEPAGE);
    if (mlockall(MCL_CURRENT | MCL_FUTURE | (grow_pages ? MCL_ONFAULT : 0)))
        fatal("mlockall: %s (region of %" PRIu64 " MiB too large?)",
              strerror(errno), prm.mb);
    sums = calloc(pages + grow_pages, sizeof(*sums));
    if (!sums)
        fatal("out of memory for %" PRIu64 " checksums", pages);

    load_corpus("/corpus/code", &code);
    load_corpus("/corpus/text", &text);
    for (uint64_t i = 0; i < pages; i++) {
        count[fill_page(region + i * PAGE, prm.seed, i, &code, &text)]++;
        sums[i] = page_sum((uint64_t *)(region + i * PAGE));
    }
    say("WL FILL %s=%" PRIu64 " %s=%" PRIu64 " %s=%" PRIu64 " %s=%" PRIu64
        " %s=%" PRIu64, class_name[0], count[0], class_name[1], count[1],
        class_name[2], count[2], class_name[3], count[3], class_name[4],
        count[4]);
    say("WL READY mode=%s mb=%" PRIu64 " pages=%" PRIu64 " seed=%" PRIu64
        " fill_ms=%" PRIu64, prm.idle ? "idle" : "dirty", prm.mb, pages,
        prm.seed, (now_ns() - t0) / 1000000);
    print_pfns(region, pages, prm.pfnmap);

    /* Main loop: per 10 ms tick, that tick's dirty and check quotas.  The
     * quotas are in pages per second; the remainders carry over so that
     * rates that are not multiples of 100 pages/s come out right. */
    uint64_t dirty_pps = prm.idle ? 0 : prm.dirty_mbps * 256;
    uint64_t check_pps = prm.check_mbps * 256;
    uint64_t dirty_credit = 0, check_credit = 0, cursor = 0;
    uint64_t dirtied = 0, checked = 0, passes = 0, errors = 0, seq = 0;
    uint64_t shown = 0, suppressed = 0;
    uint64_t rng = mix64(prm.seed ^ 0x5eed5eed5eed5eedull);
    uint64_t next = now_ns(), hb_next = next + prm.hb_ms * 1000000;
    uint64_t grow_pps = prm.grow_mbps * 256, grow_credit = 0;

    active = pages;                     /* pages in use, grown after READY */

    for (;;) {
        uint64_t n, now;

        if (active < pages + grow_pages) {
            grow_credit += grow_pps;
            for (n = grow_credit / TICKS_PER_S;
                 n && active < pages + grow_pages; n--, active++) {
                unsigned char *p = region + active * PAGE;

                fill_page(p, prm.seed, active, &code, &text);
                sums[active] = page_sum((uint64_t *)p);
            }
            grow_credit %= TICKS_PER_S;
            if (active == pages + grow_pages)
                say("WL GROWN pages=%" PRIu64, active);
        }

        dirty_credit += dirty_pps;
        for (n = dirty_credit / TICKS_PER_S; n; n--) {
            uint64_t page = rnd(&rng) % active;
            uint64_t *w = (uint64_t *)(region + page * PAGE);

            for (int k = 0; k < DIRTY_WORDS; k++) {
                uint64_t r = rnd(&rng), v = rnd(&rng);
                unsigned idx = r % WORDS;

                sums[page] += word_mix(v, idx) - word_mix(w[idx], idx);
                w[idx] = v;
            }
            dirtied++;
        }
        dirty_credit %= TICKS_PER_S;

        check_credit += check_pps;
        for (n = check_credit / TICKS_PER_S; n; n--) {
            uint64_t got = page_sum((uint64_t *)(region + cursor * PAGE));

            if (got != sums[cursor]) {
                errors++;
                if (shown++ < MAX_CORRUPT_LINES)
                    say("WL CORRUPT page=%" PRIu64 " expect=0x%016" PRIx64
                        " got=0x%016" PRIx64, cursor, sums[cursor], got);
                else
                    suppressed++;
                sums[cursor] = got;     /* report each corruption once */
            }
            checked++;
            if (++cursor == active) {
                cursor = 0;
                passes++;
            }
        }
        check_credit %= TICKS_PER_S;

        now = now_ns();
        if (now >= hb_next) {
            if (suppressed)
                say("WL CORRUPT-SUPPRESSED n=%" PRIu64, suppressed);
            if (grow_pages)
                say("WL HB seq=%" PRIu64 " t_ms=%" PRIu64 " dirtied=%" PRIu64
                    " checked=%" PRIu64 " passes=%" PRIu64 " errors=%" PRIu64
                    " grown=%" PRIu64, seq++, now / 1000000, dirtied, checked,
                    passes, errors, active - pages);
            else
                say("WL HB seq=%" PRIu64 " t_ms=%" PRIu64 " dirtied=%" PRIu64
                    " checked=%" PRIu64 " passes=%" PRIu64 " errors=%" PRIu64,
                    seq++, now / 1000000, dirtied, checked, passes, errors);
            shown = suppressed = 0;
            hb_next += prm.hb_ms * 1000000;
            if (hb_next <= now)                 /* fell far behind */
                hb_next = now + prm.hb_ms * 1000000;
        }

        /* Sleep to the next tick.  A short overrun is caught up on the
         * following ticks; a long one (>100 ms) is forgiven, so the rates
         * then show what the machine can do. */
        next += TICK_NS;
        if (now > next + 10 * TICK_NS)
            next = now;
        if (next > now) {
            struct timespec ts = {
                .tv_sec = next / 1000000000u, .tv_nsec = next % 1000000000u,
            };
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
                   == EINTR)
                ;
        }
    }
}
