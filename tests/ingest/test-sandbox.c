/* The sandbox and the limits: a zip bomb is refused before inflating, a
 * slow parse is killed at its deadline, the pipe format round-trips and
 * rejects every corruption, missing/unsupported files fail cleanly. */
#include <zip.h>

#include "ingest-check.h"

/* A DOCX-shaped ZIP whose document.xml inflates to `size` bytes of spaces. */
static char *make_bomb(size_t size, size_t *len)
{
    const char *path = "bomb.docx";
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", check_tmpdir("bomb"), path);
    int ze = 0;
    zip_t *z = zip_open(full, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    REQUIRE(z != NULL);
    char *spaces = malloc(size);
    REQUIRE(spaces != NULL);
    memset(spaces, ' ', size);
    zip_source_t *s = zip_source_buffer(z, spaces, size, 0);
    REQUIRE(s && zip_file_add(z, "word/document.xml", s, 0) >= 0);
    REQUIRE(zip_close(z) == 0);
    free(spaces);
    char *data = NULL;
    REQUIRE(rb_fs_read_file(full, 1 << 26, &data, len) == RB_OK);
    return data;
}

static void test_zip_bomb(void)
{
    size_t len = 0;
    char *bomb = make_bomb((size_t)24 << 20, &len);
    CHECK(len < (1 << 20)); /* 24 MiB compresses to well under 1 MiB */
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    int64_t t0 = rb_time_mono_ns();
    enum rb_status st = rb_ingest_parse_sandboxed(bomb, len, "bomb.docx", NULL, &d, &e);
    CHECK_EQ_INT(st, RB_ERR_TOO_LARGE);
    CHECK(strstr(e.text, "zip bomb") != NULL);
    CHECK(d == NULL);
    /* refused up front, without inflating */
    CHECK((rb_time_mono_ns() - t0) < 2000000000LL);
    /* a tighter total limit applies regardless of the ratio */
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.max_unzipped_bytes = 1 << 20;
    lim.max_zip_ratio = 1e9;
    st = rb_ingest_parse_sandboxed(bomb, len, "bomb.docx", &lim, &d, &e);
    CHECK_EQ_INT(st, RB_ERR_TOO_LARGE);
    free(bomb);
}

static void test_timeout(void)
{
    /* OCR of a scanned Chinese page takes seconds: a 0.5 s deadline kills it. */
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.timeout_ms = 500;
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    int64_t t0 = rb_time_mono_ns();
    enum rb_status st =
        rb_ingest_parse_file(check_shared("docs/pdf-zh/zh-briefing-1-scanned.pdf"), &lim, &d, &e);
    double s = (double)(rb_time_mono_ns() - t0) / 1e9;
    CHECK_EQ_INT(st, RB_ERR_TIMEOUT);
    CHECK(s < 2.5);
    CHECK(strstr(e.text, "longer than") != NULL);
    CHECK(d == NULL);
}

static void test_limits(void)
{
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.max_file_bytes = 1000;
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    CHECK_EQ_INT(rb_ingest_parse_file(check_shared("docs/pdf/text/pdflatex-outline.pdf"), &lim, &d, &e),
                 RB_ERR_TOO_LARGE);
    rb_ingest_limits_default(&lim);
    lim.max_pages = 2;
    CHECK_EQ_INT(rb_ingest_parse_file(check_shared("docs/pdf/text/pdflatex-outline.pdf"), &lim, &d, &e),
                 RB_ERR_TOO_LARGE);
    CHECK(strstr(e.text, "pages") != NULL);
    CHECK_EQ_INT(rb_ingest_parse_file("/nonexistent/file.pdf", NULL, &d, &e), RB_ERR_NOT_FOUND);
    /* garbage with a known extension */
    const char junk[] = "\x01\x02\x03 not a zip";
    CHECK(rb_ingest_parse_sandboxed(junk, sizeof junk, "x.docx", NULL, &d, &e) != RB_OK);
    CHECK(d == NULL);
    CHECK_EQ_INT(rb_ingest_parse_sandboxed(junk, sizeof junk, "x.bin", NULL, &d, &e),
                 RB_ERR_UNSUPPORTED);
    /* deeply nested HTML is bounded, not a stack overflow */
    struct rb_buf deep;
    rb_buf_init(&deep, 0);
    for (int i = 0; i < 100000; i++)
        REQUIRE(rb_buf_append_str(&deep, "<div>") == RB_OK);
    REQUIRE(rb_buf_append_str(&deep, "deep text") == RB_OK);
    enum rb_status st = rb_ingest_parse_sandboxed(deep.data, deep.len, "deep.html", NULL, &d, &e);
    CHECK(st == RB_OK || st == RB_ERR_TOO_LARGE);
    rb_ingest_doc_free(d);
    d = NULL;
    rb_buf_reset(&deep);
    for (int i = 0; i < 50000; i++)
        REQUIRE(rb_buf_append_str(&deep, "> ") == RB_OK);
    REQUIRE(rb_buf_append_str(&deep, "quote\n") == RB_OK);
    st = rb_ingest_parse_sandboxed(deep.data, deep.len, "deep.md", NULL, &d, &e);
    CHECK(st == RB_OK || st == RB_ERR_TOO_LARGE);
    rb_ingest_doc_free(d);
    rb_buf_free(&deep);
}

static void test_pipe_format(void)
{
    const char *md = "# Title\n\nSome text here.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- item\n";
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_parse_buffer(md, strlen(md), "t.md", RB_INGEST_FORMAT_UNKNOWN, NULL, &d, &e) == RB_OK);
    struct rb_buf out;
    rb_buf_init(&out, 0);
    REQUIRE(rb_ingest_doc_serialize(d, &out) == RB_OK);
    struct rb_ingest_doc *r = NULL;
    REQUIRE(rb_ingest_doc_deserialize(out.data, out.len, &r, &e) == RB_OK);
    CHECK_EQ_INT(r->n_blocks, d->n_blocks);
    CHECK_EQ_INT(r->text_len, d->text_len);
    CHECK(memcmp(r->text, d->text, d->text_len) == 0);
    for (size_t i = 0; i < d->n_blocks; i++) {
        CHECK_EQ_INT(r->blocks[i].kind, d->blocks[i].kind);
        CHECK_EQ_INT(r->blocks[i].char_start, d->blocks[i].char_start);
        CHECK_EQ_INT(r->blocks[i].n_rows, d->blocks[i].n_rows);
    }
    rb_ingest_doc_free(r);
    /* every truncation and many single-byte corruptions are refused or parse
     * into a valid document, never crash (ASan watches) */
    for (size_t cut = 0; cut < out.len; cut++) {
        r = NULL;
        CHECK(rb_ingest_doc_deserialize(out.data, cut, &r, &e) != RB_OK);
        CHECK(r == NULL);
    }
    for (size_t pos = 0; pos < out.len; pos++) {
        char saved = out.data[pos];
        out.data[pos] = (char)(saved ^ 0x5A);
        r = NULL;
        if (rb_ingest_doc_deserialize(out.data, out.len, &r, &e) == RB_OK) {
            for (size_t i = 0; i < r->n_blocks; i++)
                CHECK(r->blocks[i].byte_end <= r->text_len);
            rb_ingest_doc_free(r);
        }
        out.data[pos] = saved;
    }
    rb_buf_free(&out);
    rb_ingest_doc_free(d);
}

static void test_detect(void)
{
    CHECK_EQ_INT(rb_ingest_detect("a.txt", "%PDF-1.4\n", 9), RB_INGEST_FORMAT_PDF);
    CHECK_EQ_INT(rb_ingest_detect("a.bin", "\x89PNG\r\n\x1a\n", 8), RB_INGEST_FORMAT_IMAGE);
    CHECK_EQ_INT(rb_ingest_detect("a.csv", "a,b\n1,2\n", 8), RB_INGEST_FORMAT_CSV);
    CHECK_EQ_INT(rb_ingest_detect("noext", "<!DOCTYPE html><html>", 21), RB_INGEST_FORMAT_HTML);
    CHECK_EQ_INT(rb_ingest_detect("noext", "plain words\n", 12), RB_INGEST_FORMAT_TEXT);
    CHECK_EQ_INT(rb_ingest_detect("x.exe", "MZ\0\0\0", 5), RB_INGEST_FORMAT_UNKNOWN);
}

/* "unit" (default): detection, pipe format, limits; "heavy": the zip bomb
 * and the wall-clock kill (registered as an integration test). */
int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "heavy")) {
        test_zip_bomb();
        test_timeout();
    } else {
        test_detect();
        test_pipe_format();
        test_limits();
    }
    return check_finish();
}
