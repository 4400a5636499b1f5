/* Vertical packs: the four shipped packs load and render in both languages;
 * broken packs and templates give clear errors with file and line. */
#include "check.h"
#include "ragbox/verticals.h"

static const char *packs_dir(void)
{
    static char buf[4096];
    const char *src = getenv("RAGBOX_SOURCE");
    snprintf(buf, sizeof buf, "%s/verticals/packs", src ? src : ".");
    return buf;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    REQUIRE(rb_fs_write_atomic(path, text, strlen(text)) == RB_OK);
}

static void test_shipped(void)
{
    static const char *const names[] = {"general", "finance", "healthcare", "government"};
    for (size_t i = 0; i < 4; i++) {
        char dir[4400];
        snprintf(dir, sizeof dir, "%s/%s", packs_dir(), names[i]);
        struct rb_vertical *v = NULL;
        struct rb_errmsg err = {{0}};
        enum rb_status st = rb_vertical_load_dir(dir, &v, &err);
        CHECK_MSG(st == RB_OK, "%s: %s", names[i], err.text);
        if (!v)
            continue;
        CHECK_STR(rb_vertical_name(v), names[i]);
        const struct rb_vertical_policy *p = rb_vertical_policy(v);
        CHECK(p->min_evidence > 0 && p->min_evidence < 1);
        CHECK(p->rules[RB_VERTICAL_EN] && p->rules[RB_VERTICAL_ZH]);
        CHECK(rb_vertical_chunking(v)->chunk_tokens >= 128);
        CHECK(rb_vertical_chunking(v)->n_heading_patterns >= 3);
        CHECK(rb_vertical_redactor(v) != NULL);
        for (int lang = 0; lang < RB_VERTICAL_LANG_COUNT; lang++) {
            const struct rb_template *t = rb_vertical_template(v, "answer", (enum rb_vertical_lang)lang);
            REQUIRE(t);
            CHECK(rb_template_lang(t) == (enum rb_vertical_lang)lang);
            CHECK(rb_template_version(t) && *rb_template_version(t));
            char want_id[64];
            snprintf(want_id, sizeof want_id, "%s/answer.%s", names[i],
                     rb_vertical_lang_name((enum rb_vertical_lang)lang));
            CHECK_STR(rb_template_id(t), want_id);
            struct rb_template_vars vars = {.context = "[1] Revenue was USD 5.2 million in FY2023.",
                                            .question = "What was revenue?"};
            char *sys = NULL, *user = NULL;
            CHECK(rb_template_render(t, v, &vars, &sys, &user, &err) == RB_OK);
            CHECK(sys && user && strstr(user, "USD 5.2 million") && strstr(user, "What was revenue?"));
            CHECK(sys && !strstr(sys, "{{") && user && !strstr(user, "{{"));
            if (p->disclaimer_required && user && sys) {
                const char *d = p->disclaimer[lang];
                CHECK_MSG(strstr(user, d) || strstr(sys, d), "%s: disclaimer not rendered", want_id);
            }
            free(sys);
            free(user);
        }
        rb_vertical_free(v);
    }
    /* pack-specific policy */
    struct rb_vertical *v = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_vertical_open("healthcare", NULL, NULL, &v, &err) == RB_OK);
    CHECK(rb_vertical_policy(v)->never_invent_dosages);
    CHECK(strstr(rb_vertical_policy(v)->disclaimer[RB_VERTICAL_EN], "not medical advice"));
    CHECK(strstr(rb_vertical_policy(v)->disclaimer[RB_VERTICAL_ZH], "不构成医疗建议"));
    CHECK(rb_vertical_redaction(v)->types & RB_PII_MASK(RB_PII_MRN));
    rb_vertical_free(v);
    REQUIRE(rb_vertical_open("finance", NULL, NULL, &v, &err) == RB_OK);
    CHECK(rb_vertical_policy(v)->figures_from_sources);
    CHECK(strstr(rb_vertical_policy(v)->rules[RB_VERTICAL_EN], "period"));
    char *out = NULL;
    const char *t = "账号：6229 7600 9040 0492 278 转入";
    CHECK(rb_redact_text(rb_vertical_redactor(v), t, strlen(t), &out, NULL, NULL, &err) == RB_OK);
    CHECK(out && strstr(out, "[REDACTED:"));
    free(out);
    rb_vertical_free(v);
    REQUIRE(rb_vertical_open("government", NULL, NULL, &v, &err) == RB_OK);
    const struct rb_template *notice = rb_vertical_template(v, "draft-notice", RB_VERTICAL_ZH);
    REQUIRE(notice);
    CHECK(strstr(rb_template_system(notice), "特此通知"));
    CHECK(rb_vertical_template(v, "draft-reply", RB_VERTICAL_EN) != NULL);
    /* missing language falls back to English; missing template is NULL */
    CHECK(rb_vertical_template(v, "no-such", RB_VERTICAL_EN) == NULL);
    rb_vertical_free(v);
    /* the search path lists all four */
    char **names_found = NULL;
    size_t n = 0;
    CHECK(rb_vertical_list(NULL, NULL, &names_found, &n) == RB_OK);
    CHECK(n >= 4);
    for (size_t i = 0; i < n; i++)
        free(names_found[i]);
    free(names_found);
    CHECK(rb_vertical_open("../etc", NULL, NULL, &v, &err) == RB_ERR_INVALID && !v);
    CHECK(rb_vertical_open("nonexistent", NULL, NULL, &v, &err) == RB_ERR_NOT_FOUND && !v);
}

/* A minimal valid pack in a fresh scratch dir, with one file replaced
 * (created with mkdir/write, no shell, to keep the test fast). */
static const char *scratch_root;

static const char *broken_pack(const char *name, const char *file, const char *text)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", scratch_root, name);
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/templates", dir);
    REQUIRE(rb_fs_mkdirs(sub, 0755) == RB_OK);
    write_file(dir, "pack.ini", "[pack]\nname = general\nversion = 1\n");
    write_file(dir, "templates/answer.en.tmpl",
               "name: answer\nversion: 1\nlang: en\n--- system\nx\n--- user\n{{context}} {{question}}\n");
    write_file(dir, "templates/answer.zh.tmpl",
               "name: answer\nversion: 1\nlang: zh\n--- system\n系统\n--- user\n{{context}} {{question}}\n");
    if (file)
        write_file(dir, file, text);
    return dir;
}

static void expect_error(const char *dir, enum rb_status want, const char *needle)
{
    struct rb_vertical *v = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_vertical_load_dir(dir, &v, &err);
    CHECK_MSG(st == want, "got %s (%s), want %s", rb_status_name(st), err.text, rb_status_name(want));
    CHECK(v == NULL);
    CHECK_MSG(strstr(err.text, needle) != NULL, "error '%s' lacks '%s'", err.text, needle);
    rb_vertical_free(v);
}

static void test_broken(void)
{
    const char *hdr = "name: answer\nversion: 1\nlang: en\n";
    char text[1024];
    /* unknown placeholder, with its line */
    snprintf(text, sizeof text, "%s--- system\nBe careful.\n--- user\n{{context}}\nQ: {{question}} {{qestion}}\n", hdr);
    expect_error(broken_pack("unknown-ph", "templates/answer.en.tmpl", text), RB_ERR_FORMAT,
                 "answer.en.tmpl:8: unknown placeholder {{qestion}}");
    /* missing required placeholder */
    snprintf(text, sizeof text, "%s--- system\nx\n--- user\nQ: {{question}}\n", hdr);
    expect_error(broken_pack("missing-ph", "templates/answer.en.tmpl", text), RB_ERR_FORMAT,
                 "must contain {{context}}");
    /* bad UTF-8 on line 6 */
    snprintf(text, sizeof text, "%s--- system\nbad \xC3\x28 byte\n--- user\n{{context}} {{question}}\n", hdr);
    expect_error(broken_pack("bad-utf8", "templates/answer.en.tmpl", text), RB_ERR_ENCODING,
                 "answer.en.tmpl:5: not valid UTF-8");
    /* unterminated placeholder */
    snprintf(text, sizeof text, "%s--- system\nx {{rules\n--- user\n{{context}} {{question}}\n", hdr);
    expect_error(broken_pack("unterminated", "templates/answer.en.tmpl", text), RB_ERR_FORMAT,
                 ":5: unterminated placeholder");
    /* missing header key and section; unknown section; wrong file name */
    expect_error(broken_pack("no-version", "templates/answer.en.tmpl",
                             "name: answer\nlang: en\n--- system\nx\n--- user\n{{context}}{{question}}\n"),
                 RB_ERR_FORMAT, "missing 'version:'");
    expect_error(broken_pack("no-user", "templates/answer.en.tmpl",
                             "name: answer\nversion: 1\nlang: en\n--- system\nx\n"),
                 RB_ERR_FORMAT, "missing the '--- user' section");
    expect_error(broken_pack("bad-section", "templates/answer.en.tmpl",
                             "name: answer\nversion: 1\nlang: en\n--- sytem\nx\n"),
                 RB_ERR_FORMAT, "answer.en.tmpl:4: unknown section");
    expect_error(broken_pack("bad-lang", "templates/answer.en.tmpl",
                             "name: answer\nversion: 1\nlang: fr\n--- system\nx\n--- user\n{{context}}{{question}}\n"),
                 RB_ERR_FORMAT, "answer.en.tmpl:3: lang must be en or zh");
    expect_error(broken_pack("misnamed", "templates/answer.en.tmpl",
                             "name: other\nversion: 1\nlang: en\n--- system\nx\n--- user\n{{context}}{{question}}\n"),
                 RB_ERR_FORMAT, "must be called other.en.tmpl");
    /* pack.ini: unknown key, bad number, bad rule, bad heading pattern */
    expect_error(broken_pack("ini-key", "pack.ini", "[pack]\nname = general\nversion = 1\n[answer]\nmin_evidenc = 0.3\n"),
                 RB_ERR_CONFIG, "min_evidenc");
    expect_error(broken_pack("ini-range", "pack.ini", "[pack]\nname = general\nversion = 1\n[answer]\nmin_evidence = 7\n"),
                 RB_ERR_CONFIG, "min_evidence");
    expect_error(broken_pack("ini-rule", "pack.ini", "[pack]\nname = general\nversion = 1\n[redaction]\nrules = card, passport\n"),
                 RB_ERR_CONFIG, "unknown rule 'passport'");
    expect_error(broken_pack("ini-nodisc", "pack.ini",
                             "[pack]\nname = general\nversion = 1\n[answer]\ndisclaimer_required = true\ndisclaimer_en = x\n"),
                 RB_ERR_CONFIG, "disclaimer_zh is missing");
    const char *d = broken_pack("headings", "pack.ini", "[pack]\nname = general\nversion = 1\n[chunking]\nheadings = headings.txt\n");
    write_file(d, "headings.txt", "# comment\n^#+\\s\n^(unclosed\n");
    expect_error(d, RB_ERR_FORMAT, "headings.txt:3: bad pattern");
    /* the minimal pack itself is valid */
    struct rb_vertical *ok = NULL;
    struct rb_errmsg err = {{0}};
    d = broken_pack("valid", NULL, NULL);
    CHECK_MSG(rb_vertical_load_dir(d, &ok, &err) == RB_OK, "%s", err.text);
    rb_vertical_free(ok);
    char path[4400];
    d = broken_pack("no-ini", NULL, NULL);
    snprintf(path, sizeof path, "%s/pack.ini", d);
    REQUIRE(unlink(path) == 0);
    expect_error(d, RB_ERR_NOT_FOUND, "no pack.ini");
    d = broken_pack("no-zh", NULL, NULL);
    snprintf(path, sizeof path, "%s/templates/answer.zh.tmpl", d);
    REQUIRE(unlink(path) == 0);
    expect_error(d, RB_ERR_FORMAT, "missing answer.zh.tmpl");
}

int main(void)
{
    scratch_root = check_tmpdir("packs");
    test_shipped();
    test_broken();
    return check_finish();
}
