/* The configuration file: INI text parsed by inih (libinih). We feed inih
 * through ini_parse_stream with our own line reader so that every key keeps
 * the line it was defined on, for error messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "ragbox/common.h"

#define CONFIG_MAX_ENTRIES 4096
#define CONFIG_MAX_FILE (1u << 20)

struct config_entry {
    char *section;
    char *key;
    char *value;
    int line;
};

struct rb_config {
    struct config_entry *entries;
    size_t count;
    size_t cap;
    char *name; /* file name for messages */
};

struct parse_state {
    struct rb_config *cfg;
    const char *text;
    size_t pos;
    size_t len;
    int line;
    enum rb_status status;
};

static struct config_entry *find(const struct rb_config *cfg, const char *section,
                                 const char *key)
{
    for (size_t i = cfg->count; i-- > 0;) {
        if (strcasecmp(cfg->entries[i].section, section) == 0 &&
            strcasecmp(cfg->entries[i].key, key) == 0)
            return &cfg->entries[i];
    }
    return NULL;
}

static enum rb_status put(struct rb_config *cfg, const char *section, const char *key,
                          const char *value, int line)
{
    struct config_entry *e = find(cfg, section, key);
    if (e) {
        char *v = strdup(value);
        if (!v)
            return RB_ERR_NOMEM;
        free(e->value);
        e->value = v;
        e->line = line;
        return RB_OK;
    }
    if (cfg->count >= CONFIG_MAX_ENTRIES)
        return RB_ERR_TOO_LARGE;
    if (cfg->count == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 32;
        struct config_entry *p = realloc(cfg->entries, cap * sizeof *p);
        if (!p)
            return RB_ERR_NOMEM;
        cfg->entries = p;
        cfg->cap = cap;
    }
    e = &cfg->entries[cfg->count];
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    if (!e->section || !e->key || !e->value) {
        free(e->section);
        free(e->key);
        free(e->value);
        return RB_ERR_NOMEM;
    }
    cfg->count++;
    return RB_OK;
}

/* fgets-like reader over the in-memory text; counts lines. */
static char *reader(char *str, int num, void *stream)
{
    struct parse_state *ps = stream;
    if (ps->pos >= ps->len || num <= 1)
        return NULL;
    size_t i = 0;
    while (ps->pos < ps->len && i < (size_t)num - 1) {
        char c = ps->text[ps->pos++];
        str[i++] = c;
        if (c == '\n')
            break;
    }
    str[i] = '\0';
    ps->line++;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *ps = user;
    if (!section || !*section) {
        ps->status = RB_ERR_CONFIG;
        return 0; /* keys outside a section are an error */
    }
    enum rb_status st = put(ps->cfg, section, name, value ? value : "", ps->line);
    if (st != RB_OK) {
        ps->status = st;
        return 0;
    }
    return 1;
}

enum rb_status rb_config_create(struct rb_config **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? RB_OK : RB_ERR_NOMEM;
}

enum rb_status rb_config_parse(const char *name, const char *text, struct rb_config **out,
                               struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_config *cfg;
    enum rb_status st = rb_config_create(&cfg);
    if (st != RB_OK)
        return st;
    cfg->name = strdup(name ? name : "(config)");
    struct parse_state ps = {cfg, text, 0, strlen(text), 0, RB_OK};
    /* Reject over-long lines ourselves: inih would silently split them. */
    int line = 1;
    size_t start = 0;
    for (size_t i = 0; i <= ps.len; i++) {
        if (i == ps.len || text[i] == '\n') {
            if (i - start >= INI_MAX_LINE - 1) {
                rb_config_free(cfg);
                return rb_errmsg_set(err, RB_ERR_CONFIG, "%s:%d: line longer than %d characters",
                                     name, line, INI_MAX_LINE - 2);
            }
            start = i + 1;
            line++;
        }
    }
    int rc = ini_parse_stream(reader, &ps, handler, &ps);
    if (rc != 0 || ps.status != RB_OK) {
        enum rb_status fail = ps.status != RB_OK ? ps.status : RB_ERR_CONFIG;
        int at = rc > 0 ? rc : ps.line;
        rb_config_free(cfg);
        if (fail == RB_ERR_CONFIG)
            return rb_errmsg_set(err, RB_ERR_CONFIG,
                                 "%s:%d: syntax error (expected [section] or key = value, "
                                 "and keys inside a section)",
                                 name, at);
        return rb_errmsg_set(err, fail, "%s:%d: %s", name, at, rb_status_str(fail));
    }
    *out = cfg;
    return RB_OK;
}

enum rb_status rb_config_load(const char *path, struct rb_config **out, struct rb_errmsg *err)
{
    *out = NULL;
    char *text;
    size_t len;
    enum rb_status st = rb_fs_read_file(path, CONFIG_MAX_FILE, &text, &len);
    if (st == RB_ERR_NOT_FOUND)
        return rb_errmsg_set(err, st, "%s: no such configuration file", path);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "%s: cannot read configuration: %s", path,
                             rb_status_str(st));
    if (strlen(text) != len) {
        free(text);
        return rb_errmsg_set(err, RB_ERR_CONFIG, "%s: configuration contains a NUL byte", path);
    }
    st = rb_config_parse(path, text, out, err);
    free(text);
    return st;
}

void rb_config_free(struct rb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg->name);
    free(cfg);
}

const char *rb_config_str(const struct rb_config *cfg, const char *section, const char *key,
                          const char *def)
{
    if (!cfg)
        return def;
    const struct config_entry *e = find(cfg, section, key);
    return e ? e->value : def;
}

static const char *where(const struct rb_config *cfg)
{
    return cfg && cfg->name ? cfg->name : "(config)";
}

enum rb_status rb_config_int(const struct rb_config *cfg, const char *section, const char *key,
                             int64_t def, int64_t min, int64_t max, int64_t *out,
                             struct rb_errmsg *err)
{
    const struct config_entry *e = cfg ? find(cfg, section, key) : NULL;
    if (!e) {
        *out = def;
        return RB_OK;
    }
    int64_t v;
    if (rb_parse_i64(e->value, &v) != RB_OK)
        return rb_errmsg_set(err, RB_ERR_CONFIG, "%s:%d: %s.%s: \"%s\" is not an integer",
                             where(cfg), e->line, section, key, e->value);
    if (v < min || v > max)
        return rb_errmsg_set(err, RB_ERR_CONFIG,
                             "%s:%d: %s.%s: %lld is outside %lld..%lld", where(cfg), e->line,
                             section, key, (long long)v, (long long)min, (long long)max);
    *out = v;
    return RB_OK;
}

enum rb_status rb_config_double(const struct rb_config *cfg, const char *section, const char *key,
                                double def, double min, double max, double *out,
                                struct rb_errmsg *err)
{
    const struct config_entry *e = cfg ? find(cfg, section, key) : NULL;
    if (!e) {
        *out = def;
        return RB_OK;
    }
    double v;
    if (rb_parse_double(e->value, &v) != RB_OK)
        return rb_errmsg_set(err, RB_ERR_CONFIG, "%s:%d: %s.%s: \"%s\" is not a number",
                             where(cfg), e->line, section, key, e->value);
    if (v < min || v > max)
        return rb_errmsg_set(err, RB_ERR_CONFIG, "%s:%d: %s.%s: %g is outside %g..%g",
                             where(cfg), e->line, section, key, v, min, max);
    *out = v;
    return RB_OK;
}

enum rb_status rb_config_bool(const struct rb_config *cfg, const char *section, const char *key,
                              bool def, bool *out, struct rb_errmsg *err)
{
    const struct config_entry *e = cfg ? find(cfg, section, key) : NULL;
    if (!e) {
        *out = def;
        return RB_OK;
    }
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < RB_ARRAY_LEN(yes); i++) {
        if (strcasecmp(e->value, yes[i]) == 0) {
            *out = true;
            return RB_OK;
        }
        if (strcasecmp(e->value, no[i]) == 0) {
            *out = false;
            return RB_OK;
        }
    }
    return rb_errmsg_set(err, RB_ERR_CONFIG,
                         "%s:%d: %s.%s: \"%s\" is not a boolean (true/false/yes/no/on/off)",
                         where(cfg), e->line, section, key, e->value);
}

enum rb_status rb_config_set(struct rb_config *cfg, const char *section, const char *key,
                             const char *value)
{
    return put(cfg, section, key, value, 0);
}

enum rb_status rb_config_check_known(const struct rb_config *cfg, const char *const *known,
                                     struct rb_errmsg *err)
{
    for (size_t i = 0; cfg && i < cfg->count; i++) {
        const struct config_entry *e = &cfg->entries[i];
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) {
            const char *dot = strchr(*k, '.');
            if (!dot)
                continue;
            size_t slen = (size_t)(dot - *k);
            if (strlen(e->section) != slen || strncasecmp(e->section, *k, slen) != 0)
                continue;
            ok = strcmp(dot + 1, "*") == 0 || strcasecmp(dot + 1, e->key) == 0;
        }
        if (!ok)
            return rb_errmsg_set(err, RB_ERR_CONFIG, "%s:%d: unknown key %s.%s", where(cfg),
                                 e->line, e->section, e->key);
    }
    return RB_OK;
}

char *rb_config_serialize(const struct rb_config *cfg)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    bool *done = calloc(cfg->count ? cfg->count : 1, sizeof *done);
    if (!done)
        return NULL;
    enum rb_status st = RB_OK;
    for (size_t i = 0; i < cfg->count && st == RB_OK; i++) {
        if (done[i])
            continue;
        st = rb_buf_printf(&b, "%s[%s]\n", b.len ? "\n" : "", cfg->entries[i].section);
        for (size_t j = i; j < cfg->count && st == RB_OK; j++) {
            if (!done[j] && strcasecmp(cfg->entries[j].section, cfg->entries[i].section) == 0) {
                st = rb_buf_printf(&b, "%s = %s\n", cfg->entries[j].key, cfg->entries[j].value);
                done[j] = true;
            }
        }
    }
    free(done);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return NULL;
    }
    return rb_buf_steal(&b);
}

size_t rb_config_count(const struct rb_config *cfg)
{
    return cfg ? cfg->count : 0;
}

void rb_config_entry(const struct rb_config *cfg, size_t i, const char **section, const char **key,
                     const char **value, int *line)
{
    const struct config_entry *e = &cfg->entries[i];
    if (section)
        *section = e->section;
    if (key)
        *key = e->key;
    if (value)
        *value = e->value;
    if (line)
        *line = e->line;
}
