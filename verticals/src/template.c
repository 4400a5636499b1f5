/* Prompt template files: a small header (name, version, lang) and the
 * system and user sections, with {{placeholder}} substitution. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verticals-impl.h"

static const char *const known_placeholders[] = {
    "context", "question", "disclaimer", "rules", "date", "collection", "vertical", "language",
    "title", "authority",
};

#define MAX_TEMPLATE_BYTES (256 * 1024)

void rb_template_free(struct rb_template *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->id);
    free(t->version);
    free(t->path);
    free(t->system);
    free(t->user);
    free(t);
}

const char *rb_template_name(const struct rb_template *t) { return t->name; }
const char *rb_template_id(const struct rb_template *t) { return t->id ? t->id : t->name; }
const char *rb_template_version(const struct rb_template *t) { return t->version; }
enum rb_vertical_lang rb_template_lang(const struct rb_template *t) { return t->lang; }
const char *rb_template_path(const struct rb_template *t) { return t->path; }
const char *rb_template_system(const struct rb_template *t) { return t->system; }
const char *rb_template_user(const struct rb_template *t) { return t->user; }

const char *rb_vertical_lang_name(enum rb_vertical_lang lang)
{
    return lang == RB_VERTICAL_ZH ? "zh" : "en";
}

/* Checks the {{...}} placeholders of a section; line numbers are absolute. */
static enum rb_status check_placeholders(const char *path, const char *text, int first_line,
                                         bool *seen, struct rb_errmsg *err)
{
    int line = first_line;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            line++;
            continue;
        }
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            const char *nl = strchr(p + 2, '\n');
            if (!end || (nl && nl < end))
                return rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: unterminated placeholder '{{'",
                                     path, line);
            size_t n = (size_t)(end - (p + 2));
            bool found = false;
            for (size_t k = 0; k < RB_ARRAY_LEN(known_placeholders); k++) {
                if (strlen(known_placeholders[k]) == n &&
                    strncmp(known_placeholders[k], p + 2, n) == 0) {
                    seen[k] = true;
                    found = true;
                }
            }
            if (!found)
                return rb_errmsg_set(err, RB_ERR_FORMAT,
                                     "%s:%d: unknown placeholder {{%.*s}} (known: context, "
                                     "question, disclaimer, rules, date, collection, vertical, "
                                     "language, title, authority)",
                                     path, line, (int)RB_MIN(n, 60), p + 2);
            p = end + 1;
        } else if (p[0] == '}' && p[1] == '}') {
            return rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: '}}' without '{{'", path, line);
        }
    }
    return RB_OK;
}

static char *trim_copy(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return rb_strndup(s, n);
}

/* Strips one trailing newline run so sections do not end in blank lines. */
static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

enum rb_status rb_template_parse(const char *path, const char *text, size_t len,
                                 struct rb_template **out, struct rb_errmsg *err)
{
    *out = NULL;
    if (len > MAX_TEMPLATE_BYTES)
        return rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s: template larger than %d bytes", path,
                             MAX_TEMPLATE_BYTES);
    if (!rb_utf8_valid(text, len)) {
        /* name the line of the first bad byte */
        int line = 1;
        size_t i = 0;
        while (i < len) {
            uint32_t cp;
            size_t step = (size_t)rb_utf8_decode(text + i, len - i, &cp);
            if (cp == 0xFFFD && !rb_utf8_valid(text + i, step))
                break;
            if (text[i] == '\n')
                line++;
            i += step;
        }
        return rb_errmsg_set(err, RB_ERR_ENCODING, "%s:%d: not valid UTF-8 (byte offset %zu)",
                             path, line, i);
    }
    if (memchr(text, '\0', len))
        return rb_errmsg_set(err, RB_ERR_ENCODING, "%s: contains a NUL byte", path);
    struct rb_template *t = calloc(1, sizeof *t);
    if (!t)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    t->path = rb_strdup(path);
    bool have_lang = false;
    struct rb_buf sec[2];
    rb_buf_init(&sec[0], MAX_TEMPLATE_BYTES);
    rb_buf_init(&sec[1], MAX_TEMPLATE_BYTES);
    int sec_line[2] = {0, 0};
    int cur = -1; /* -1 header, 0 system, 1 user */
    int line = 0;
    enum rb_status st = RB_OK;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* BOM */
    while (pos < len && st == RB_OK) {
        line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *l = text + pos;
        pos += n + (nl ? 1 : 0);
        if (n >= 3 && strncmp(l, "---", 3) == 0) {
            char *name = trim_copy(l + 3, n - 3);
            if (!name) {
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
                break;
            }
            int which = strcmp(name, "system") == 0 ? 0 : strcmp(name, "user") == 0 ? 1 : -1;
            if (which < 0)
                st = rb_errmsg_set(err, RB_ERR_FORMAT,
                                   "%s:%d: unknown section '--- %s' (expected '--- system' or "
                                   "'--- user')",
                                   path, line, name);
            else if (sec_line[which])
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: section '%s' repeated (first at line %d)",
                                   path, line, name, sec_line[which]);
            free(name);
            if (st != RB_OK)
                break;
            cur = which;
            sec_line[which] = line + 1;
            continue;
        }
        if (cur >= 0) {
            st = rb_buf_append(&sec[cur], l, n);
            if (st == RB_OK)
                st = rb_buf_append(&sec[cur], "\n", 1);
            if (st != RB_OK)
                st = rb_errmsg_set(err, st, "%s:%d: section too large", path, line);
            continue;
        }
        /* header */
        char *trimmed = trim_copy(l, n);
        if (!trimmed) {
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            break;
        }
        if (!trimmed[0] || trimmed[0] == '#') {
            free(trimmed);
            continue;
        }
        char *colon = strchr(trimmed, ':');
        if (!colon) {
            st = rb_errmsg_set(err, RB_ERR_FORMAT,
                               "%s:%d: expected 'key: value' in the header or a '--- system' "
                               "line, got '%.60s'",
                               path, line, trimmed);
            free(trimmed);
            break;
        }
        *colon = '\0';
        char *key = trim_copy(trimmed, strlen(trimmed));
        char *value = trim_copy(colon + 1, strlen(colon + 1));
        free(trimmed);
        if (!key || !value) {
            free(key);
            free(value);
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
            break;
        }
        char **slot = NULL;
        if (strcmp(key, "name") == 0)
            slot = &t->name;
        else if (strcmp(key, "version") == 0)
            slot = &t->version;
        else if (strcmp(key, "lang") == 0) {
            if (strcmp(value, "en") == 0)
                t->lang = RB_VERTICAL_EN;
            else if (strcmp(value, "zh") == 0)
                t->lang = RB_VERTICAL_ZH;
            else
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: lang must be en or zh, not '%s'",
                                   path, line, value);
            have_lang = true;
        } else {
            st = rb_errmsg_set(err, RB_ERR_FORMAT,
                               "%s:%d: unknown header key '%s' (expected name, version, lang)",
                               path, line, key);
        }
        if (slot && st == RB_OK) {
            if (*slot)
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: '%s' given twice", path, line, key);
            else if (!value[0])
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: '%s' is empty", path, line, key);
            else {
                *slot = value;
                value = NULL;
            }
        }
        free(key);
        free(value);
    }
    if (st == RB_OK) {
        if (!t->name)
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing 'name:' in the header", path);
        else if (!t->version)
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing 'version:' in the header", path);
        else if (!have_lang)
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing 'lang:' in the header", path);
        else if (!sec_line[0])
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing the '--- system' section", path);
        else if (!sec_line[1])
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing the '--- user' section", path);
    }
    if (st == RB_OK) {
        for (const char *c = t->name; *c && st == RB_OK; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
                st = rb_errmsg_set(err, RB_ERR_FORMAT,
                                   "%s: template name '%s' may only use a-z 0-9 - _", path, t->name);
    }
    if (st == RB_OK) {
        t->system = sec[0].len ? rb_buf_steal(&sec[0]) : rb_strdup("");
        t->user = sec[1].len ? rb_buf_steal(&sec[1]) : rb_strdup("");
        if (!t->system || !t->user)
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    bool seen[RB_ARRAY_LEN(known_placeholders)] = {0};
    if (st == RB_OK) {
        rstrip(t->system);
        rstrip(t->user);
        st = check_placeholders(path, t->system, sec_line[0], seen, err);
    }
    if (st == RB_OK) {
        bool seen_user[RB_ARRAY_LEN(known_placeholders)] = {0};
        st = check_placeholders(path, t->user, sec_line[1], seen_user, err);
        if (st == RB_OK && !seen_user[0])
            st = rb_errmsg_set(err, RB_ERR_FORMAT,
                               "%s:%d: the user section must contain {{context}}", path,
                               sec_line[1]);
        if (st == RB_OK && !seen_user[1])
            st = rb_errmsg_set(err, RB_ERR_FORMAT,
                               "%s:%d: the user section must contain {{question}}", path,
                               sec_line[1]);
        for (size_t k = 0; k < RB_ARRAY_LEN(seen); k++)
            seen[k] = seen[k] || seen_user[k];
    }
    t->uses_disclaimer = seen[2];
    rb_buf_free(&sec[0]);
    rb_buf_free(&sec[1]);
    if (st != RB_OK) {
        rb_template_free(t);
        return st;
    }
    *out = t;
    return RB_OK;
}

static enum rb_status substitute(const char *tpl, const char *const *values, struct rb_buf *b)
{
    enum rb_status st = RB_OK;
    for (const char *p = tpl; *p && st == RB_OK;) {
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            size_t n = end ? (size_t)(end - (p + 2)) : 0;
            size_t k = 0;
            for (; end && k < RB_ARRAY_LEN(known_placeholders); k++)
                if (strlen(known_placeholders[k]) == n &&
                    strncmp(known_placeholders[k], p + 2, n) == 0)
                    break;
            if (end && k < RB_ARRAY_LEN(known_placeholders)) {
                if (values[k])
                    st = rb_buf_append_str(b, values[k]);
                p = end + 2;
                continue;
            }
        }
        const char *next = strstr(p + 1, "{{");
        size_t n = next ? (size_t)(next - p) : strlen(p);
        st = rb_buf_append(b, p, n);
        p += n;
    }
    return st;
}

enum rb_status rb_template_render(const struct rb_template *t, const struct rb_vertical *v,
                                  const struct rb_template_vars *vars, char **system, char **user,
                                  struct rb_errmsg *err)
{
    *system = *user = NULL;
    struct rb_template_vars none = {0};
    if (!vars)
        vars = &none;
    const struct rb_vertical_policy *pol = v ? rb_vertical_policy(v) : NULL;
    char today[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    /* the issuing authority of drafted documents: [drafting] authority_<lang> */
    const char *authority = NULL;
    if (v) {
        char key[32];
        snprintf(key, sizeof key, "authority_%s", rb_vertical_lang_name(t->lang));
        authority = rb_config_str(rb_vertical_config(v), "drafting", key, NULL);
    }
    if (!authority)
        authority = t->lang == RB_VERTICAL_ZH ? "［发文机关］" : "[Issuing authority]";
    const char *values[RB_ARRAY_LEN(known_placeholders)] = {
        vars->context ? vars->context : "",
        vars->question ? vars->question : "",
        vars->disclaimer ? vars->disclaimer : pol && pol->disclaimer[t->lang] ? pol->disclaimer[t->lang] : "",
        pol && pol->rules[t->lang] ? pol->rules[t->lang] : "",
        vars->date ? vars->date : today,
        vars->collection ? vars->collection : "",
        v ? rb_vertical_name(v) : "",
        t->lang == RB_VERTICAL_ZH ? "中文" : "English",
        vars->title ? vars->title : "",
        authority,
    };
    struct rb_buf s, u;
    rb_buf_init(&s, 0);
    rb_buf_init(&u, 0);
    enum rb_status st = substitute(t->system, values, &s);
    if (st == RB_OK)
        st = substitute(t->user, values, &u);
    if (st != RB_OK) {
        rb_buf_free(&s);
        rb_buf_free(&u);
        return rb_errmsg_set(err, st, "cannot render %s", t->path);
    }
    *system = s.len ? rb_buf_steal(&s) : rb_strdup("");
    *user = u.len ? rb_buf_steal(&u) : rb_strdup("");
    rb_buf_free(&s);
    rb_buf_free(&u);
    if (!*system || !*user) {
        free(*system);
        free(*user);
        *system = *user = NULL;
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    return RB_OK;
}
