/* The chunker: section paths, sentence boundaries (English and CJK), table
 * rows kept with their header row, overlap, page numbers and offsets. */
#include "ingest-check.h"

static struct rb_ingest_doc *parse_mem(const char *text, const char *name)
{
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    enum rb_status st = rb_ingest_parse_buffer(text, strlen(text), name, RB_INGEST_FORMAT_UNKNOWN,
                                               NULL, &d, &e);
    CHECK_MSG(st == RB_OK, "%s", e.text);
    return d;
}

/* Every chunk: text equals the document range (or header row + range for a
 * table chunk), offsets ordered, char offsets agree with the bytes. */
static void check_invariants(const struct rb_ingest_doc *d, const struct rb_ingest_chunks *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct rb_ingest_chunk *k = &c->items[i];
        CHECK(k->byte_start < k->byte_end && k->byte_end <= d->text_len);
        size_t n = k->byte_end - k->byte_start;
        bool same = k->text_len == n && memcmp(k->text, d->text + k->byte_start, n) == 0;
        bool header = k->text_len > n && memcmp(k->text + (k->text_len - n), d->text + k->byte_start, n) == 0 &&
                      k->text[k->text_len - n - 1] == '\n';
        CHECK_MSG(same || header, "chunk %zu text does not match its offsets", i);
        CHECK_EQ_INT(k->char_start, rb_utf8_count(d->text, k->byte_start));
        CHECK_EQ_INT(k->char_end, rb_utf8_count(d->text, k->byte_end));
        CHECK(rb_utf8_valid(k->text, k->text_len));
        CHECK(k->token_count > 0);
        if (i)
            CHECK(k->byte_start >= c->items[i - 1].byte_start);
    }
}

static const char *section_of(const struct rb_ingest_chunks *c, const char *needle)
{
    for (size_t i = 0; i < c->n; i++)
        if (strstr(c->items[i].text, needle))
            return c->items[i].section ? c->items[i].section : "";
    return NULL;
}

static void test_sections_sentences(void)
{
    const char *md =
        "# Annual Report\n\nIntro text for the report.\n\n"
        "## 3 Results\n\n### 3.2 Outcomes\n\n"
        "Revenue grew by 4.5 percent in the year. Dr. Smith said costs fell. The U.S. market "
        "was flat! Was it enough? Margins improved again. Cash flow was strong throughout the "
        "period. Debt was reduced by a third. Headcount stayed level.\n\n"
        "## 4 Risks\n\nCredit risk is moderate.\n";
    struct rb_ingest_doc *d = parse_mem(md, "report.md");
    if (!d)
        return;
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 32;
    o.overlap_tokens = 10;
    struct rb_ingest_chunks c;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    check_invariants(d, &c);
    CHECK(c.n >= 4);
    CHECK_STR(section_of(&c, "Revenue grew"), "Annual Report > 3 Results > 3.2 Outcomes");
    CHECK_STR(section_of(&c, "Credit risk"), "Annual Report > 4 Risks");
    CHECK_STR(section_of(&c, "Intro text"), "Annual Report");
    /* no chunk spans two sections */
    for (size_t i = 0; i < c.n; i++)
        CHECK(!(strstr(c.items[i].text, "Headcount") && strstr(c.items[i].text, "Credit")));
    /* never cut inside a sentence: every chunk ends at a sentence end or block end */
    for (size_t i = 0; i < c.n; i++) {
        const char *t = c.items[i].text;
        char last = t[c.items[i].text_len - 1];
        CHECK_MSG(last == '.' || last == '!' || last == '?' || strstr(t, "Results"),
                  "chunk %zu ends mid-sentence: '%s'", i, t);
        /* abbreviations and decimals did not split sentences */
        CHECK(strncmp(t, "Smith", 5) != 0 && strncmp(t, "S. market", 9) != 0 &&
              strncmp(t, "5 percent", 9) != 0);
    }
    /* overlap: the sentence before a cut is repeated at the start of the next chunk */
    bool overlap = false;
    for (size_t i = 1; i < c.n; i++)
        if (c.items[i].byte_start < c.items[i - 1].byte_end)
            overlap = true;
    CHECK(overlap);
    rb_ingest_chunks_free(&c);
    /* without overlap, chunks tile the text */
    o.overlap_tokens = 0;
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    for (size_t i = 1; i < c.n; i++)
        CHECK(c.items[i].byte_start >= c.items[i - 1].byte_end);
    rb_ingest_chunks_free(&c);
    rb_ingest_doc_free(d);
}

static void test_cjk(void)
{
    const char *zh = "第一句话讲述了背景情况。第二句话说明了原因！第三句话提出了问题？"
                     "第四句话给出了答案；第五句话是结论。“第六句话带引号。”第七句话结束。";
    struct rb_ingest_doc *d = parse_mem(zh, "zh.txt");
    if (!d)
        return;
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 30;
    o.overlap_tokens = 0;
    struct rb_ingest_chunks c;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    check_invariants(d, &c);
    CHECK(c.n >= 2);
    for (size_t i = 0; i < c.n; i++) {
        const char *t = c.items[i].text;
        size_t n = c.items[i].text_len;
        /* ends on 。！？； or a closing quote after one */
        CHECK_MSG(n >= 3 && (!strcmp(t + n - 3, "。") || !strcmp(t + n - 3, "！") ||
                             !strcmp(t + n - 3, "？") || !strcmp(t + n - 3, "；") ||
                             !strcmp(t + n - 3, "”")),
                  "chunk %zu: %s", i, t);
        CHECK(c.items[i].token_count <= 30);
    }
    /* the quoted sentence keeps its closing quote */
    CHECK(section_of(&c, "第六句话带引号。”") != NULL);
    rb_ingest_chunks_free(&c);
    rb_ingest_doc_free(d);
}

static void test_table_header(void)
{
    struct rb_buf md;
    rb_buf_init(&md, 0);
    REQUIRE(rb_buf_append_str(&md, "# Prices\n\n| Item | Region | Price |\n|---|---|---|\n") == RB_OK);
    for (int i = 0; i < 40; i++)
        REQUIRE(rb_buf_printf(&md, "| widget-%02d | north | %d.50 |\n", i, i * 3) == RB_OK);
    struct rb_ingest_doc *d = parse_mem(md.data, "prices.md");
    rb_buf_free(&md);
    if (!d)
        return;
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 60;
    struct rb_ingest_chunks c;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    check_invariants(d, &c);
    CHECK(c.n >= 3);
    int rows = 0;
    for (size_t i = 0; i < c.n; i++) {
        /* every chunk of the table starts with the header row */
        const char *t = c.items[i].text;
        const char *body = strstr(t, "Item | Region | Price");
        CHECK_MSG(body != NULL, "chunk %zu lacks the header row: %.60s", i, t);
        CHECK_STR(c.items[i].section, "Prices");
        for (const char *p = t; (p = strstr(p, "widget-")); p++)
            rows++;
        CHECK(c.items[i].token_count <= 60);
    }
    CHECK_EQ_INT(rows, 40); /* rows are not repeated (no overlap inside tables) */
    rb_ingest_chunks_free(&c);
    rb_ingest_doc_free(d);
}

static void test_pdf_pages(void)
{
    char *buf = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(check_shared("docs/pdf/text/pdflatex-outline.pdf"), 1 << 26, &buf, &len) == RB_OK);
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_parse_buffer(buf, len, "x.pdf", RB_INGEST_FORMAT_UNKNOWN, NULL, &d, &e) == RB_OK);
    free(buf);
    struct rb_ingest_chunks c;
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 128;
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    check_invariants(d, &c);
    bool saw_p2 = false, saw_span = false;
    for (size_t i = 0; i < c.n; i++) {
        CHECK(c.items[i].page_start >= 1 && c.items[i].page_end <= 4 &&
              c.items[i].page_start <= c.items[i].page_end);
        if (c.items[i].section && !strcmp(c.items[i].section, "8 Bar"))
            CHECK_EQ_INT(c.items[i].page_start, 4);
        saw_p2 |= c.items[i].page_start == 2;
        saw_span |= c.items[i].page_end > c.items[i].page_start;
    }
    CHECK(saw_p2);
    CHECK(saw_span); /* a section continuing over a page break */
    rb_ingest_chunks_free(&c);
    rb_ingest_doc_free(d);
}

static size_t count_chars(void *ctx, const char *text, size_t len)
{
    (*(int *)ctx)++;
    return rb_utf8_count(text, len);
}

static void test_callback_and_long_sentence(void)
{
    /* one sentence far over budget is split at spaces; the callback is used */
    struct rb_buf t;
    rb_buf_init(&t, 0);
    for (int i = 0; i < 300; i++)
        REQUIRE(rb_buf_printf(&t, "word%d ", i) == RB_OK);
    REQUIRE(rb_buf_append_str(&t, "end.") == RB_OK);
    struct rb_ingest_doc *d = parse_mem(t.data, "long.txt");
    rb_buf_free(&t);
    if (!d)
        return;
    int calls = 0;
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 200; /* characters, by this counter */
    o.count = count_chars;
    o.count_ctx = &calls;
    struct rb_ingest_chunks c;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_ingest_chunk(d, &o, &c, &e) == RB_OK);
    check_invariants(d, &c);
    CHECK(calls > 0);
    CHECK(c.n >= 10);
    for (size_t i = 0; i < c.n; i++) {
        CHECK(c.items[i].token_count <= 200);
        CHECK(c.items[i].text[0] == 'w' || c.items[i].text[0] == 'e'); /* cut at spaces */
    }
    rb_ingest_chunks_free(&c);
    rb_ingest_doc_free(d);
    /* the estimate: CJK ~1 per character, English ~1.3 per word */
    CHECK_EQ_INT(rb_ingest_estimate_tokens(NULL, "中文分词", strlen("中文分词")), 4);
    size_t en = rb_ingest_estimate_tokens(NULL, "the quick brown fox jumps", 25);
    CHECK(en >= 5 && en <= 8);
}

static void test_config(void)
{
    struct rb_config *cfg = NULL;
    struct rb_errmsg e = {{0}};
    REQUIRE(rb_config_parse("t", "[ingest]\nchunk_tokens = 256\nchunk_overlap = 32\n"
                                 "[ingest.finance]\nchunk_tokens = 512\n",
                            &cfg, &e) == RB_OK);
    struct rb_ingest_chunk_options o;
    REQUIRE(rb_ingest_chunk_options_from_config(cfg, NULL, &o, &e) == RB_OK);
    CHECK_EQ_INT(o.max_tokens, 256);
    CHECK_EQ_INT(o.overlap_tokens, 32);
    REQUIRE(rb_ingest_chunk_options_from_config(cfg, "finance", &o, &e) == RB_OK);
    CHECK_EQ_INT(o.max_tokens, 512);
    CHECK_EQ_INT(o.overlap_tokens, 32);
    rb_config_free(cfg);
    REQUIRE(rb_config_parse("t", "[ingest]\nchunk_tokens = 3\n", &cfg, &e) == RB_OK);
    CHECK(rb_ingest_chunk_options_from_config(cfg, NULL, &o, &e) == RB_ERR_CONFIG);
    rb_config_free(cfg);
}

int main(void)
{
    test_sections_sentences();
    test_cjk();
    test_table_header();
    test_pdf_pages();
    test_callback_and_long_sentence();
    test_config();
    return check_finish();
}
