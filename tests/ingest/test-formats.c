/* Every supported format, parsed in the sandbox from the real shared
 * documents: text, structure (headings, list items, tables with header
 * rows), page numbers, encodings, titles, attachments, and the clear errors
 * for encrypted, broken and unsupported files. */
#include "ingest-check.h"

static void test_pdf_en(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/pdf/text/pdflatex-outline.pdf", NULL);
    if (!d)
        return;
    CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_PDF);
    CHECK_EQ_INT(d->n_pages, 4);
    long h = find_exact(d, RB_INGEST_BLOCK_HEADING, "2 Bar");
    CHECK(h >= 0);
    if (h >= 0)
        CHECK_EQ_INT(d->blocks[h].page_start, 2);
    h = find_exact(d, RB_INGEST_BLOCK_HEADING, "8 Bar");
    CHECK(h >= 0);
    if (h >= 0)
        CHECK_EQ_INT(d->blocks[h].page_start, 4);
    long p = find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Hello, here is some text without a meaning.");
    CHECK(p >= 0);
    /* blocks are in order with consistent offsets */
    for (size_t i = 1; i < d->n_blocks; i++) {
        CHECK(d->blocks[i].byte_start >= d->blocks[i - 1].byte_end);
        CHECK(d->blocks[i].char_start >= d->blocks[i - 1].char_end);
        CHECK(d->blocks[i].page_start >= d->blocks[i - 1].page_end);
    }
    rb_ingest_doc_free(d);

    d = parse_shared("docs/pdf/layout-parser-paper-with-table.pdf", NULL);
    if (d) {
        long k = find_block(d, RB_INGEST_BLOCK_HEADING, "3.1 Layout Detection Models");
        CHECK(k >= 0);
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "a layout model takes a document image") > k);
        /* de-hyphenated across the line break: "ap-\nplied" */
        CHECK(strstr(d->text, "when models are applied to target samples") != NULL);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/pdf/list-item-example.pdf", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "Who should lead the development?") >= 0);
        CHECK_EQ_INT(d->n_pages, 2);
        rb_ingest_doc_free(d);
    }
}

static void test_pdf_zh(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/pdf-zh/zh-briefing-1.pdf", NULL);
    if (!d)
        return;
    CHECK_EQ_INT(d->n_pages, 7);
    CHECK_STR(d->language, "zh");
    CHECK_STR(d->title, "政务信息简报（第1期）");
    long p = find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "泰国国会推迟选举新总理");
    CHECK(p >= 0);
    if (p >= 0)
        CHECK_EQ_INT(d->blocks[p].page_start, 1);
    long h = find_block(d, RB_INGEST_BLOCK_HEADING, "news-00163.txt");
    CHECK(h >= 0);
    if (h >= 0)
        CHECK_EQ_INT(d->blocks[h].page_start, 2);
    /* wrapped CJK lines join without spaces */
    CHECK(strstr(d->text, "披塔领导的远进党以151席成为下院第一大党") != NULL);
    rb_ingest_doc_free(d);
}

static void test_pdf_errors(void)
{
    static const char *const enc[] = {"aes-128.pdf", "aes-256.pdf", "aes-256-r6.pdf", "rc4-40.pdf",
                                      "rc4-128.pdf", "libreoffice-writer-password.pdf"};
    char rel[256];
    for (size_t i = 0; i < RB_ARRAY_LEN(enc); i++) {
        snprintf(rel, sizeof rel, "docs/pdf/encrypted/%s", enc[i]);
        parse_fails(rel, RB_ERR_DENIED, "encrypted");
    }
    parse_fails("docs/pdf/broken/invalid.pdf", RB_ERR_PARSE, "damaged");
    parse_fails("docs/pdf/broken/empty.pdf", RB_ERR_PARSE, "damaged");
    parse_fails("docs/pdf/broken/unreadablemetadata.pdf", RB_ERR_PARSE, "damaged");
    /* an owner password only (copy protection) does not stop reading */
    struct rb_ingest_doc *d = parse_shared("docs/pdf/copy-protected.pdf", NULL);
    CHECK(d && d->text_len > 100);
    rb_ingest_doc_free(d);
    /* a recoverable corruption still yields its text */
    d = parse_shared("docs/pdf/broken/zen_of_python_corrupted.pdf", NULL);
    CHECK(d && find_block(d, -1, "Beautiful is better than ugly.") >= 0);
    rb_ingest_doc_free(d);
}

static void test_office(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/docx/fake_table.docx", NULL);
    if (d) {
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Header Col 1 | Header Col 2");
        CHECK(t >= 0);
        if (t >= 0) {
            CHECK_EQ_INT(d->blocks[t].n_rows, 2);
            CHECK_EQ_INT(d->blocks[t].header_rows, 1);
            const struct rb_ingest_span *r = &d->blocks[t].rows[1];
            CHECK(strncmp(d->text + r->start, "Lorem ipsum | A Link example", r->end - r->start) == 0);
        }
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Dolor sit amet") > t);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/docx/handbook-1p.docx", NULL);
    if (d) {
        CHECK(find_block(d, -1, "The United States Trustee appoints and supervises standing trustees") >= 0);
        CHECK_EQ_INT(d->n_pages, 2); /* one rendered page break */
        long b = find_block(d, -1, "B. ROLE OF THE UNITED STATES TRUSTEE");
        CHECK(b >= 0 && d->blocks[b].page_start == 2);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/xlsx/stanley-cups.xlsx", NULL);
    if (d) {
        CHECK_EQ_INT(d->n_pages, 2); /* sheets are pages */
        long h = find_block(d, RB_INGEST_BLOCK_HEADING, "Stanley Cups Since 67");
        CHECK(h >= 0 && d->blocks[h].page_start == 2);
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "Maple Leafs | TOR | 13") >= 0);
        CHECK(strstr(d->metadata_json, "\"Stanley Cups Since 67\"") != NULL);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/xlsx/zh/langchain-ChatGLM_open.xlsx", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "效果如何优化") >= 0);
        rb_ingest_doc_free(d);
    }
    parse_fails("docs/xlsx/password_protected.xlsx", RB_ERR_DENIED, "password");
    d = parse_shared("docs/pptx/fake-power-point-table.pptx", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_HEADING, "A Slide with a Table") >= 0);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Purple | Orange | Yellow");
        CHECK(t >= 0 && d->blocks[t].header_rows == 1);
        CHECK_EQ_INT(d->n_pages, 1);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/pptx/fake-power-point.pptx", NULL);
    if (d) {
        long li = find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "Use _TextFrame.add_paragraph()");
        CHECK(li >= 0 && d->blocks[li].level == 3);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/odt/fake.odt", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Lorem ipsum dolor sit amet.") >= 0);
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "Color | Blue | Red | Green") >= 0);
        rb_ingest_doc_free(d);
    }
}

static void test_html_md(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/html/fake-html.html", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_HEADING, "My Second Heading") >= 0);
        long li = find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "With sub-bullets!");
        CHECK(li >= 0 && d->blocks[li].level == 2);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Column 1 | Column 2");
        CHECK(t >= 0 && d->blocks[t].n_rows == 3 && d->blocks[t].header_rows == 1);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/html/fake-html-with-footer-and-header.html", NULL);
    if (d) {
        CHECK(find_block(d, -1, "My first paragraph.") >= 0);
        CHECK(strstr(d->text, "Footer") == NULL); /* boilerplate dropped */
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/html/example-steelJIS-datasheet-utf-16.html", NULL);
    if (d) {
        CHECK(strstr(d->text, "SteelJIS") != NULL);
        CHECK(strstr(d->text, "日本語") != NULL);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/md/README.md", NULL);
    if (d) {
        long h = find_block(d, RB_INGEST_BLOCK_HEADING, "XBRL 10-K");
        CHECK(h >= 0 && d->blocks[h].level == 4);
        CHECK(find_block(d, RB_INGEST_BLOCK_CODE, "curl -O") > h);
        CHECK(find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "layout-parser-paper.pdf") >= 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/md/zh/大模型推理优化策略.md", NULL);
    if (d) {
        CHECK_STR(d->title, "大模型推理优化策略");
        CHECK_STR(d->language, "zh");
        CHECK(find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "PagedAttention") >= 0);
        rb_ingest_doc_free(d);
    }
}

static void test_text_csv(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/txt-zh/news-01028-gb18030.txt", NULL);
    if (d) {
        CHECK(strstr(d->metadata_json, "GB18030") != NULL);
        CHECK(strstr(d->text, "瑞银全球财富管理首席投资官Mark Haefele") != NULL);
        CHECK_STR(d->language, "zh");
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/txt/fake-text-utf-16.txt", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "This is a test document to use for unit tests.") >= 0);
        CHECK(find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "Dogs are the best") >= 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/txt/fake-text-all-whitespace.txt", NULL);
    if (d) {
        CHECK_EQ_INT(d->n_blocks, 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/csv/semicolon-delimited.csv", NULL);
    if (d) {
        CHECK(strstr(d->metadata_json, "\"delimiter\":\";\"") != NULL);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Lorem, ipsum | dolor sit | amet");
        CHECK(t >= 0 && d->blocks[t].header_rows == 1);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/csv/csv-with-escaped-commas.csv", NULL);
    if (d) {
        CHECK(d->n_blocks == 1 && d->blocks[0].kind == RB_INGEST_BLOCK_TABLE);
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "A | A | A | A,A | A") >= 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/csv/stanley-cups.tsv", NULL);
    if (d) {
        CHECK(strstr(d->metadata_json, "\\t") != NULL);
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "Maple Leafs | TOR | 13") >= 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/csv/zh/langchain-ChatGLM_open.csv", NULL);
    if (d) {
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "效果如何优化");
        CHECK(t >= 0 && d->blocks[t].n_rows > 300);
        rb_ingest_doc_free(d);
    }
}

static void test_email(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/eml/family-day.eml", NULL);
    if (d) {
        CHECK_STR(d->title, "Family Day");
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Get excited for our first annual family day!") >= 0);
        CHECK(strstr(d->metadata_json, "mallori@unstructured.io") != NULL);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/eml/fake-email-image-embedded.eml", NULL);
    if (d) {
        CHECK_EQ_INT(d->n_attachments, 1);
        if (d->n_attachments) {
            CHECK_STR(d->attachments[0].name, "unstructured_logo.png");
            CHECK_STR(d->attachments[0].mime, "image/png");
            CHECK(d->attachments[0].len > 1000 &&
                  memcmp(d->attachments[0].data, "\x89PNG", 4) == 0);
        }
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/eml/fake-email-utf-16-be.eml", NULL);
    if (d) {
        CHECK_STR(d->title, "Test Email");
        CHECK(find_block(d, RB_INGEST_BLOCK_LIST_ITEM, "Violets are blue") >= 0);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/eml/mime-html-only.eml", NULL);
    CHECK(d && d->n_blocks >= 1);
    rb_ingest_doc_free(d);
    parse_fails("docs/eml/fake-email.msg", RB_ERR_UNSUPPORTED, "unsupported");
}

static void test_rtf_epub_legacy(void)
{
    struct rb_ingest_doc *d = parse_shared("docs/rtf/fake-doc.rtf", NULL);
    if (d) {
        CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_RTF);
        long h = find_exact(d, RB_INGEST_BLOCK_HEADING, "My First Heading");
        CHECK(h >= 0 && d->blocks[h].level == 1);
        CHECK(find_exact(d, RB_INGEST_BLOCK_PARAGRAPH, "My first paragraph.") > h);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Column 1 | Column 2");
        CHECK(t >= 0 && d->blocks[t].n_rows == 3 && d->blocks[t].header_rows == 1);
        if (t >= 0) {
            const struct rb_ingest_span *r = &d->blocks[t].rows[2];
            CHECK(strncmp(d->text + r->start, "Row 2, Cell 1 | Row 2, Cell 2", r->end - r->start) == 0);
        }
        rb_ingest_doc_free(d);
    }
    /* TextEdit RTF: cp1252 \'96 is an en dash; fonts and lists tables skipped */
    d = parse_shared("docs/rtf/obliqa-DocumentMap.rtf", NULL);
    if (d) {
        CHECK(strstr(d->text, "\"Prudential \xe2\x80\x93 Insurance Business (PIN)\",") != NULL);
        CHECK(strstr(d->text, "Helvetica") == NULL);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/epub/winter-sports.epub", NULL);
    if (d) {
        CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_EPUB);
        CHECK_STR(d->title, "Winter Sports in Switzerland");
        CHECK(strstr(d->metadata_json, "\"chapters\":10") != NULL);
        /* the first and the last chapter of the spine, in order */
        long a = find_block(d, -1, "Author: E. F. Benson");
        long z = find_block(d, -1, "END OF THE PROJECT GUTENBERG EBOOK");
        CHECK(a >= 0 && z > a);
        rb_ingest_doc_free(d);
    }
    d = parse_shared("docs/epub/eng_spa_mult.epub", NULL);
    if (d) {
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "Todos los seres humanos nacen libres") >= 0);
        rb_ingest_doc_free(d);
    }
    /* legacy binaries: a clear reason and what to convert to */
    parse_fails("docs/legacy-office/simple.doc", RB_ERR_UNSUPPORTED, "convert it to .docx");
    parse_fails("docs/legacy-office/tests-example.xls", RB_ERR_UNSUPPORTED, "convert it to .xlsx");
    parse_fails("docs/legacy-office/fake-power-point.ppt", RB_ERR_UNSUPPORTED, "convert it to .pptx");
    parse_fails("docs/eml/fake-email-attachment.msg", RB_ERR_UNSUPPORTED, "save it as .eml");
}

int main(void)
{
    test_pdf_en();
    test_pdf_zh();
    test_pdf_errors();
    test_office();
    test_html_md();
    test_text_csv();
    test_email();
    test_rtf_epub_legacy();
    return check_finish();
}
