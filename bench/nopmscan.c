/* LD_PRELOAD: PAGEMAP_SCAN fails with ENOTTY, as on a kernel before 6.7 (bench/qemu-pagemap-fallback.sh) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>

int ioctl(int fd, unsigned long req, ...)
{
    static int (*real)(int, unsigned long, void *);
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (((req >> 8) & 0xff) == 'f' && (req & 0xff) == 16) {
        errno = ENOTTY;
        return -1;
    }
    if (!real) {
        real = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
    }
    return real(fd, req, arg);
}
