/* Tables on PDF pages, found from the text geometry, on real documents:
 * a scientific data table, an earnings release's balance sheet (and its
 * chunks carrying the header row), government reports; two- and three-column prose, a court
 * transcript with line numbers and plain text pages yield no table. */
#include "ingest-check.h"

/* Cell `col` of row `row` of table block t (cells are separated by " | "). */
static bool cell_is(const struct rb_ingest_doc *d, const struct rb_ingest_block *t, size_t row,
                    size_t col, const char *want)
{
    if (row >= t->n_rows)
        return false;
    const char *p = d->text + t->rows[row].start, *end = d->text + t->rows[row].end;
    for (size_t c = 0; c < col; c++) {
        const char *bar = memmem(p, (size_t)(end - p), " | ", 3);
        if (!bar)
            return false;
        p = bar + 3;
    }
    const char *bar = memmem(p, (size_t)(end - p), " | ", 3);
    size_t n = (size_t)((bar ? bar : end) - p);
    bool ok = n == strlen(want) && memcmp(p, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  cell (%zu,%zu) is '%.*s', want '%s'\n", row, col, (int)n, p, want);
    return ok;
}

static bool row_is(const struct rb_ingest_doc *d, const struct rb_ingest_block *t, size_t row,
                   const char *want)
{
    if (row >= t->n_rows)
        return false;
    size_t n = t->rows[row].end - t->rows[row].start;
    bool ok = n == strlen(want) && memcmp(d->text + t->rows[row].start, want, n) == 0;
    if (!ok)
        fprintf(stderr, "  row %zu is '%.*s'\n  want     '%s'\n", row, (int)n,
                d->text + t->rows[row].start, want);
    return ok;
}

/* Index of the row of t whose text starts with prefix, or -1. */
static long find_row(const struct rb_ingest_doc *d, const struct rb_ingest_block *t,
                     const char *prefix)
{
    for (size_t r = 0; r < t->n_rows; r++)
        if (t->rows[r].end - t->rows[r].start >= strlen(prefix) &&
            memcmp(d->text + t->rows[r].start, prefix, strlen(prefix)) == 0)
            return (long)r;
    return -1;
}

static size_t count_tables(const struct rb_ingest_doc *d, int page)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_blocks; i++)
        if (d->blocks[i].kind == RB_INGEST_BLOCK_TABLE &&
            (page == 0 || d->blocks[i].page_start == page))
            n++;
    return n;
}

static void test_data_table(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/pdf/embedded-images-tables.pdf", NULL);
    if (!d)
        return;
    CHECK_EQ_INT(count_tables(d, 0), 1);
    long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Inhibitor concentration (g)");
    CHECK(t >= 0);
    if (t >= 0) {
        const struct rb_ingest_block *b = &d->blocks[t];
        CHECK_EQ_INT(b->page_start, 1);
        CHECK_EQ_INT(b->header_rows, 1);
        CHECK_EQ_INT(b->n_rows, 7);
        /* the two-line header cells are joined */
        CHECK(row_is(d, b, 0,
                     "Inhibitor concentration (g) | bc (V/dec) | ba (V/dec) | Ecorr (V) | "
                     "icorr (A/cm2) | Polarization resistance (Ω) | Corrosion rate (mm/year)"));
        CHECK(row_is(d, b, 4, "6 | 0.3233 | 0.0540 | 0.8027 | 5.39E-05 | 373.180 | 0.4318"));
        CHECK(cell_is(d, b, 6, 5, "246.080"));
        /* in reading order: caption before, the following paragraph after */
        long cap = find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Potentiodynamic polarization data");
        long after =
            find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "The plot of inhibitor concentration");
        CHECK(cap >= 0 && cap < t);
        CHECK(after > t);
        /* the table's figures are not repeated as paragraphs */
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "0.3233") < 0);
    }
    rb_ingest_doc_free(d);

    /* the switch: without table detection the figures stay in the text */
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.pdf_tables = false;
    d = parse_shared("docs/pdf/embedded-images-tables.pdf", &lim);
    if (d) {
        CHECK_EQ_INT(count_tables(d, 0), 0);
        CHECK(strstr(d->text, "0.3233") != NULL);
        rb_ingest_doc_free(d);
    }

    /* a text table (no numbers): header from its first row, a header cell
     * spanning two columns split at its words */
    d = parse_shared("docs/pdf/layout-parser-paper-with-table.pdf", NULL);
    if (d) {
        long k = find_block(d, RB_INGEST_BLOCK_TABLE, "PubLayNet [38]");
        CHECK(k >= 0);
        if (k >= 0) {
            const struct rb_ingest_block *b = &d->blocks[k];
            CHECK_EQ_INT(b->header_rows, 1);
            CHECK(row_is(d, b, 0, "Dataset | Base Model1 | Large Model | Notes"));
            CHECK(row_is(d, b, 2,
                         "PRImA [3] | M | - | Layouts of scanned modern magazines and "
                         "scientific reports"));
        }
        rb_ingest_doc_free(d);
    }
}

static void test_balance_sheet(void)
{
    struct rb_ingest_doc *d =
        parse_shared("eval/financebench/docs/ULTABEAUTY_2023Q4_EARNINGS.pdf", NULL);
    if (!d)
        return;
    CHECK_EQ_INT(d->n_pages, 9);
    long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Total liabilities and stockholders");
    CHECK(t >= 0);
    if (t < 0) {
        rb_ingest_doc_free(d);
        return;
    }
    const struct rb_ingest_block *b = &d->blocks[t];
    CHECK_EQ_INT(b->page_start, 7);
    CHECK_EQ_INT(b->page_end, 7);
    CHECK_EQ_INT(b->header_rows, 1);
    /* the two-line dates of the header are joined per column */
    const char *header = " | January 28, 2023 (Unaudited) | January 29, 2022";
    CHECK(row_is(d, b, 0, header));
    long r = find_row(d, b, "Cash and cash equivalents |");
    CHECK(r > 0 && row_is(d, b, (size_t)r, "Cash and cash equivalents | $ 737,877 | $ 431,560"));
    r = find_row(d, b, "Merchandise inventories, net |");
    CHECK(r > 0 && cell_is(d, b, (size_t)r, 1, "1,603,451") &&
          cell_is(d, b, (size_t)r, 2, "1,499,218"));
    /* section labels are rows of their own */
    r = find_row(d, b, "Current assets: |");
    CHECK(r > 0 && cell_is(d, b, (size_t)r, 1, "") && cell_is(d, b, (size_t)r, 2, ""));

    /* chunks: every chunk holding rows of the balance sheet carries its
     * header row (a small budget cuts the sheet into several) */
    struct rb_ingest_chunk_options o;
    rb_ingest_chunk_options_default(&o);
    o.max_tokens = 96;
    o.overlap_tokens = 16;
    struct rb_ingest_chunks ch = {0};
    struct rb_errmsg e = {{0}};
    CHECK(rb_ingest_chunk(d, &o, &ch, &e) == RB_OK);
    size_t hl = b->rows[0].end - b->rows[0].start, in_table = 0, found = 0;
    for (size_t i = 0; i < ch.n; i++) {
        const struct rb_ingest_chunk *c = &ch.items[i];
        if (c->byte_end <= b->rows[1].start || c->byte_start >= b->byte_end)
            continue;
        in_table++;
        CHECK_MSG(memmem(c->text, c->text_len, d->text + b->rows[0].start, hl) != NULL,
                  "chunk %zu lacks the header: %.80s", i, c->text);
        CHECK_EQ_INT(c->page_end, 7);
        if (strstr(c->text, "Merchandise inventories, net | 1,603,451 | 1,499,218"))
            found++;
    }
    CHECK(in_table >= 3);
    CHECK_EQ_INT(found, 1);
    rb_ingest_chunks_free(&ch);

    /* the cash-flow statement on the next page */
    t = find_block(d, RB_INGEST_BLOCK_TABLE, "Operating activities");
    CHECK(t >= 0);
    if (t >= 0) {
        b = &d->blocks[t];
        CHECK_EQ_INT(b->page_start, 8);
        r = find_row(d, b, "Depreciation and amortization |");
        CHECK(r > 0 &&
              row_is(d, b, (size_t)r, "Depreciation and amortization | 241,372 | 268,460"));
    }
    /* the earnings summary: six columns of amounts and percentages */
    t = find_block(d, RB_INGEST_BLOCK_TABLE, "Comparable sales");
    CHECK(t >= 0);
    if (t >= 0) {
        b = &d->blocks[t];
        CHECK_EQ_INT(b->page_start, 1);
        r = find_row(d, b, "Comparable sales |");
        CHECK(r > 0 &&
              row_is(d, b, (size_t)r,
                     "Comparable sales | 15.6% | 21.4% | (4.8%) | 15.6% | 37.9% | (17.9%)"));
    }
    rb_ingest_doc_free(d);
}

static void test_government(void)
{
    struct rb_ingest_doc *d =
        parse_shared("docs/pdf/government/WARN-Report-for-7-1-2015-to-03-25-2016.pdf", NULL);
    if (d) {
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Notice Date | Effective");
        CHECK(t >= 0);
        if (t >= 0) {
            const struct rb_ingest_block *b = &d->blocks[t];
            CHECK_EQ_INT(b->page_start, 1);
            CHECK_EQ_INT(b->header_rows, 1);
            CHECK(row_is(
                d, b, 0,
                "Notice Date | Effective | Received | Company | City | No. Of | Layoff/Closure"));
            long r = find_row(d, b, "06/30/2015 | 08/30/2015");
            CHECK(r > 0 && row_is(d, b, (size_t)r,
                                  "06/30/2015 | 08/30/2015 | 07/01/2015 | Long Beach Memorial "
                                  "Medical Center | Long Beach | 90 | Layoff Permanent"));
        }
        CHECK(count_tables(d, 2) == 1);
        /* page 8 goes on with the same columns and no header of its own: the
         * header of the table above is repeated, so its chunks name the columns */
        long p8 = -1;
        for (size_t i = 0; i < d->n_blocks && p8 < 0; i++)
            if (d->blocks[i].kind == RB_INGEST_BLOCK_TABLE && d->blocks[i].page_start == 8)
                p8 = (long)i;
        CHECK(p8 >= 0);
        if (p8 >= 0) {
            const struct rb_ingest_block *b = &d->blocks[p8];
            CHECK_EQ_INT(b->header_rows, 1);
            CHECK(row_is(
                d, b, 0,
                "Notice Date | Effective | Received | Company | City | No. Of | Layoff/Closure"));
            CHECK(row_is(d, b, 1,
                         "10/30/2015 | 01/01/2016 | 11/05/2015 | Boeing Company | "
                         "Huntington Beach | 35 | Layoff Unknown at this time"));
        }
        rb_ingest_doc_free(d);
    }
    /* wrapped description cells join their row */
    d = parse_shared("docs/pdf/government/senate-expenditures.pdf", NULL);
    if (d) {
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "DHAW20190001");
        CHECK(t >= 0);
        if (t >= 0) {
            const struct rb_ingest_block *b = &d->blocks[t];
            long r = find_row(d, b, "DHAW20190001 |");
            CHECK(r > 0 && row_is(d, b, (size_t)r,
                                  "DHAW20190001 | 05/03/2019 | CITIBANK - TRAVEL CBA CARD | "
                                  "03/04/2019 | 03/06/2019 | STAFF TRANSPORTATION AIRFARE FOR E "
                                  "JOHNSON KANSAS CITY TO WASHINGTON DC AND RETURN | 920.68"));
        }
        rb_ingest_doc_free(d);
    }
}

static void test_prose_is_not_a_table(void)
{
    /* a two-column paper: tables only where the paper has them */
    struct rb_ingest_doc *d = parse_shared("docs/pdf/multi-column.pdf", NULL);
    if (d) {
        for (int p = 1; p <= 3; p++)
            CHECK_MSG(count_tables(d, p) == 0, "page %d", p);
        CHECK_EQ_INT(count_tables(d, 7), 0);
        /* a table in the right column; the prose beside it stays prose */
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Type #N | IB | Top-5 | Top-20 | Top-100");
        CHECK(t >= 0 && d->blocks[t].page_start == 6);
        if (t >= 0)
            CHECK(row_is(d, &d->blocks[t], 9, "G.+BM25(1) 127+128 | 3 | 65.8 | 78.0 | 84.9"));
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH,
                         "We explore how many training examples are needed to achieve good "
                         "passage retrieval performance.") >= 0);
        rb_ingest_doc_free(d);
    }
    static const char *const prose[] = {
        "docs/pdf/multi-column-2p.pdf",          "docs/pdf/multicolumn/multicolumn.pdf",
        "docs/pdf/layout-parser-paper-fast.pdf", "docs/pdf/government/scotus-transcript-p1.pdf",
        "docs/pdf/loremipsum-flat.pdf",          "docs/pdf/list-item-example.pdf",
        "docs/pdf/text/pdflatex-4-pages.pdf",    "docs/pdf-zh/zh-briefing-1.pdf",
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(prose); i++) {
        d = parse_shared(prose[i], NULL);
        if (!d)
            continue;
        size_t n = count_tables(d, 0);
        /* multicolumn.pdf has one real table, on its last page */
        if (i == 1) {
            CHECK_MSG(n == 1 && count_tables(d, 3) == 1, "%s: %zu tables", prose[i], n);
        } else {
            CHECK_MSG(n == 0, "%s: %zu tables", prose[i], n);
        }
        rb_ingest_doc_free(d);
    }
    /* a three-column Federal Register notice: its one cost table only */
    d = parse_shared("docs/pdf/government/federal-register-2020-17221.pdf", NULL);
    if (d) {
        CHECK_EQ_INT(count_tables(d, 0), 1);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Cost per product");
        CHECK(t >= 0 && d->blocks[t].page_start == 5);
        rb_ingest_doc_free(d);
    }
}

int main(void)
{
    test_data_table();
    test_balance_sheet();
    test_government();
    test_prose_is_not_a_table();
    return check_finish();
}
