/* RTF and EPUB parsers on crafted inputs (in process, so ASan sees them):
 * code pages and Unicode in RTF, tables, headings, lists, skipped
 * destinations, hostile nesting and truncation; EPUB spine order, title,
 * path traversal and DRM refused; legacy formats' conversion hints. */
#include <zip.h>

#include "ingest-check.h"

static struct rb_ingest_doc *parse(const char *data, size_t len, const char *name,
                                   enum rb_status want, struct rb_errmsg *e)
{
    struct rb_ingest_limits lim;
    rb_ingest_limits_default(&lim);
    lim.ocr = false;
    lim.max_depth = 64;
    struct rb_ingest_doc *d = NULL;
    memset(e, 0, sizeof *e);
    enum rb_status st =
        rb_ingest_parse_buffer(data, len, name, RB_INGEST_FORMAT_UNKNOWN, &lim, &d, e);
    CHECK_MSG(st == want, "%s: got %s (%s), want %s", name, rb_status_name(st), e->text,
              rb_status_name(want));
    if (st != RB_OK) {
        CHECK(d == NULL);
        rb_ingest_doc_free(d);
        return NULL;
    }
    return d;
}

static struct rb_ingest_doc *rtf(const char *s, enum rb_status want, struct rb_errmsg *e)
{
    return parse(s, strlen(s), "t.rtf", want, e);
}

static void test_rtf(void)
{
    struct rb_errmsg e;
    /* structure: heading by \outlinelevel and by a "heading 2" style, list
     * items, a table with a header row, the \info title, skipped groups */
    struct rb_ingest_doc *d =
        rtf("{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}}"
            "{\\colortbl;\\red0\\green0\\blue0;}"
            "{\\stylesheet{\\s0 Normal;}{\\s2\\b heading 2;}}"
            "{\\info{\\title Quarterly Report}{\\author Nobody}}"
            "{\\*\\generator Writer;}"
            "{\\header Page header text\\par}"
            "\\pard\\outlinelevel0\\b Results\\b0\\par"
            "\\pard\\s2 Revenue\\par"
            "\\pard Revenue rose 5\\'25 to \\'a3 3.2 million \\endash  a record.\\par"
            "\\pard{\\listtext\\'95\\tab}\\ls1\\ilvl0 First point\\par"
            "\\pard{\\pict\\wmetafile8 0102030405}\\par"
            "\\trowd\\cellx2000\\cellx4000\\pard\\intbl Region\\cell Sales\\cell\\row"
            "\\trowd\\cellx2000\\cellx4000\\pard\\intbl North\\cell 1,200\\cell\\row"
            "\\pard After the table.\\par}",
            RB_OK, &e);
    if (d) {
        CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_RTF);
        CHECK_STR(d->title, "Quarterly Report");
        long h = find_exact(d, RB_INGEST_BLOCK_HEADING, "Results");
        CHECK(h >= 0 && d->blocks[h].level == 1);
        h = find_exact(d, RB_INGEST_BLOCK_HEADING, "Revenue");
        CHECK(h >= 0 && d->blocks[h].level == 2);
        CHECK(find_exact(d, RB_INGEST_BLOCK_PARAGRAPH,
                         "Revenue rose 5% to \xc2\xa3 3.2 million \xe2\x80\x93 a record.") >= 0);
        CHECK(find_exact(d, RB_INGEST_BLOCK_LIST_ITEM, "First point") >= 0);
        long t = find_block(d, RB_INGEST_BLOCK_TABLE, "Region | Sales");
        CHECK(t >= 0 && d->blocks[t].header_rows == 1 && d->blocks[t].n_rows == 2);
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "North | 1,200") == t);
        CHECK(find_block(d, RB_INGEST_BLOCK_PARAGRAPH, "After the table.") > t);
        /* skipped destinations leave nothing behind */
        CHECK(strstr(d->text, "Page header") == NULL);
        CHECK(strstr(d->text, "Arial") == NULL && strstr(d->text, "Writer") == NULL);
        CHECK(strstr(d->text, "Nobody") == NULL && strstr(d->text, "0102") == NULL);
        rb_ingest_doc_free(d);
    }
    /* Chinese: GBK bytes under a \fcharset134 font, and \u with fallbacks */
    d = rtf("{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f1\\fnil\\fcharset134 SimSun;}}"
            "\\f1 \\'d6\\'d0\\'ce\\'c4\\f0 , \\uc1\\u20013?\\u25991? ok\\par"
            "\\u-10179?\\u-8704?\\par}",
            RB_OK, &e);
    if (d) {
        CHECK(find_exact(d, RB_INGEST_BLOCK_PARAGRAPH, "中文, 中文 ok") >= 0);
        CHECK(strstr(d->text, "\xf0\x9f\x98\x80") != NULL); /* U+1F600 from a surrogate pair */
        rb_ingest_doc_free(d);
    }
    /* TextEdit's "\" + newline paragraph breaks, escaped braces */
    d = rtf("{\\rtf1\\ansi\\mac Line one \\{x\\}\\\nLine two\\\n}", RB_OK, &e);
    if (d) {
        CHECK(find_exact(d, RB_INGEST_BLOCK_PARAGRAPH, "Line one {x}") >= 0);
        CHECK(find_exact(d, RB_INGEST_BLOCK_PARAGRAPH, "Line two") >= 0);
        rb_ingest_doc_free(d);
    }
    /* hostile: nesting past max_depth, a huge \bin, truncation, junk */
    char *deep = malloc(100010);
    REQUIRE(deep != NULL);
    memcpy(deep, "{\\rtf1 ", 7);
    memset(deep + 7, '{', 100000);
    deep[100007] = '\0';
    d = parse(deep, strlen(deep), "deep.rtf", RB_ERR_TOO_LARGE, &e);
    CHECK(strstr(e.text, "nested") != NULL);
    free(deep);
    d = rtf("{\\rtf1 text before\\bin999999999999 \x01\x02", RB_OK, &e);
    CHECK(d && find_block(d, -1, "text before") >= 0);
    rb_ingest_doc_free(d);
    static const char *const junk[] = {
        "{\\rtf1 \\'",
        "{\\rtf1 \\'4",
        "{\\rtf1 \\'zz\\par}",
        "{\\rtf1 \\u",
        "{\\rtf1 \\u-99999999999 x}",
        "{\\rtf1 \\uc99999\\u65 abc}",
        "{\\rtf1 }}}}}} after",
        "{\\rtf1 \\trowd\\intbl a\\cell",
        "{\\rtf1 \\intbl a\\par b",
        "{\\rtf1 {\\*",
        "{\\rtf1 \\abcdefghijklmnopqrstuvwxyzabcdefghijklmnop1",
        "{\\rtf1 \\f99999999 \\'e4}",
        "{\\rtf1{\\fonttbl\\f-5\\fcharset134;}\\f-5 \\'d6\\'d0}",
        "{\\rtf1 \\row\\row\\cell\\cell\\row}",
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(junk); i++) {
        struct rb_ingest_doc *j = NULL;
        struct rb_ingest_limits lim;
        rb_ingest_limits_default(&lim);
        enum rb_status st = rb_ingest_parse_buffer(junk[i], strlen(junk[i]), "j.rtf",
                                                   RB_INGEST_FORMAT_UNKNOWN, &lim, &j, &e);
        CHECK_MSG(st == RB_OK || st == RB_ERR_PARSE || st == RB_ERR_TOO_LARGE, "junk %zu: %s", i,
                  rb_status_name(st));
        rb_ingest_doc_free(j);
    }
    /* not RTF despite the name */
    d = parse("plain words", 11, "x.rtf", RB_ERR_PARSE, &e);
}

/* An EPUB in memory: members in order (name, content). */
static char *make_zip(const char *const *members, size_t n, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/book.epub", check_tmpdir("epub"));
    int ze = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    REQUIRE(z != NULL);
    for (size_t i = 0; i + 1 < n; i += 2) {
        zip_source_t *s = zip_source_buffer(z, members[i + 1], strlen(members[i + 1]), 0);
        zip_int64_t idx = s ? zip_file_add(z, members[i], s, ZIP_FL_OVERWRITE) : -1;
        REQUIRE(idx >= 0);
        if (i == 0)
            zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    REQUIRE(zip_close(z) == 0);
    char *data = NULL;
    REQUIRE(rb_fs_read_file(path, 1 << 24, &data, len) == RB_OK);
    return data;
}

#define CONTAINER                                                                                  \
    "<?xml version=\"1.0\"?><container version=\"1.0\" "                                           \
    "xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles><rootfile "              \
    "full-path=\"OPS/book.opf\" media-type=\"application/oebps-package+xml\"/></rootfiles></"      \
    "container>"

static void test_epub(void)
{
    struct rb_errmsg e;
    const char *const book[] = {
        "mimetype",
        "application/epub+zip",
        "META-INF/container.xml",
        CONTAINER,
        "OPS/book.opf",
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
        "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Annual "
        "Policy</dc:title></metadata><manifest>"
        "<item id=\"c2\" href=\"text/ch%202.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"c1\" href=\"./text/ch1.xhtml\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"evil\" href=\"../../../etc/passwd\" media-type=\"application/xhtml+xml\"/>"
        "<item id=\"css\" href=\"s.css\" media-type=\"text/css\"/></manifest>"
        "<spine><itemref idref=\"c1\"/><itemref idref=\"evil\"/><itemref idref=\"css\"/>"
        "<itemref idref=\"missing\"/><itemref idref=\"c2\"/></spine></package>",
        "OPS/text/ch1.xhtml",
        "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>c1</title></head><body>"
        "<h1>Scope</h1><p>This policy applies to all staff.</p></body></html>",
        "OPS/text/ch 2.xhtml",
        "<html xmlns=\"http://www.w3.org/1999/xhtml\"><body><h1>Retention</h1>"
        "<table><tr><th>Record</th><th>Years</th></tr><tr><td>Payroll</td><td>7</td></tr></table>"
        "</body></html>",
        "OPS/s.css",
        "p { color: red }",
    };
    size_t len = 0;
    char *data = make_zip(book, RB_ARRAY_LEN(book), &len);
    CHECK_EQ_INT(rb_ingest_detect("book.bin", data, len), RB_INGEST_FORMAT_EPUB);
    struct rb_ingest_doc *d = parse(data, len, "book.epub", RB_OK, &e);
    if (d) {
        CHECK_EQ_INT(d->format, RB_INGEST_FORMAT_EPUB);
        CHECK_STR(d->title, "Annual Policy");
        long a = find_exact(d, RB_INGEST_BLOCK_HEADING, "Scope");
        long b = find_exact(d, RB_INGEST_BLOCK_HEADING, "Retention");
        CHECK(a >= 0 && b > a); /* spine order, not manifest order */
        CHECK(find_block(d, RB_INGEST_BLOCK_TABLE, "Payroll | 7") > b);
        CHECK(strstr(d->metadata_json, "\"chapters\":2") != NULL);
        CHECK(strstr(d->text, "color") == NULL);
        rb_ingest_doc_free(d);
    }
    free(data);
    /* DRM: encrypted content is refused with a clear reason */
    const char *const drm[] = {
        "mimetype",
        "application/epub+zip",
        "META-INF/container.xml",
        CONTAINER,
        "META-INF/encryption.xml",
        "<encryption xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><EncryptedData "
        "xmlns=\"http://www.w3.org/2001/04/xmlenc#\"/></encryption>",
    };
    data = make_zip(drm, RB_ARRAY_LEN(drm), &len);
    d = parse(data, len, "drm.epub", RB_ERR_DENIED, &e);
    CHECK(strstr(e.text, "DRM") != NULL);
    free(data);
    /* no container: a clear parse error */
    const char *const broken[] = {"mimetype", "application/epub+zip", "x.txt", "x"};
    data = make_zip(broken, RB_ARRAY_LEN(broken), &len);
    d = parse(data, len, "broken.epub", RB_ERR_PARSE, &e);
    CHECK(strstr(e.text, "container.xml") != NULL);
    free(data);
}

static void test_legacy_hints(void)
{
    struct rb_errmsg e;
    /* an OLE2 header and a directory entry name in UTF-16LE */
    char ole[1024] = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";
    const char *name = "WordDocument";
    for (size_t k = 0; name[k]; k++)
        ole[512 + 2 * k] = name[k];
    parse(ole, sizeof ole, "memo.doc", RB_ERR_UNSUPPORTED, &e);
    CHECK(strstr(e.text, "unsupported") && strstr(e.text, "convert it to .docx"));
    /* renamed: the content decides */
    parse(ole, sizeof ole, "memo.bin", RB_ERR_UNSUPPORTED, &e);
    CHECK(strstr(e.text, "Word 97-2003") != NULL);
    static const char pk[] = "PK\3\4 not a real zip";
    parse(pk, sizeof pk - 1, "deck.key", RB_ERR_UNSUPPORTED, &e);
    CHECK(strstr(e.text, "Keynote") != NULL);
}

int main(void)
{
    test_rtf();
    test_epub();
    test_legacy_hints();
    return check_finish();
}
