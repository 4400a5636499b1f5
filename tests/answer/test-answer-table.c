/* Batch tables: JSONL, CSV and XLSX round trips with awkward text (quotes,
 * commas, newlines, Chinese, formula-like cells), and hostile inputs. */
#include "check.h"

#include "ragbox/answer.h"

static void roundtrip(const char *dir, const char *ext)
{
    char *h[] = {"id", "question", "refused"};
    char *cells[] = {"q1", "What was \"net\" revenue, in 2019?\nSecond line", "false",
                     "q2", "被告人如何进入被告人家中?", "true",
                     "q3", "=HYPERLINK(\"x\")", NULL};
    struct rb_answer_table t = {.header = h, .cell = cells, .n_rows = 3, .n_cols = 3};
    char path[4200];
    snprintf(path, sizeof path, "%s/out.%s", dir, ext);
    struct rb_errmsg err;
    REQUIRE(rb_answer_table_write(path, &t, &err) == RB_OK);
    struct rb_answer_table r;
    enum rb_status st = rb_answer_table_read(path, &r, &err);
    CHECK_MSG(st == RB_OK, "%s: %s", ext, err.text);
    if (st != RB_OK)
        return;
    CHECK_EQ_INT(r.n_rows, 3);
    CHECK_EQ_INT(r.n_cols, 3);
    CHECK_STR(rb_answer_table_get(&r, 0, "question"), cells[1]);
    CHECK_STR(rb_answer_table_get(&r, 1, "Question"), cells[4]);
    CHECK_STR(rb_answer_table_get(&r, 1, "refused"), "true");
    const char *f = rb_answer_table_get(&r, 2, "question");
    if (strcmp(ext, "csv") == 0)
        CHECK_STR(f, "'=HYPERLINK(\"x\")"); /* neutralised formula */
    else
        CHECK_STR(f, cells[7]);
    CHECK(rb_answer_table_get(&r, 2, "refused") == NULL);
    rb_answer_table_free(&r);
}

static enum rb_status write_lit(const char *path, const char *text)
{
    return rb_fs_write_atomic(path, text, strlen(text));
}

static void hostile(const char *dir)
{
    struct rb_errmsg err;
    struct rb_answer_table r;
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    REQUIRE(write_lit(path, "id,question\n1,\"unterminated\n") == RB_OK);
    CHECK(rb_answer_table_read(path, &r, &err) == RB_ERR_FORMAT);
    CHECK(strstr(err.text, "unterminated") != NULL);
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    REQUIRE(write_lit(path, "{\"id\":1}\n[1,2]\n") == RB_OK);
    CHECK(rb_answer_table_read(path, &r, &err) == RB_ERR_FORMAT);
    CHECK(strstr(err.text, "line 2") != NULL);
    snprintf(path, sizeof path, "%s/bad.xlsx", dir);
    REQUIRE(write_lit(path, "PK\003\004garbage") == RB_OK);
    CHECK(rb_answer_table_read(path, &r, &err) == RB_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/latin1.csv", dir);
    REQUIRE(write_lit(path, "q\n\xe9t\xe9\n") == RB_OK);
    CHECK(rb_answer_table_read(path, &r, &err) == RB_ERR_ENCODING);
    CHECK(rb_answer_table_read("/nonexistent/x.txt", &r, &err) == RB_ERR_UNSUPPORTED);
    /* a real spreadsheet written by Excel (shared strings, numbers) reads */
    enum rb_status st = rb_answer_table_read(check_shared("docs/xlsx/stanley-cups.xlsx"), &r, &err);
    CHECK_MSG(st == RB_OK, "%s", err.text);
    if (st == RB_OK) {
        CHECK(r.n_rows >= 3);
        CHECK(r.n_cols >= 2);
        rb_answer_table_free(&r);
    }
    /* a password-protected workbook is not a zip: a clear error, no crash */
    CHECK(rb_answer_table_read(check_shared("docs/xlsx/password_protected.xlsx"), &r, &err) != RB_OK);
}

int main(void)
{
    const char *dir = check_tmpdir("table");
    roundtrip(dir, "jsonl");
    roundtrip(dir, "csv");
    roundtrip(dir, "xlsx");
    hostile(dir);
    return check_finish();
}
