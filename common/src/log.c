/* Logging to stderr and, when enabled, syslog (which journald collects).
 * One process-wide sink: set from main() by rb_log_init. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "ragbox/common.h"

static struct {
    enum rb_log_level level;
    bool use_syslog;
    pthread_mutex_t lock;
} log_state = {RB_LOG_WARN, false, PTHREAD_MUTEX_INITIALIZER};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

enum rb_status rb_log_level_parse(const char *text, enum rb_log_level *out)
{
    for (int i = 0; i < (int)RB_ARRAY_LEN(level_names); i++) {
        if (text && strcasecmp(text, level_names[i]) == 0) {
            *out = (enum rb_log_level)i;
            return RB_OK;
        }
    }
    if (text && strcasecmp(text, "warning") == 0) {
        *out = RB_LOG_WARN;
        return RB_OK;
    }
    return RB_ERR_INVALID;
}

void rb_log_init(const char *ident, enum rb_log_level level, bool use_syslog)
{
    enum rb_log_level env_level;
    const char *env = getenv("RAGBOX_LOG");
    if (env && rb_log_level_parse(env, &env_level) == RB_OK)
        level = env_level;
    pthread_mutex_lock(&log_state.lock);
    log_state.level = level;
    if (use_syslog && !log_state.use_syslog)
        openlog(ident ? ident : "ragbox", LOG_PID, LOG_DAEMON);
    else if (!use_syslog && log_state.use_syslog)
        closelog();
    log_state.use_syslog = use_syslog;
    pthread_mutex_unlock(&log_state.lock);
}

enum rb_log_level rb_log_level_get(void)
{
    return log_state.level;
}

void rb_log(enum rb_log_level level, const char *module, const char *fmt, ...)
{
    if (level < log_state.level || level >= RB_LOG_OFF)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char when[40];
    rb_time_format_utc(rb_time_now_us(), when, sizeof when);
    pthread_mutex_lock(&log_state.lock);
    fprintf(stderr, "%s %s %s: %s\n", when, level_names[level], module ? module : "ragbox", msg);
    if (log_state.use_syslog) {
        static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(prio[level], "%s: %s", module ? module : "ragbox", msg);
    }
    pthread_mutex_unlock(&log_state.lock);
}

void rb__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "ragbox: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
