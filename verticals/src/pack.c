/* Loading a vertical pack: pack.ini (policy, chunking, redaction), the
 * heading patterns and the templates, all validated with file:line errors. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verticals-impl.h"

#ifndef RAGBOX_VERTICALS_SYSTEM_DIR
#define RAGBOX_VERTICALS_SYSTEM_DIR "/usr/share/ragbox/verticals"
#endif

#define MAX_TEMPLATES 64
#define MAX_HEADINGS 64

struct rb_vertical {
    char *dir;
    struct rb_config *ini;
    const char *name, *version, *description; /* borrowed from ini */
    struct rb_vertical_policy policy;
    struct rb_vertical_chunking chunking;
    char **headings;
    char *rules_text[RB_VERTICAL_LANG_COUNT]; /* rules.<lang>.txt */
    struct rb_vertical_redaction redaction;
    struct rb_redactor *redactor;
    struct rb_template *templates[MAX_TEMPLATES];
    size_t n_templates;
};

static const char *const known_keys[] = {
    "pack.name", "pack.version", "pack.description",
    "answer.min_evidence", "answer.min_evidence_en", "answer.min_evidence_zh",
    "answer.min_citation_coverage", "answer.max_sentences",
    "answer.figures_from_sources", "answer.never_invent_dosages", "answer.disclaimer_required",
    "answer.disclaimer_en", "answer.disclaimer_zh", "answer.refusal_en", "answer.refusal_zh",
    "chunking.chunk_tokens", "chunking.overlap_tokens", "chunking.headings",
    "redaction.rules", "redaction.apply_to_audit", "redaction.apply_to_answers",
    "redaction.apply_to_ingest", "redaction.account_context",
    "drafting.*",
    NULL,
};

void rb_vertical_free(struct rb_vertical *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_templates; i++)
        rb_template_free(v->templates[i]);
    for (size_t i = 0; v->headings && v->headings[i]; i++)
        free(v->headings[i]);
    free(v->headings);
    for (int l = 0; l < RB_VERTICAL_LANG_COUNT; l++)
        free(v->rules_text[l]);
    rb_redactor_free(v->redactor);
    rb_config_free(v->ini);
    free(v->dir);
    free(v);
}

const char *rb_vertical_name(const struct rb_vertical *v) { return v->name; }
const char *rb_vertical_version(const struct rb_vertical *v) { return v->version; }
const char *rb_vertical_description(const struct rb_vertical *v) { return v->description; }
const char *rb_vertical_dir(const struct rb_vertical *v) { return v->dir; }
const struct rb_vertical_policy *rb_vertical_policy(const struct rb_vertical *v) { return &v->policy; }
const struct rb_vertical_chunking *rb_vertical_chunking(const struct rb_vertical *v) { return &v->chunking; }
const struct rb_vertical_redaction *rb_vertical_redaction(const struct rb_vertical *v) { return &v->redaction; }
const struct rb_redactor *rb_vertical_redactor(const struct rb_vertical *v) { return v->redactor; }
const struct rb_config *rb_vertical_config(const struct rb_vertical *v) { return v->ini; }
size_t rb_vertical_template_count(const struct rb_vertical *v) { return v->n_templates; }

const struct rb_template *rb_vertical_template_at(const struct rb_vertical *v, size_t i)
{
    return i < v->n_templates ? v->templates[i] : NULL;
}

const struct rb_template *rb_vertical_template(const struct rb_vertical *v, const char *name,
                                               enum rb_vertical_lang lang)
{
    const struct rb_template *fallback = NULL;
    for (size_t i = 0; i < v->n_templates; i++) {
        if (strcmp(v->templates[i]->name, name) != 0)
            continue;
        if (v->templates[i]->lang == lang)
            return v->templates[i];
        if (v->templates[i]->lang == RB_VERTICAL_EN)
            fallback = v->templates[i];
    }
    return fallback;
}

static bool valid_pack_name(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return false;
    return true;
}

/* Reads the heading patterns: one PCRE2 per line, '#' comments. */
static enum rb_status load_headings(struct rb_vertical *v, const char *file, struct rb_errmsg *err)
{
    char *path = rb_path_join(v->dir, file);
    if (!path)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    enum rb_status st = rb_fs_read_file(path, 1 << 20, &text, &len);
    if (st != RB_OK) {
        rb_errmsg_set(err, st, "%s: cannot read (%s)", path, rb_status_str(st));
        free(path);
        return st;
    }
    v->headings = calloc(MAX_HEADINGS + 1, sizeof *v->headings);
    if (!v->headings)
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    if (st == RB_OK && !rb_utf8_valid(text, len))
        st = rb_errmsg_set(err, RB_ERR_ENCODING, "%s: not valid UTF-8", path);
    int line = 0;
    size_t n = 0;
    for (char *p = text; st == RB_OK && p && *p;) {
        line++;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[--l] = '\0';
        if (l && p[0] != '#') {
            int code;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, l, PCRE2_UTF | PCRE2_MULTILINE, &code,
                                           &off, NULL);
            if (!re) {
                PCRE2_UCHAR msg[200];
                pcre2_get_error_message(code, msg, sizeof msg);
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s:%d: bad pattern at column %zu: %s",
                                   path, line, (size_t)off + 1, (const char *)msg);
                break;
            }
            pcre2_code_free(re);
            if (n >= MAX_HEADINGS) {
                st = rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s:%d: more than %d patterns", path,
                                   line, MAX_HEADINGS);
                break;
            }
            if (!(v->headings[n++] = rb_strdup(p)))
                st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        }
        p = nl ? nl + 1 : NULL;
    }
    v->chunking.heading_patterns = (const char *const *)v->headings;
    v->chunking.n_heading_patterns = n;
    free(text);
    free(path);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum rb_status load_templates(struct rb_vertical *v, struct rb_errmsg *err)
{
    char *tdir = rb_path_join(v->dir, "templates");
    if (!tdir)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    DIR *d = opendir(tdir);
    if (!d) {
        enum rb_status st = rb_errmsg_set(err, RB_ERR_NOT_FOUND, "%s: no templates directory", tdir);
        free(tdir);
        return st;
    }
    char *names[MAX_TEMPLATES];
    size_t n = 0;
    enum rb_status st = RB_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && st == RB_OK) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".tmpl") != 0)
            continue;
        if (n >= MAX_TEMPLATES)
            st = rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s: more than %d templates", tdir,
                               MAX_TEMPLATES);
        else if (!(names[n++] = rb_strdup(e->d_name)))
            st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && st == RB_OK; i++) {
        char *path = rb_path_join(tdir, names[i]);
        char *text = NULL;
        size_t len = 0;
        st = path ? rb_fs_read_file(path, 1 << 20, &text, &len) : RB_ERR_NOMEM;
        if (st != RB_OK) {
            rb_errmsg_set(err, st, "%s: cannot read (%s)", path ? path : names[i], rb_status_str(st));
            free(path);
            break;
        }
        struct rb_template *t = NULL;
        st = rb_template_parse(path, text, len, &t, err);
        free(text);
        if (st == RB_OK) {
            char *want = rb_asprintf("%s.%s.tmpl", t->name, rb_vertical_lang_name(t->lang));
            if (!want || strcmp(want, names[i]) != 0)
                st = rb_errmsg_set(err, RB_ERR_FORMAT,
                                   "%s: the header says name '%s', lang '%s': the file must be "
                                   "called %s",
                                   path, t->name, rb_vertical_lang_name(t->lang),
                                   want ? want : "?");
            free(want);
            if (st == RB_OK) {
                t->id = rb_asprintf("%s/%s.%s", v->name, t->name, rb_vertical_lang_name(t->lang));
                v->templates[v->n_templates++] = t;
            } else {
                rb_template_free(t);
            }
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (st == RB_OK) {
        for (int lang = 0; lang < RB_VERTICAL_LANG_COUNT && st == RB_OK; lang++) {
            bool found = false;
            for (size_t i = 0; i < v->n_templates; i++)
                found = found || (strcmp(v->templates[i]->name, "answer") == 0 &&
                                  v->templates[i]->lang == (enum rb_vertical_lang)lang);
            if (!found)
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: missing answer.%s.tmpl", tdir,
                                   rb_vertical_lang_name((enum rb_vertical_lang)lang));
        }
    }
    free(tdir);
    return st;
}

static enum rb_status parse_rules(struct rb_vertical *v, const char *text, struct rb_errmsg *err)
{
    v->redaction.types = 0;
    if (strcmp(text, "all") == 0) {
        v->redaction.types = RB_PII_ALL;
        return RB_OK;
    }
    if (strcmp(text, "none") == 0)
        return RB_OK;
    char *copy = rb_strdup(text);
    if (!copy)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st = RB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok && st == RB_OK;
         tok = strtok_r(NULL, ", \t", &save)) {
        enum rb_pii_type t;
        if (rb_pii_type_parse(tok, &t) != RB_OK)
            st = rb_errmsg_set(err, RB_ERR_CONFIG,
                               "%s/pack.ini: redaction.rules: unknown rule '%s' (known: card, iban, "
                               "ssn, cn_id, phone, email, dob, mrn, account, all, none)",
                               v->dir, tok);
        else
            v->redaction.types |= RB_PII_MASK(t);
    }
    free(copy);
    return st;
}

enum rb_status rb_vertical_load_dir(const char *dir, struct rb_vertical **out,
                                    struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_vertical *v = calloc(1, sizeof *v);
    if (!v)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    v->dir = rb_strdup(dir);
    char *ini_path = rb_path_join(dir, "pack.ini");
    enum rb_status st = v->dir && ini_path ? rb_config_load(ini_path, &v->ini, err) : RB_ERR_NOMEM;
    if (st == RB_ERR_NOT_FOUND)
        rb_errmsg_set(err, st, "%s: not a vertical pack (no pack.ini)", dir);
    free(ini_path);
    if (st == RB_OK)
        st = rb_config_check_known(v->ini, known_keys, err);
    const struct rb_config *c = v->ini;
    if (st == RB_OK) {
        v->name = rb_config_str(c, "pack", "name", NULL);
        v->version = rb_config_str(c, "pack", "version", NULL);
        v->description = rb_config_str(c, "pack", "description", "");
        if (!valid_pack_name(v->name))
            st = rb_errmsg_set(err, RB_ERR_CONFIG,
                               "%s/pack.ini: [pack] name is missing or not [a-z0-9_-]+", dir);
        else if (!v->version || !*v->version)
            st = rb_errmsg_set(err, RB_ERR_CONFIG, "%s/pack.ini: [pack] version is missing", dir);
    }
    int64_t i64;
    struct rb_vertical_policy *p = &v->policy;
    if (st == RB_OK)
        st = rb_config_double(c, "answer", "min_evidence", 0.3, 0, 1, &p->min_evidence, err);
    if (st == RB_OK)
        st = rb_config_double(c, "answer", "min_citation_coverage", 0.5, 0, 1,
                              &p->min_citation_coverage, err);
    if (st == RB_OK && (st = rb_config_int(c, "answer", "max_sentences", 3, 1, 50, &i64, err)) == RB_OK)
        p->max_sentences = (size_t)i64;
    if (st == RB_OK)
        st = rb_config_bool(c, "answer", "figures_from_sources", false, &p->figures_from_sources, err);
    if (st == RB_OK)
        st = rb_config_bool(c, "answer", "never_invent_dosages", false, &p->never_invent_dosages, err);
    if (st == RB_OK)
        st = rb_config_bool(c, "answer", "disclaimer_required", false, &p->disclaimer_required, err);
    if (st == RB_OK) {
        static const char *const sfx[] = {"en", "zh"};
        for (int l = 0; l < RB_VERTICAL_LANG_COUNT && st == RB_OK; l++) {
            char key[32];
            snprintf(key, sizeof key, "disclaimer_%s", sfx[l]);
            p->disclaimer[l] = rb_config_str(c, "answer", key, NULL);
            snprintf(key, sizeof key, "refusal_%s", sfx[l]);
            p->refusal[l] = rb_config_str(c, "answer", key, NULL);
            /* The rules are longer than an INI line: rules.<lang>.txt. */
            char *rules_path = rb_asprintf("%s/rules.%s.txt", dir, sfx[l]);
            size_t rl = 0;
            enum rb_status rs = rules_path ? rb_fs_read_file(rules_path, 64 * 1024,
                                                             &v->rules_text[l], &rl)
                                           : RB_ERR_NOMEM;
            if (rs == RB_OK && !rb_utf8_valid(v->rules_text[l], rl))
                st = rb_errmsg_set(err, RB_ERR_ENCODING, "%s: not valid UTF-8", rules_path);
            else if (rs == RB_OK) {
                while (rl && (v->rules_text[l][rl - 1] == '\n' || v->rules_text[l][rl - 1] == '\r'))
                    v->rules_text[l][--rl] = '\0';
                p->rules[l] = v->rules_text[l];
            } else if (rs != RB_ERR_NOT_FOUND)
                st = rb_errmsg_set(err, rs, "%s: cannot read (%s)", rules_path, rb_status_str(rs));
            free(rules_path);
            const char *texts[] = {p->disclaimer[l], p->refusal[l]};
            for (size_t k = 0; k < 2 && st == RB_OK; k++)
                if (texts[k] && !rb_utf8_valid(texts[k], strlen(texts[k])))
                    st = rb_errmsg_set(err, RB_ERR_ENCODING, "%s/pack.ini: [answer] %s text is not valid UTF-8", dir, sfx[l]);
            if (st == RB_OK && p->disclaimer_required && (!p->disclaimer[l] || !*p->disclaimer[l]))
                st = rb_errmsg_set(err, RB_ERR_CONFIG,
                                   "%s/pack.ini: disclaimer_required is set but [answer] "
                                   "disclaimer_%s is missing",
                                   dir, sfx[l]);
        }
    }
    int64_t chunk = 0, overlap = 0;
    if (st == RB_OK)
        st = rb_config_int(c, "chunking", "chunk_tokens", 400, 32, 8192, &chunk, err);
    if (st == RB_OK)
        st = rb_config_int(c, "chunking", "overlap_tokens", 50, 0, 4096, &overlap, err);
    if (st == RB_OK && overlap >= chunk)
        st = rb_errmsg_set(err, RB_ERR_CONFIG,
                           "%s/pack.ini: chunking.overlap_tokens (%lld) must be below chunk_tokens (%lld)",
                           dir, (long long)overlap, (long long)chunk);
    v->chunking.chunk_tokens = (size_t)chunk;
    v->chunking.overlap_tokens = (size_t)overlap;
    if (st == RB_OK) {
        const char *headings = rb_config_str(c, "chunking", "headings", NULL);
        if (headings) {
            if (strchr(headings, '/') || headings[0] == '.')
                st = rb_errmsg_set(err, RB_ERR_CONFIG,
                                   "%s/pack.ini: chunking.headings must be a file name in the pack",
                                   dir);
            else
                st = load_headings(v, headings, err);
        }
    }
    if (st == RB_OK)
        st = parse_rules(v, rb_config_str(c, "redaction", "rules", "all"), err);
    if (st == RB_OK)
        st = rb_config_bool(c, "redaction", "apply_to_audit", true, &v->redaction.apply_to_audit, err);
    if (st == RB_OK)
        st = rb_config_bool(c, "redaction", "apply_to_answers", true, &v->redaction.apply_to_answers, err);
    if (st == RB_OK)
        st = rb_config_bool(c, "redaction", "apply_to_ingest", false, &v->redaction.apply_to_ingest, err);
    if (st == RB_OK) {
        struct rb_redactor_options ro = {
            .types = v->redaction.types,
            .account_context = rb_config_str(c, "redaction", "account_context", NULL),
        };
        if (v->redaction.types) {
            st = rb_redactor_create(&ro, &v->redactor, err);
            if (st != RB_OK) {
                char msg[RB_ERRMSG_MAX];
                rb_strlcpy(msg, err->text, sizeof msg);
                rb_errmsg_set(err, st, "%s/pack.ini: %s", dir, msg);
            }
        }
    }
    if (st == RB_OK)
        st = load_templates(v, err);
    if (st != RB_OK) {
        rb_vertical_free(v);
        return st;
    }
    *out = v;
    return RB_OK;
}

/* ============================================================= search path */

static enum rb_status add_dir(char ***dirs, size_t *n, char *dir)
{
    if (!dir)
        return RB_ERR_NOMEM;
    if (!rb_fs_is_dir(dir)) {
        free(dir);
        return RB_OK;
    }
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*dirs)[i], dir) == 0) {
            free(dir);
            return RB_OK;
        }
    }
    char **g = realloc(*dirs, (*n + 1) * sizeof *g);
    if (!g) {
        free(dir);
        return RB_ERR_NOMEM;
    }
    *dirs = g;
    (*dirs)[(*n)++] = dir;
    return RB_OK;
}

enum rb_status rb_vertical_search_path(const char *data_dir, const struct rb_config *cfg,
                                       char ***dirs, size_t *n)
{
    *dirs = NULL;
    *n = 0;
    enum rb_status st = RB_OK;
    const char *configured = cfg ? rb_config_str(cfg, "verticals", "dir", NULL) : NULL;
    if (configured)
        st = add_dir(dirs, n, rb_strdup(configured));
    if (st == RB_OK && data_dir)
        st = add_dir(dirs, n, rb_path_join(data_dir, "verticals"));
    const char *env = getenv("RAGBOX_VERTICALS_DIR");
    if (st == RB_OK && env && *env)
        st = add_dir(dirs, n, rb_strdup(env));
    if (st == RB_OK)
        st = add_dir(dirs, n, rb_strdup(RAGBOX_VERTICALS_SYSTEM_DIR));
#ifdef RAGBOX_VERTICALS_SOURCE_DIR
    if (st == RB_OK)
        st = add_dir(dirs, n, rb_strdup(RAGBOX_VERTICALS_SOURCE_DIR));
#endif
    if (st != RB_OK) {
        for (size_t i = 0; i < *n; i++)
            free((*dirs)[i]);
        free(*dirs);
        *dirs = NULL;
        *n = 0;
    }
    return st;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

enum rb_status rb_vertical_open(const char *name, const char *data_dir,
                                const struct rb_config *cfg, struct rb_vertical **out,
                                struct rb_errmsg *err)
{
    *out = NULL;
    if (!valid_pack_name(name))
        return rb_errmsg_set(err, RB_ERR_INVALID, "invalid vertical name '%s' (use [a-z0-9_-])",
                             name ? name : "");
    char **dirs;
    size_t n;
    if (rb_vertical_search_path(data_dir, cfg, &dirs, &n) != RB_OK)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st = RB_ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        char *pack = rb_path_join(dirs[i], name);
        char *ini = pack ? rb_path_join(pack, "pack.ini") : NULL;
        bool present = ini && rb_fs_exists(ini);
        free(ini);
        if (present) {
            st = rb_vertical_load_dir(pack, out, err);
            if (st == RB_OK && strcmp(rb_vertical_name(*out), name) != 0) {
                st = rb_errmsg_set(err, RB_ERR_CONFIG, "%s/pack.ini: [pack] name is '%s', not '%s'",
                                   pack, rb_vertical_name(*out), name);
                rb_vertical_free(*out);
                *out = NULL;
            }
            free(pack);
            break;
        }
        free(pack);
    }
    if (st == RB_ERR_NOT_FOUND) {
        struct rb_buf b;
        rb_buf_init(&b, 4096);
        for (size_t i = 0; i < n; i++)
            if (rb_buf_printf(&b, "%s%s", i ? ", " : "", dirs[i]) != RB_OK)
                break;
        rb_errmsg_set(err, st, "no vertical pack '%s' in %s", name, b.len ? b.data : "(no pack directories)");
        rb_buf_free(&b);
    }
    free_list(dirs, n);
    return st;
}

enum rb_status rb_vertical_list(const char *data_dir, const struct rb_config *cfg, char ***names,
                                size_t *n)
{
    *names = NULL;
    *n = 0;
    char **dirs;
    size_t nd;
    enum rb_status st = rb_vertical_search_path(data_dir, cfg, &dirs, &nd);
    if (st != RB_OK)
        return st;
    for (size_t i = 0; i < nd && st == RB_OK; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d)
            continue;
        struct dirent *e;
        while (st == RB_OK && (e = readdir(d)) != NULL) {
            if (!valid_pack_name(e->d_name))
                continue;
            char *ini = rb_asprintf("%s/%s/pack.ini", dirs[i], e->d_name);
            bool present = ini && rb_fs_exists(ini);
            free(ini);
            bool dup = false;
            for (size_t k = 0; k < *n; k++)
                dup = dup || strcmp((*names)[k], e->d_name) == 0;
            if (!present || dup)
                continue;
            char **g = realloc(*names, (*n + 1) * sizeof *g);
            if (!g || !(g[*n] = rb_strdup(e->d_name))) {
                if (g)
                    *names = g;
                st = RB_ERR_NOMEM;
                break;
            }
            *names = g;
            (*n)++;
        }
        closedir(d);
    }
    free_list(dirs, nd);
    if (st != RB_OK) {
        free_list(*names, *n);
        *names = NULL;
        *n = 0;
        return st;
    }
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_str);
    return RB_OK;
}
