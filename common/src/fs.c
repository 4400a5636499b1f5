/* File-system helpers (durable writes, bounded reads), time, and data paths. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ragbox/common.h"

enum rb_status rb_fs_mkdirs(const char *path, unsigned mode)
{
    char *p = strdup(path);
    if (!p)
        return RB_ERR_NOMEM;
    size_t len = strlen(p);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char saved = p[i];
            p[i] = '\0';
            if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
                free(p);
                return errno == EACCES ? RB_ERR_DENIED : RB_ERR_IO;
            }
            p[i] = saved;
        }
    }
    free(p);
    return rb_fs_is_dir(path) ? RB_OK : RB_ERR_IO;
}

enum rb_status rb_fs_read_file(const char *path, size_t max_size, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RB_ERR_NOT_FOUND : errno == EACCES ? RB_ERR_DENIED : RB_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return RB_ERR_IO;
    }
    if ((uint64_t)sb.st_size > max_size) {
        close(fd);
        return RB_ERR_TOO_LARGE;
    }
    struct rb_buf b;
    rb_buf_init(&b, max_size);
    enum rb_status st = rb_buf_reserve(&b, (size_t)sb.st_size);
    char tmp[65536];
    while (st == RB_OK) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = RB_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        st = rb_buf_append(&b, tmp, (size_t)n);
    }
    close(fd);
    /* An empty file: the reserved buffer was never terminated by an append. */
    if (st == RB_OK)
        st = rb_buf_append(&b, "", 0);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return st;
    }
    *len = b.len;
    *data = rb_buf_steal(&b);
    return RB_OK;
}

enum rb_status rb_fs_sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return RB_ERR_NOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return RB_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? RB_OK : RB_ERR_IO;
}

enum rb_status rb_fs_write_atomic(const char *path, const void *data, size_t len)
{
    char *tmp = rb_asprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp)
        return RB_ERR_NOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        free(tmp);
        return RB_ERR_IO;
    }
    const char *p = data;
    size_t left = len;
    enum rb_status st = RB_OK;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = RB_ERR_IO;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    if (st == RB_OK && fsync(fd) != 0)
        st = RB_ERR_IO;
    if (close(fd) != 0 && st == RB_OK)
        st = RB_ERR_IO;
    if (st == RB_OK && rename(tmp, path) != 0)
        st = RB_ERR_IO;
    if (st != RB_OK)
        unlink(tmp);
    free(tmp);
    if (st == RB_OK)
        st = rb_fs_sync_parent(path);
    return st;
}

bool rb_fs_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

bool rb_fs_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

char *rb_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la > 0 && a[la - 1] == '/')
        return rb_asprintf("%s%s", a, b[0] == '/' ? b + 1 : b);
    return rb_asprintf("%s/%s", a, b[0] == '/' ? b + 1 : b);
}

const char *rb_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int64_t rb_time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t rb_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rb_time_format_utc(int64_t us, char *buf, size_t size)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06dZ", date, (int)(us % 1000000));
}

char *rb_default_data_dir(const char *cli_value)
{
    if (cli_value && *cli_value)
        return strdup(cli_value);
    const char *env = getenv("RAGBOX_DATA");
    if (env && *env)
        return strdup(env);
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg)
        return rb_path_join(xdg, "ragbox");
    const char *home = getenv("HOME");
    if (home && *home)
        return rb_path_join(home, ".local/share/ragbox");
    return strdup("/var/lib/ragbox");
}

char *rb_default_config_path(const char *cli_value, const char *data_dir)
{
    if (cli_value && *cli_value)
        return strdup(cli_value);
    const char *env = getenv("RAGBOX_CONFIG");
    if (env && *env)
        return strdup(env);
    return rb_path_join(data_dir, "ragbox.conf");
}
