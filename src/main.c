/*
 * main.c - stampd: a timestamp-echo server.  Reads the options (command
 * line and --config file) and hands over to the master process.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "checkconf.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "opts.h"
#include "poller.h"
#include "proctitle.h"
#include "version.h"

int main(int argc, char **argv)
{
    static struct opts o;  /* large: keep it off the stack */
    char err[256];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    switch (config_load(&o, argc, argv, ncpu > 0 ? (int)ncpu : 1, err,
                       sizeof(err))) {
    case OPTS_OK:
        break;
    case OPTS_HELP:
        fputs(opts_usage(), stdout);
        return 0;
    case OPTS_VERSION:
        printf("stampd %s (poller %s, malloc %s)\n", STAMPD_VERSION,
               poller_backend(),
#ifdef USE_JEMALLOC
               "jemalloc"
#else
               "libc"
#endif
        );
        return 0;
    case OPTS_ERROR:
    default:
        fprintf(stderr, "stampd: %s\n", err);
        return 2;
    }
    tzset();
    if (o.check_config)
        return checkconf_run(&o);
    proctitle_init(argc, argv);  /* after the parse: it reuses argv's memory */
    log_init(o.log_level, "master");
    return master_run(&o);
}
