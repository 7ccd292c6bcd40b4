/*
 * make bench-xbzrle: the migration thread's XBZRLE work per page, measured
 * on QEMU's own xbzrle_encode_buffer() (migration/xbzrle.c, compiled with
 * this file by bench/xbzrle.sh): the encode of a 4 KiB page against its
 * cached copy for several amounts of change, and the copy into the cache
 * that follows.  It decides whether
 * XBZRLE must move into the compression threads (issue 12): only if the
 * migration thread cannot keep up with the link.
 */
#include "qemu/osdep.h"
#include "migration/xbzrle.h"

#define PAGES 4096
#define PAGE_SIZE_B 4096
#define REPS 7

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    static const int changed[] = { 8, 64, 512, 2048, 4096 };
    uint8_t *old = g_malloc(PAGES * PAGE_SIZE_B);
    uint8_t *new = g_malloc(PAGES * PAGE_SIZE_B);
    uint8_t *dst = g_malloc(PAGE_SIZE_B);
    unsigned seed = 1;
    double best;
    size_t i;
    int c, p, k, rep;

    /* text-like pages: XBZRLE's case is a page with a few words changed */
    for (i = 0; i < PAGES * PAGE_SIZE_B; i++) {
        seed = seed * 1103515245 + 12345;
        old[i] = "the quick brown fox jumps over 0123456789"[(seed >> 16) % 41];
    }
    printf("| bytes changed per page | encode us/page | delta B/page | overflows |\n"
           "|---:|---:|---:|---:|\n");
    for (c = 0; c < ARRAY_SIZE(changed); c++) {
        long bytes = 0, overflow = 0;

        memcpy(new, old, PAGES * PAGE_SIZE_B);
        for (p = 0; p < PAGES; p++) {
            int off = (p * 97 * 8) % (PAGE_SIZE_B - changed[c] + 1);

            for (k = 0; k < changed[c]; k++) {
                seed = seed * 1103515245 + 12345;
                new[p * PAGE_SIZE_B + off + k] ^= 1 + (seed >> 16) % 255;
            }
        }
        best = 1e9;
        for (rep = 0; rep < REPS; rep++) {
            double t0 = now(), t;

            bytes = overflow = 0;
            for (p = 0; p < PAGES; p++) {
                int n = xbzrle_encode_buffer(old + p * PAGE_SIZE_B,
                                             new + p * PAGE_SIZE_B,
                                             PAGE_SIZE_B, dst, PAGE_SIZE_B);
                if (n < 0) {
                    overflow++;
                } else {
                    bytes += n;
                }
            }
            t = now() - t0;
            best = MIN(best, t);
        }
        printf("| %d | %.2f | %ld | %ld of %d |\n", changed[c],
               best / PAGES * 1e6, bytes / PAGES, overflow, PAGES);
    }
    best = 1e9;
    for (rep = 0; rep < REPS; rep++) {
        double t0 = now();

        for (p = 0; p < PAGES; p++) {
            memcpy(old + p * PAGE_SIZE_B, new + p * PAGE_SIZE_B, PAGE_SIZE_B);
        }
        best = MIN(best, now() - t0);
    }
    printf("\ncopy into the cache: %.2f us/page (best of %d)\n",
           best / PAGES * 1e6, REPS);
    return 0;
}
