/* Logging to stderr (or syslog), one line per event, with a level filter. */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* ident: program name put at the start of each line. */
void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Returns 0 and sets *out for "err", "warn", "info", "debug"; -1 otherwise. */
int log_level_parse(const char *s, enum log_level *out);
void log_use_syslog(int on);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A broken invariant: log and abort. Never for bad input. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define log_debug_enabled() (log_get_level() >= LOG_LVL_DEBUG)

#endif
