/* Audit helpers: action names, ids, time parsing, the signed messages, the
 * head file format, and the listing of log files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit-impl.h"

static const char *const action_names[] = {
#define RB__AUDIT_ACTION_NAME(name, text) text,
    RB_AUDIT_ACTION_TABLE(RB__AUDIT_ACTION_NAME)
#undef RB__AUDIT_ACTION_NAME
};

const char *rb_audit_action_name(enum rb_audit_action action)
{
    if ((int)action < 0 || action >= RB_AUDIT_ACTION_COUNT)
        return "unknown";
    return action_names[action];
}

enum rb_status rb_audit_action_parse(const char *name, enum rb_audit_action *out)
{
    for (int i = 0; name && i < RB_AUDIT_ACTION_COUNT; i++) {
        if (strcmp(name, action_names[i]) == 0) {
            *out = (enum rb_audit_action)i;
            return RB_OK;
        }
    }
    return RB_ERR_INVALID;
}

void rb_audit_format_id(uint64_t seq, char *buf, size_t size)
{
    snprintf(buf, size, "audit-%llu", (unsigned long long)seq);
}

enum rb_status rb_audit_parse_id(const char *id, uint64_t *seq)
{
    if (!id)
        return RB_ERR_INVALID;
    if (strncmp(id, "audit-", 6) == 0)
        id += 6;
    int64_t v;
    if (!*id || *id == '-' || *id == '+' || rb_parse_i64(id, &v) != RB_OK || v <= 0)
        return RB_ERR_INVALID;
    *seq = (uint64_t)v;
    return RB_OK;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

enum rb_status rb_audit_parse_time(const char *text, int64_t *us)
{
    if (!text)
        return RB_ERR_INVALID;
    size_t n = strlen(text);
    struct tm tm = {0};
    int64_t frac = 0;
    if (n < 10 || !all_digits(text, 4) || text[4] != '-' || !all_digits(text + 5, 2) ||
        text[7] != '-' || !all_digits(text + 8, 2))
        return RB_ERR_INVALID;
    tm.tm_year = num(text, 4) - 1900;
    tm.tm_mon = num(text + 5, 2) - 1;
    tm.tm_mday = num(text + 8, 2);
    size_t i = 10;
    if (i < n) {
        if ((text[i] != 'T' && text[i] != ' ') || n < i + 9 || !all_digits(text + i + 1, 2) ||
            text[i + 3] != ':' || !all_digits(text + i + 4, 2) || text[i + 6] != ':' ||
            !all_digits(text + i + 7, 2))
            return RB_ERR_INVALID;
        tm.tm_hour = num(text + i + 1, 2);
        tm.tm_min = num(text + i + 4, 2);
        tm.tm_sec = num(text + i + 7, 2);
        i += 9;
        if (i < n && text[i] == '.') {
            size_t digits = 0;
            i++;
            while (i < n && text[i] >= '0' && text[i] <= '9') {
                if (digits < 6) {
                    frac = frac * 10 + (text[i] - '0');
                    digits++;
                }
                i++;
            }
            if (digits == 0)
                return RB_ERR_INVALID;
            while (digits++ < 6)
                frac *= 10;
        }
        if (i < n && text[i] == 'Z')
            i++;
        if (i != n)
            return RB_ERR_INVALID;
    }
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return RB_ERR_INVALID;
    int mday = tm.tm_mday;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != mday) /* 2026-02-30 normalises to March */
        return RB_ERR_INVALID;
    *us = (int64_t)t * 1000000 + frac;
    return RB_OK;
}

bool rb__audit_is_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

char *rb__audit_head_message(const struct rb__audit_head *h, size_t *len)
{
    char *m = rb_asprintf("ragbox-audit-head\n%llu\n%s\n%s\n%llu\n%lld\n%llu\n%s\n",
                          (unsigned long long)h->seq, h->hash, h->file,
                          (unsigned long long)h->size, (long long)h->file_start_us,
                          (unsigned long long)h->cp_seq, h->cp_hash);
    if (m)
        *len = strlen(m);
    return m;
}

char *rb__audit_checkpoint_message(uint64_t seq, const char *hash, const char *file,
                                   const char *time, const char *reason, const char *prev_cp,
                                   size_t *len)
{
    char *m = rb_asprintf("ragbox-audit-checkpoint\n%llu\n%s\n%s\n%s\n%s\n%s\n",
                          (unsigned long long)seq, hash, file, time, reason, prev_cp);
    if (m)
        *len = strlen(m);
    return m;
}

static bool get_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

static bool get_str(const cJSON *o, const char *key, char *buf, size_t size)
{
    const char *s = rb_json_str(o, key);
    return s && rb_strlcpy(buf, s, size);
}

enum rb_status rb__audit_head_parse(const char *text, size_t len, struct rb__audit_head *h,
                                    struct rb_errmsg *err)
{
    memset(h, 0, sizeof *h);
    cJSON *o = NULL;
    if (rb_json_parse(text, len, 4, &o, err) != RB_OK)
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s is not valid JSON", RB_AUDIT_HEAD);
    uint64_t start = 0;
    bool ok = cJSON_IsObject(o) && get_u64(o, "seq", &h->seq) &&
              get_str(o, "hash", h->hash, sizeof h->hash) &&
              rb__audit_is_hex(h->hash, RB_SHA256_HEX_LEN) &&
              get_str(o, "file", h->file, sizeof h->file) && get_u64(o, "size", &h->size) &&
              get_u64(o, "file_start_us", &start) && get_u64(o, "cp_seq", &h->cp_seq) &&
              get_str(o, "cp_hash", h->cp_hash, sizeof h->cp_hash) &&
              rb__audit_is_hex(h->cp_hash, RB_SHA256_HEX_LEN) &&
              get_str(o, "key", h->key_id, sizeof h->key_id) &&
              get_str(o, "sig", h->sig, sizeof h->sig);
    h->file_start_us = (int64_t)start;
    cJSON_Delete(o);
    if (!ok)
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s is missing fields or has malformed ones",
                             RB_AUDIT_HEAD);
    if (strchr(h->file, '/') || strncmp(h->file, RB_AUDIT_PREFIX, strlen(RB_AUDIT_PREFIX)) != 0)
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "%s names an invalid file '%s'", RB_AUDIT_HEAD,
                             h->file);
    return RB_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* audit-<20 digits>.jsonl: fixed width, so name order is seq order. */
static bool is_log_name(const char *name)
{
    size_t plen = strlen(RB_AUDIT_PREFIX), slen = strlen(RB_AUDIT_SUFFIX);
    return strlen(name) == plen + 20 + slen && strncmp(name, RB_AUDIT_PREFIX, plen) == 0 &&
           all_digits(name + plen, 20) && strcmp(name + plen + 20, RB_AUDIT_SUFFIX) == 0;
}

enum rb_status rb__audit_list_files(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return RB_ERR_NOT_FOUND;
    size_t cap = 0;
    struct dirent *e;
    enum rb_status st = RB_OK;
    while ((e = readdir(d)) != NULL) {
        if (!is_log_name(e->d_name))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(*names, ncap * sizeof *grown);
            if (!grown) {
                st = RB_ERR_NOMEM;
                break;
            }
            *names = grown;
            cap = ncap;
        }
        if (!((*names)[*n] = rb_strdup(e->d_name))) {
            st = RB_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (st != RB_OK) {
        rb__audit_free_list(*names, *n);
        *names = NULL;
        *n = 0;
        return st;
    }
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_names);
    return RB_OK;
}

void rb__audit_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
