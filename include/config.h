/*
 * config.h - reading the options from their sources: the command line and
 * the --config file it names.  The parsing itself is pure (opts.h); this is
 * the part that reads the file, so that a reload (SIGHUP) and -t take the
 * same path as a start.
 */
#ifndef STAMPD_CONFIG_H
#define STAMPD_CONFIG_H

#include <stddef.h>
#include "opts.h"

/* opts_parse(), then, when a --config FILE is named, the same again with
 * that file's contents under the command line.  A file that cannot be read
 * is an OPTS_ERROR naming it. */
enum opts_result config_load(struct opts *o, int argc, char **argv, int ncpus,
                             char *err, size_t errlen);

#endif
