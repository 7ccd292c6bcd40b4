/*
 * delayline: a link with a fixed one-way delay between two network
 * namespaces, in userspace (for kernels without sch_netem).
 *
 *   delayline NS_A DEV_A NS_B DEV_B DELAY_US [BUFFER_MB]
 *
 * Creates TUN device DEV_A in namespace NS_A and DEV_B in NS_B (named
 * namespaces, /var/run/netns/NAME), prints "ready" on stdout, and then
 * forwards every packet read from one device to the other DELAY_US
 * microseconds later (CLOCK_MONOTONIC), in both directions.  The caller
 * gives the devices their addresses and brings them up; the devices go
 * away when this program exits (they are not persistent).
 *
 * IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4/6): the kernel hands over
 * TCP super-packets of up to 64 KiB with a virtio-net header, which is
 * written to the other device as it came.  Each direction has a ring
 * buffer of BUFFER_MB MiB (default 32: 1 Gbit/s x 100 ms is 12.5 MB); a
 * packet that finds its ring full is dropped, nothing else is.  Rate and
 * queueing belong to tc on the devices (tbf).
 *
 * Runs SCHED_FIFO (priority 1) where it may, so that busy CPUs delay
 * packets as little as possible.
 *
 * SIGTERM or SIGINT (also sent when the parent process exits): print
 * the counts per direction on stderr and exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PKT (65536 + 256)  /* a GSO packet, its virtio-net header */
#define BATCH 64               /* packets read from one device in a row */

struct rec {                   /* a packet in the ring, data follows */
    uint64_t due_ns;
    uint32_t len;              /* WRAP: the next record is at offset 0 */
    uint32_t pad;
};
#define WRAP UINT32_MAX
#define ALIGN(n) (((n) + 15) & ~(size_t)15)

struct dir {
    const char *name;
    int in, out;               /* read from in, write to out */
    uint8_t *buf;
    size_t size, head, tail, used;
    unsigned long long pkts, bytes, dropped, dropped_bytes, write_errors;
    size_t max_used;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void enter_netns(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        die(path);
    }
    if (setns(fd, CLONE_NEWNET) < 0) {
        die("setns");
    }
    close(fd);
}

/* A TUN device named dev in namespace ns (NULL: the current one). */
static int tun_open(const char *ns, const char *dev, int home)
{
    char path[4096];
    struct ifreq ifr;
    int fd;

    if (ns) {
        snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
        enter_netns(path);
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        die("/dev/net/tun");
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    if (strlen(dev) >= IFNAMSIZ) {
        fprintf(stderr, "delayline: device name too long: %s\n", dev);
        exit(1);
    }
    strcpy(ifr.ifr_name, dev);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        die("TUNSETIFF");
    }
    if (ioctl(fd, TUNSETOFFLOAD,
              (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
        die("TUNSETOFFLOAD");
    }
    if (ns && setns(home, CLONE_NEWNET) < 0) {
        die("setns back");
    }
    return fd;
}

/* Room for a record of MAX_PKT at head, wrapping if need be. */
static uint8_t *ring_reserve(struct dir *d)
{
    size_t need = ALIGN(sizeof(struct rec) + MAX_PKT);

    if (d->used == 0) {
        d->head = d->tail = 0;
        return d->buf;
    }
    if (d->head > d->tail) {
        /* data in [tail, head): free space is [head, size) and [0, tail) */
        if (d->size - d->head >= need) {
            return d->buf + d->head;
        }
        if (d->tail > need) {
            /* a record header always fits: sizes are multiples of 16 */
            if (d->size - d->head >= sizeof(struct rec)) {
                ((struct rec *)(d->buf + d->head))->len = WRAP;
            }
            d->used += d->size - d->head;
            d->head = 0;
            return d->buf;
        }
        return NULL;
    }
    /* wrapped: data in [tail, size) and [0, head), free is [head, tail);
     * head == tail: full */
    return d->tail - d->head > need ? d->buf + d->head : NULL;
}

static void ring_pop(struct dir *d, struct rec *r)
{
    size_t n = ALIGN(sizeof(*r) + r->len);

    d->tail += n;
    d->used -= n;
}

/* The oldest packet, or NULL; steps over a wrap marker. */
static struct rec *ring_first(struct dir *d)
{
    struct rec *r;

    if (!d->used) {
        return NULL;
    }
    if (d->size - d->tail < sizeof(struct rec) ||
        ((struct rec *)(d->buf + d->tail))->len == WRAP) {
        d->used -= d->size - d->tail;
        d->tail = 0;
        if (!d->used) {
            return NULL;
        }
    }
    r = (struct rec *)(d->buf + d->tail);
    return r;
}

static void receive(struct dir *d, uint64_t delay_ns)
{
    static uint8_t scratch[MAX_PKT];

    for (int i = 0; i < BATCH; i++) {
        uint8_t *slot = ring_reserve(d);
        uint8_t *data = slot ? slot + sizeof(struct rec) : scratch;
        ssize_t n = read(d->in, data, MAX_PKT);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            die("read");
        }
        if (!slot) {
            d->dropped++;
            d->dropped_bytes += n;
            continue;
        }
        struct rec *r = (struct rec *)slot;
        r->due_ns = now_ns() + delay_ns;
        r->len = n;
        size_t sz = ALIGN(sizeof(*r) + n);
        d->head += sz;
        d->used += sz;
        if (d->used > d->max_used) {
            d->max_used = d->used;
        }
    }
}

/* Write what is due; return ns until the next packet is, or -1. */
static int64_t transmit(struct dir *d, uint64_t now)
{
    struct rec *r;

    while ((r = ring_first(d))) {
        if (r->due_ns > now) {
            return r->due_ns - now;
        }
        ssize_t n = write(d->out, (uint8_t *)r + sizeof(*r), r->len);
        if (n < 0 && errno == EAGAIN) {
            return 100000;     /* retry in 0.1 ms */
        }
        if (n < 0) {
            d->write_errors++;
        } else {
            d->pkts++;
            d->bytes += r->len;
        }
        ring_pop(d, r);
    }
    return -1;
}

static void report(struct dir *d, int n)
{
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "delayline %s: %llu packets, %llu bytes forwarded; "
                "%llu packets (%llu bytes) dropped (buffer full); "
                "%llu write errors; buffer peak %zu of %zu bytes\n",
                d[i].name, d[i].pkts, d[i].bytes, d[i].dropped,
                d[i].dropped_bytes, d[i].write_errors, d[i].max_used,
                d[i].size);
    }
}

int main(int argc, char **argv)
{
    struct dir d[2];
    sigset_t block, orig;
    struct sigaction sa;
    int home, fa, fb;
    uint64_t delay_ns;
    size_t size;

    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s NS_A DEV_A NS_B DEV_B DELAY_US "
                "[BUFFER_MB]\n", argv[0]);
        return 2;
    }
    delay_ns = strtoull(argv[5], NULL, 10) * 1000;
    size = ALIGN((size_t)(argc > 6 ? strtoul(argv[6], NULL, 10) : 32) << 20);
    if (size < 4 * ALIGN(sizeof(struct rec) + MAX_PKT)) {
        fprintf(stderr, "delayline: buffer too small\n");
        return 2;
    }

    /* signals only while waiting in ppoll */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    /* wake up on time (the default slack is 50 us), and before the
     * QEMUs' vCPU threads, as a NIC's interrupt would: real-time priority
     * where allowed (root).  It sleeps but for the copies and the
     * receiving side's network stack, which runs in its write(). */
    prctl(PR_SET_TIMERSLACK, 1000UL);
    struct sched_param sp = { .sched_priority = 1 };
    sched_setscheduler(0, SCHED_FIFO, &sp);
    /* no link left behind by a harness that died */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) {
        return 1;
    }

    home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
        die("/proc/self/ns/net");
    }
    fa = tun_open(argv[1], argv[2], home);
    fb = tun_open(argv[3], argv[4], home);

    memset(d, 0, sizeof(d));
    d[0].name = "a->b";
    d[0].in = fa;
    d[0].out = fb;
    d[1].name = "b->a";
    d[1].in = fb;
    d[1].out = fa;
    for (int i = 0; i < 2; i++) {
        d[i].size = size;
        d[i].buf = malloc(size);
        if (!d[i].buf) {
            die("malloc");
        }
    }
    printf("ready\n");
    fflush(stdout);

    while (!stop) {
        struct pollfd pfd[2] = { { fa, POLLIN, 0 }, { fb, POLLIN, 0 } };
        uint64_t now = now_ns();
        int64_t wait = -1;
        struct timespec ts, *tsp = NULL;

        for (int i = 0; i < 2; i++) {
            int64_t w = transmit(&d[i], now);
            if (w >= 0 && (wait < 0 || w < wait)) {
                wait = w;
            }
        }
        if (wait >= 0) {
            ts.tv_sec = wait / 1000000000;
            ts.tv_nsec = wait % 1000000000;
            tsp = &ts;
        }
        int n = ppoll(pfd, 2, tsp, &orig);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("ppoll");
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                fprintf(stderr, "delayline: device %s gone\n", argv[2 + 2 * i]);
                stop = 1;
            } else if (pfd[i].revents & POLLIN) {
                receive(&d[i], delay_ns);
            }
        }
    }
    report(d, 2);
    return 0;
}
