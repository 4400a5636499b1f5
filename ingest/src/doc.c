/* The document model: builder, free, detection, limits, the in-process
 * parse entry point and the sandbox pipe format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest-impl.h"

/* ============================================================ names, detect */

static const char *const format_names[RB_INGEST_FORMAT_COUNT] = {
    "unknown", "pdf", "image", "docx", "xlsx", "pptx", "odt", "html", "markdown", "text", "csv",
    "email", "epub", "rtf"};
static const char *const format_mimes[RB_INGEST_FORMAT_COUNT] = {
    "application/octet-stream",
    "application/pdf",
    "image/*",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "text/html",
    "text/markdown",
    "text/plain",
    "text/csv",
    "message/rfc822",
    "application/epub+zip",
    "application/rtf"};

const char *rb_ingest_format_name(enum rb_ingest_format f)
{
    return (unsigned)f < RB_INGEST_FORMAT_COUNT ? format_names[f] : "unknown";
}

const char *rb_ingest_format_mime(enum rb_ingest_format f)
{
    return (unsigned)f < RB_INGEST_FORMAT_COUNT ? format_mimes[f] : format_mimes[0];
}

const char *rb_ingest_block_kind_name(enum rb_ingest_block_kind k)
{
    switch (k) {
    case RB_INGEST_BLOCK_HEADING: return "heading";
    case RB_INGEST_BLOCK_PARAGRAPH: return "paragraph";
    case RB_INGEST_BLOCK_LIST_ITEM: return "list_item";
    case RB_INGEST_BLOCK_TABLE: return "table";
    case RB_INGEST_BLOCK_CODE: return "code";
    }
    return "unknown";
}

static bool has_bytes(const void *data, size_t len, size_t off, const char *magic, size_t n)
{
    return len >= off + n && memcmp((const char *)data + off, magic, n) == 0;
}

/* Searches the first bytes of a ZIP for a member name (local headers carry it in clear). */
static bool zip_mentions(const void *data, size_t len, const char *name)
{
    size_t n = strlen(name), lim = len < (1u << 20) ? len : (1u << 20);
    return n <= lim && memmem(data, lim, name, n) != NULL;
}

static enum rb_ingest_format from_extension(const char *name)
{
    static const struct {
        const char *ext;
        enum rb_ingest_format f;
    } map[] = {
        {"pdf", RB_INGEST_FORMAT_PDF},       {"png", RB_INGEST_FORMAT_IMAGE},
        {"jpg", RB_INGEST_FORMAT_IMAGE},     {"jpeg", RB_INGEST_FORMAT_IMAGE},
        {"tif", RB_INGEST_FORMAT_IMAGE},     {"tiff", RB_INGEST_FORMAT_IMAGE},
        {"bmp", RB_INGEST_FORMAT_IMAGE},     {"gif", RB_INGEST_FORMAT_IMAGE},
        {"webp", RB_INGEST_FORMAT_IMAGE},    {"docx", RB_INGEST_FORMAT_DOCX},
        {"xlsx", RB_INGEST_FORMAT_XLSX},     {"pptx", RB_INGEST_FORMAT_PPTX},
        {"odt", RB_INGEST_FORMAT_ODT},       {"html", RB_INGEST_FORMAT_HTML},
        {"htm", RB_INGEST_FORMAT_HTML},      {"xhtml", RB_INGEST_FORMAT_HTML},
        {"md", RB_INGEST_FORMAT_MARKDOWN},   {"markdown", RB_INGEST_FORMAT_MARKDOWN},
        {"txt", RB_INGEST_FORMAT_TEXT},      {"text", RB_INGEST_FORMAT_TEXT},
        {"log", RB_INGEST_FORMAT_TEXT},      {"csv", RB_INGEST_FORMAT_CSV},
        {"tsv", RB_INGEST_FORMAT_CSV},       {"eml", RB_INGEST_FORMAT_EMAIL},
        {"epub", RB_INGEST_FORMAT_EPUB},     {"rtf", RB_INGEST_FORMAT_RTF},
    };
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (!dot || strchr(dot, '/'))
        return RB_INGEST_FORMAT_UNKNOWN;
    for (size_t i = 0; i < RB_ARRAY_LEN(map); i++)
        if (strcasecmp(dot + 1, map[i].ext) == 0)
            return map[i].f;
    return RB_INGEST_FORMAT_UNKNOWN;
}

/* What an unsupported file is and what to convert it to: legacy Office
 * binaries (OLE2 compound files, told apart by their stream names), Outlook
 * .msg, and other formats known by extension. NULL when nothing is known. */
static const char *legacy_hint(const char *name, const void *data, size_t len)
{
    static const struct {
        const char *stream; /* UTF-16LE directory entry name, ASCII here */
        const char *hint;
    } ole[] = {
        {"EncryptedPackage", "password-protected Office document: remove the password and save it "
                             "again"},
        {"__substg1.0_", "Outlook message (.msg): save it as .eml (Outlook: File > Save As, or "
                         "drag it to a folder from a client that writes .eml)"},
        {"WordDocument", "Word 97-2003 document (.doc): convert it to .docx or PDF (Word or "
                         "LibreOffice: Save As)"},
        {"PowerPoint Document", "PowerPoint 97-2003 presentation (.ppt): convert it to .pptx or "
                                "PDF"},
        {"Workbook", "Excel 97-2003 workbook (.xls): convert it to .xlsx or CSV"},
        {"Book", "Excel 5.0/95 workbook (.xls): convert it to .xlsx or CSV"},
    };
    if (data && len >= 8 && memcmp(data, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == 0) {
        for (size_t i = 0; i < RB_ARRAY_LEN(ole); i++) {
            char u16[64];
            size_t n = strlen(ole[i].stream);
            for (size_t k = 0; k < n; k++)
                u16[2 * k] = ole[i].stream[k], u16[2 * k + 1] = 0;
            if (memmem(data, len, u16, 2 * n))
                return ole[i].hint;
        }
        return "legacy Microsoft Office file (OLE2): convert it to .docx, .xlsx, .pptx or PDF";
    }
    static const struct {
        const char *ext, *hint;
    } by_ext[] = {
        {"doc", "Word 97-2003 document (.doc): convert it to .docx or PDF"},
        {"xls", "Excel 97-2003 workbook (.xls): convert it to .xlsx or CSV"},
        {"ppt", "PowerPoint 97-2003 presentation (.ppt): convert it to .pptx or PDF"},
        {"msg", "Outlook message (.msg): save it as .eml"},
        {"pages", "Apple Pages document: export it as .docx or PDF"},
        {"numbers", "Apple Numbers spreadsheet: export it as .xlsx or CSV"},
        {"key", "Apple Keynote presentation: export it as .pptx or PDF"},
        {"wpd", "WordPerfect document: convert it to .docx or PDF"},
        {"ods", "OpenDocument spreadsheet (.ods): save it as .xlsx or CSV"},
        {"odp", "OpenDocument presentation (.odp): save it as .pptx or PDF"},
        {"xps", "XPS document: print it to PDF"},
        {"hwp", "Hangul document: convert it to .docx or PDF"},
    };
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < RB_ARRAY_LEN(by_ext); i++)
            if (strcasecmp(dot + 1, by_ext[i].ext) == 0)
                return by_ext[i].hint;
    return NULL;
}

enum rb_ingest_format rb_ingest_detect(const char *name, const void *data, size_t len)
{
    enum rb_ingest_format ext = from_extension(name);
    /* Content first for binary formats: a renamed file is still what it is. */
    if (data && len >= 5 && memmem(data, len < 1024 ? len : 1024, "%PDF-", 5))
        return RB_INGEST_FORMAT_PDF;
    if (has_bytes(data, len, 0, "\x89PNG", 4) || has_bytes(data, len, 0, "\xff\xd8\xff", 3) ||
        has_bytes(data, len, 0, "II*\0", 4) || has_bytes(data, len, 0, "MM\0*", 4) ||
        has_bytes(data, len, 0, "GIF8", 4) || (has_bytes(data, len, 0, "BM", 2) && ext == RB_INGEST_FORMAT_IMAGE))
        return RB_INGEST_FORMAT_IMAGE;
    if (has_bytes(data, len, 0, "{\\rtf", 5))
        return RB_INGEST_FORMAT_RTF;
    if (has_bytes(data, len, 0, "PK\3\4", 4)) {
        /* EPUB: its first member is "mimetype", stored, holding the type */
        if (has_bytes(data, len, 30, "mimetype", 8) && zip_mentions(data, len < 128 ? len : 128, "application/epub+zip"))
            return RB_INGEST_FORMAT_EPUB;
        if (zip_mentions(data, len, "word/"))
            return RB_INGEST_FORMAT_DOCX;
        if (zip_mentions(data, len, "xl/"))
            return RB_INGEST_FORMAT_XLSX;
        if (zip_mentions(data, len, "ppt/"))
            return RB_INGEST_FORMAT_PPTX;
        if (zip_mentions(data, len, "application/vnd.oasis.opendocument.text"))
            return RB_INGEST_FORMAT_ODT;
        if (ext == RB_INGEST_FORMAT_DOCX || ext == RB_INGEST_FORMAT_XLSX ||
            ext == RB_INGEST_FORMAT_PPTX || ext == RB_INGEST_FORMAT_ODT || ext == RB_INGEST_FORMAT_EPUB)
            return ext;
        return RB_INGEST_FORMAT_UNKNOWN;
    }
    if (ext != RB_INGEST_FORMAT_UNKNOWN)
        return ext;
    /* Text sniffing for names without a known extension. */
    if (data && len > 0) {
        size_t lim = len < 2048 ? len : 2048;
        const char *p = data;
        if (memmem(p, lim, "<html", 5) || memmem(p, lim, "<HTML", 5) ||
            memmem(p, lim, "<!DOCTYPE html", 14) || memmem(p, lim, "<!doctype html", 14))
            return RB_INGEST_FORMAT_HTML;
        if ((has_bytes(p, len, 0, "From:", 5) || has_bytes(p, len, 0, "Received:", 9) ||
             has_bytes(p, len, 0, "Return-Path:", 12) || has_bytes(p, len, 0, "MIME-Version:", 13)) &&
            memmem(p, lim, "\n\n", 2 + 0))
            return RB_INGEST_FORMAT_EMAIL;
        if (memchr(p, 0, lim) == NULL || has_bytes(p, len, 0, "\xff\xfe", 2) ||
            has_bytes(p, len, 0, "\xfe\xff", 2))
            return RB_INGEST_FORMAT_TEXT;
    }
    return RB_INGEST_FORMAT_UNKNOWN;
}

/* ================================================================== limits */

void rb_ingest_limits_default(struct rb_ingest_limits *l)
{
    memset(l, 0, sizeof *l);
    l->max_file_bytes = (size_t)256 << 20;
    l->max_text_bytes = (size_t)64 << 20;
    l->max_unzipped_bytes = (size_t)256 << 20;
    l->max_zip_ratio = 200.0;
    l->max_pages = 5000;
    l->max_depth = 256;
    l->max_blocks = 1000000;
    l->max_attachments = 100;
    l->timeout_ms = 900000;
    l->cpu_seconds = 900;
    l->max_memory_bytes = (size_t)2 << 30;
    l->ocr = true;
    l->ocr_dpi = 200;
    l->ocr_page_timeout_ms = 60000;
    l->ocr_max_pages = 200;
    l->ocr_languages = "eng+chi_sim";
    l->pdf_tables = true;
}

enum rb_status rb_ingest_limits_from_config(const struct rb_config *cfg, struct rb_ingest_limits *l,
                                            struct rb_errmsg *err)
{
    rb_ingest_limits_default(l);
    if (!cfg)
        return RB_OK;
    int64_t v;
    enum rb_status st;
#define RB__LIM(key, def, min, max, assign)                                                        \
    if ((st = rb_config_int(cfg, "ingest", key, def, min, max, &v, err)) != RB_OK)                 \
        return st;                                                                                 \
    assign;
    RB__LIM("max_file_mb", 256, 1, 1 << 20, l->max_file_bytes = (size_t)v << 20)
    RB__LIM("max_text_mb", 64, 1, 1 << 16, l->max_text_bytes = (size_t)v << 20)
    RB__LIM("max_unzipped_mb", 256, 1, 1 << 20, l->max_unzipped_bytes = (size_t)v << 20)
    RB__LIM("max_pages", 5000, 1, 1000000, l->max_pages = (int)v)
    RB__LIM("timeout_s", 900, 1, 86400, l->timeout_ms = (int)v * 1000; l->cpu_seconds = (int)v)
    RB__LIM("memory_mb", 2048, 64, 1 << 20, l->max_memory_bytes = (size_t)v << 20)
    RB__LIM("ocr_dpi", 200, 72, 600, l->ocr_dpi = (int)v)
    RB__LIM("ocr_max_pages", 200, 0, 100000, l->ocr_max_pages = (int)v)
#undef RB__LIM
    if ((st = rb_config_bool(cfg, "ingest", "ocr", true, &l->ocr, err)) != RB_OK)
        return st;
    if ((st = rb_config_bool(cfg, "ingest", "pdf_tables", true, &l->pdf_tables, err)) != RB_OK)
        return st;
    l->ocr_languages = rb_config_str(cfg, "ingest", "ocr_languages", "eng+chi_sim");
    return RB_OK;
}

/* ================================================================= builder */

void rb__docb_init(struct rb__docb *b, const struct rb_ingest_limits *lim, struct rb_errmsg *err)
{
    memset(b, 0, sizeof *b);
    rb_buf_init(&b->text, lim->max_text_bytes + 1);
    b->lim = lim;
    b->err = err;
}

static void free_attachments(struct rb_ingest_attachment *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].mime);
        free(a[i].data);
    }
    free(a);
}

void rb__docb_free(struct rb__docb *b)
{
    rb_buf_free(&b->text);
    for (size_t i = 0; i < b->n_blocks; i++)
        free(b->blocks[i].rows);
    free(b->blocks);
    free(b->page_starts);
    free(b->title);
    free(b->metadata_json);
    free_attachments(b->attachments, b->n_attachments);
    free(b->rows);
    memset(b, 0, sizeof *b);
}

enum rb_status rb__docb_fail(struct rb__docb *b, enum rb_status st, const char *fmt, ...)
{
    if (b->st == RB_OK) {
        b->st = st;
        if (b->err) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(b->err->text, sizeof b->err->text, fmt, ap);
            va_end(ap);
        }
    }
    return b->st;
}

static bool grow(struct rb__docb *b, void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = NULL;
    size_t bytes;
    if (rb_size_mul(ncap, size, &bytes))
        p = realloc(*arr, bytes);
    if (!p) {
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return false;
    }
    *arr = p;
    *cap = ncap;
    return true;
}

static void text_append(struct rb__docb *b, const char *s, size_t n)
{
    if (b->st != RB_OK)
        return;
    if (rb_buf_append(&b->text, s, n) != RB_OK)
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "extracted text exceeds %zu MiB",
                      b->lim->max_text_bytes >> 20);
}

void rb__docb_page(struct rb__docb *b)
{
    if (b->st != RB_OK)
        return;
    if (b->n_pages >= b->lim->max_pages) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "document has more than %d pages", b->lim->max_pages);
        return;
    }
    size_t cap = (size_t)b->cap_pages;
    if (!grow(b, (void **)&b->page_starts, &cap, (size_t)b->n_pages + 1, sizeof(size_t)))
        return;
    b->cap_pages = (int32_t)cap;
    /* A page starts where its first block will: after the separator. */
    b->page_starts[b->n_pages++] = b->text.len ? b->text.len + 2 : 0;
}

static bool is_space_cp(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' ||
           cp == 0xA0 || cp == 0x3000 || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
           (cp >= 0x2000 && cp <= 0x200B);
}

/* Normalises into out: collapse whitespace, drop controls, join CJK line wraps. */
static enum rb_status normalise(const char *s, size_t len, bool keep_lines, struct rb_buf *out)
{
    rb_buf_reset(out);
    uint32_t prev = 0; /* last emitted code point */
    bool pending_space = false, pending_newline = false;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int n = rb_utf8_decode(s + i, len - i, &cp);
        i += (size_t)n;
        if (keep_lines) {
            if (cp == '\r')
                continue;
            if (cp == '\n' || cp == '\t') {
                char c = (char)cp;
                if (rb_buf_append(out, &c, 1) != RB_OK)
                    return RB_ERR_TOO_LARGE;
                prev = cp;
                continue;
            }
        }
        if (is_space_cp(cp)) {
            pending_space = true;
            if (cp == '\n' || cp == '\r')
                pending_newline = true;
            continue;
        }
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
            continue;
        if (pending_space && out->len > 0) {
            /* A wrapped line between two CJK characters joins without a space. */
            bool join = pending_newline && rb_utf8_is_cjk(prev) && rb_utf8_is_cjk(cp);
            if (!join && rb_buf_append(out, " ", 1) != RB_OK)
                return RB_ERR_TOO_LARGE;
        }
        pending_space = pending_newline = false;
        char enc[4];
        int m = rb_utf8_encode(cp, enc);
        if (rb_buf_append(out, enc, (size_t)m) != RB_OK)
            return RB_ERR_TOO_LARGE;
        prev = cp;
    }
    if (keep_lines) {
        while (out->len > 0 && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' ' ||
                                out->data[out->len - 1] == '\t'))
            out->data[--out->len] = '\0';
        size_t lead = 0;
        while (lead < out->len && out->data[lead] == '\n')
            lead++;
        if (lead) {
            memmove(out->data, out->data + lead, out->len - lead + 1);
            out->len -= lead;
        }
    }
    return RB_OK;
}

static struct rb_ingest_block *new_block(struct rb__docb *b)
{
    if (b->n_blocks >= b->lim->max_blocks) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "document has more than %zu blocks", b->lim->max_blocks);
        return NULL;
    }
    if (!grow(b, (void **)&b->blocks, &b->cap_blocks, b->n_blocks + 1, sizeof *b->blocks))
        return NULL;
    struct rb_ingest_block *blk = &b->blocks[b->n_blocks++];
    memset(blk, 0, sizeof *blk);
    return blk;
}

void rb__docb_add(struct rb__docb *b, enum rb_ingest_block_kind kind, int level, const char *text,
                  size_t len)
{
    if (b->st != RB_OK || !text)
        return;
    struct rb_buf norm;
    rb_buf_init(&norm, b->lim->max_text_bytes + 1);
    if (normalise(text, len, kind == RB_INGEST_BLOCK_CODE, &norm) != RB_OK) {
        rb_buf_free(&norm);
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "extracted text exceeds %zu MiB",
                      b->lim->max_text_bytes >> 20);
        return;
    }
    if (norm.len == 0) {
        rb_buf_free(&norm);
        return;
    }
    if (b->text.len)
        text_append(b, "\n\n", 2);
    size_t start = b->text.len;
    text_append(b, norm.data, norm.len);
    rb_buf_free(&norm);
    struct rb_ingest_block *blk = b->st == RB_OK ? new_block(b) : NULL;
    if (!blk)
        return;
    blk->kind = kind;
    blk->level = level;
    blk->byte_start = start;
    blk->byte_end = b->text.len;
}

void rb__docb_table_begin(struct rb__docb *b)
{
    b->in_table = true;
    b->in_row = false;
    b->n_rows = 0;
    b->max_cells = 0;
    b->table_start = (size_t)-1;
}

void rb__docb_row_begin(struct rb__docb *b)
{
    if (!b->in_table || b->st != RB_OK)
        return;
    b->in_row = true;
    b->cells_in_row = 0;
    b->row_start = (size_t)-1;
}

void rb__docb_cell(struct rb__docb *b, const char *text, size_t len)
{
    if (!b->in_row || b->st != RB_OK)
        return;
    struct rb_buf norm;
    rb_buf_init(&norm, b->lim->max_text_bytes + 1);
    if (normalise(text ? text : "", text ? len : 0, false, &norm) != RB_OK) {
        rb_buf_free(&norm);
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "extracted text too large");
        return;
    }
    /* Keep the cell grid: an empty cell still takes a slot, but a row that is
     * all empty is dropped in row_end (row_start stays unset until real text). */
    if (b->row_start == (size_t)-1) {
        if (b->table_start == (size_t)-1) {
            if (b->text.len)
                text_append(b, "\n\n", 2);
            b->table_start = b->text.len;
        } else {
            text_append(b, "\n", 1);
        }
        b->row_start = b->text.len;
    } else {
        text_append(b, " | ", 3);
    }
    text_append(b, norm.data ? norm.data : "", norm.len);
    rb_buf_free(&norm);
    b->cells_in_row++;
}

void rb__docb_row_end(struct rb__docb *b)
{
    if (!b->in_row || b->st != RB_OK)
        return;
    b->in_row = false;
    if (b->row_start == (size_t)-1)
        return;
    /* Drop a row whose cells are all empty ("" | "" | ""). */
    bool empty = true;
    for (size_t i = b->row_start; i < b->text.len && empty; i++)
        if (b->text.data[i] != ' ' && b->text.data[i] != '|')
            empty = false;
    if (empty) {
        size_t cut = b->row_start;
        if (b->n_rows == 0) /* remove the separator before the table too */
            cut = b->table_start >= 2 ? b->table_start - 2 : 0, b->table_start = (size_t)-1;
        else
            cut = b->row_start - 1;
        b->text.len = cut;
        if (b->text.data)
            b->text.data[cut] = '\0';
        return;
    }
    if (!grow(b, (void **)&b->rows, &b->cap_rows, b->n_rows + 1, sizeof *b->rows))
        return;
    int filled = 0;
    bool in_cell = false;
    for (size_t i = b->row_start; i < b->text.len; i++) {
        if (b->text.data[i] == '|' && i > 0 && b->text.data[i - 1] == ' ')
            in_cell = false;
        else if (b->text.data[i] != ' ' && !in_cell)
            in_cell = true, filled++;
    }
    if (filled > b->max_cells)
        b->max_cells = filled;
    b->rows[b->n_rows].start = b->row_start;
    b->rows[b->n_rows].end = b->text.len;
    b->n_rows++;
}

void rb__docb_table_end(struct rb__docb *b, size_t header_rows)
{
    if (b->in_row)
        rb__docb_row_end(b);
    b->in_table = false;
    if (b->st != RB_OK || b->n_rows == 0)
        return;
    if (b->max_cells <= 1) {
        /* A layout table (one cell per row) is prose, not data. */
        for (size_t r = 0; r < b->n_rows; r++) {
            struct rb_ingest_block *p = new_block(b);
            if (!p)
                return;
            p->kind = RB_INGEST_BLOCK_PARAGRAPH;
            p->byte_start = b->rows[r].start;
            p->byte_end = b->rows[r].end;
            /* drop the " | " padding of empty cells around the text */
            while (p->byte_end > p->byte_start && (b->text.data[p->byte_end - 1] == ' ' ||
                                                   b->text.data[p->byte_end - 1] == '|'))
                p->byte_end--;
            while (p->byte_start < p->byte_end && (b->text.data[p->byte_start] == ' ' ||
                                                   b->text.data[p->byte_start] == '|'))
                p->byte_start++;
        }
        b->n_rows = 0;
        return;
    }
    struct rb_ingest_block *blk = new_block(b);
    if (!blk)
        return;
    blk->kind = RB_INGEST_BLOCK_TABLE;
    blk->byte_start = b->rows[0].start;
    blk->byte_end = b->rows[b->n_rows - 1].end;
    blk->rows = rb_malloc_array(b->n_rows, sizeof *blk->rows);
    if (!blk->rows) {
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(blk->rows, b->rows, b->n_rows * sizeof *blk->rows);
    blk->n_rows = b->n_rows;
    blk->header_rows = header_rows > b->n_rows ? b->n_rows : header_rows;
    if (b->n_rows == 1)
        blk->header_rows = 0;
    b->n_rows = 0;
}

void rb__docb_set_title(struct rb__docb *b, const char *title, size_t len)
{
    if (b->st != RB_OK || !title)
        return;
    struct rb_buf norm;
    rb_buf_init(&norm, 4096);
    if (normalise(title, len, false, &norm) == RB_OK && norm.len > 0) {
        free(b->title);
        size_t n = rb_utf8_truncate(norm.data, norm.len, 1000);
        b->title = rb_strndup(norm.data, n);
    }
    rb_buf_free(&norm);
}

void rb__docb_set_metadata(struct rb__docb *b, char *json)
{
    free(b->metadata_json);
    b->metadata_json = json;
}

void rb__docb_attach(struct rb__docb *b, const char *name, const char *mime, const void *data,
                     size_t len)
{
    if (b->st != RB_OK)
        return;
    if (b->n_attachments >= b->lim->max_attachments) {
        RB_WARN("ingest", "more than %zu attachments: the rest are ignored",
                b->lim->max_attachments);
        return;
    }
    if (!grow(b, (void **)&b->attachments, &b->cap_attachments, b->n_attachments + 1,
              sizeof *b->attachments))
        return;
    struct rb_ingest_attachment *a = &b->attachments[b->n_attachments];
    /* Only the last path component, without control characters. */
    const char *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : (name && *name ? name : "attachment");
    a->name = rb_utf8_sanitize(base, strlen(base), NULL);
    a->mime = rb_strdup(mime ? mime : "application/octet-stream");
    a->data = malloc(len ? len : 1);
    a->len = len;
    if (!a->name || !a->mime || !a->data) {
        free(a->name), free(a->mime), free(a->data);
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return;
    }
    for (char *p = a->name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\')
            *p = '_';
    memcpy(a->data, data, len);
    b->n_attachments++;
}

int32_t rb_ingest_doc_page_at(const struct rb_ingest_doc *doc, size_t off)
{
    if (!doc->n_pages)
        return 0;
    int32_t lo = 0, hi = doc->n_pages - 1;
    while (lo < hi) { /* last page whose start <= off */
        int32_t mid = lo + (hi - lo + 1) / 2;
        if (doc->page_starts[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo + 1;
}

/* Code points in text[from, to), counting a malformed byte as one. */
static size_t count_chars(const char *text, size_t from, size_t to)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            n++;
    return n;
}

enum rb_status rb__docb_finish(struct rb__docb *b, enum rb_ingest_format format,
                               struct rb_ingest_doc **out)
{
    *out = NULL;
    if (b->st != RB_OK) {
        enum rb_status st = b->st;
        rb__docb_free(b);
        return st;
    }
    struct rb_ingest_doc *d = calloc(1, sizeof *d);
    if (!d) {
        rb__docb_free(b);
        return RB_ERR_NOMEM;
    }
    if (!b->text.data && rb_buf_append(&b->text, "", 0) != RB_OK) {
        free(d);
        rb__docb_free(b);
        return RB_ERR_NOMEM;
    }
    d->format = format;
    d->text_len = b->text.len;
    d->text = rb_buf_steal(&b->text);
    /* Page starts beyond the text (empty trailing pages) are clamped. */
    for (int32_t i = 0; i < b->n_pages; i++)
        if (b->page_starts[i] > d->text_len)
            b->page_starts[i] = d->text_len;
    d->page_starts = b->page_starts;
    d->n_pages = b->n_pages;
    d->ocr_pages = b->ocr_pages;
    d->blocks = b->blocks;
    d->n_blocks = b->n_blocks;
    d->title = b->title;
    d->attachments = b->attachments;
    d->n_attachments = b->n_attachments;
    d->metadata_json = b->metadata_json ? b->metadata_json : rb_strdup("{}");
    free(b->rows);
    memset(b, 0, sizeof *b);
    size_t pos = 0, chars = 0;
    for (size_t i = 0; i < d->n_blocks; i++) {
        struct rb_ingest_block *blk = &d->blocks[i];
        chars += count_chars(d->text, pos, blk->byte_start);
        blk->char_start = chars;
        chars += count_chars(d->text, blk->byte_start, blk->byte_end);
        blk->char_end = chars;
        pos = blk->byte_end;
        blk->page_start = rb_ingest_doc_page_at(d, blk->byte_start);
        blk->page_end = rb_ingest_doc_page_at(d, blk->byte_end > blk->byte_start ? blk->byte_end - 1
                                                                                : blk->byte_start);
    }
    if (d->text_len) {
        double cjk = rb_utf8_cjk_ratio(d->text, d->text_len < 200000 ? d->text_len : 200000);
        d->language = rb_strdup(cjk > 0.2 ? "zh" : "en");
    }
    if (!d->metadata_json) {
        rb_ingest_doc_free(d);
        return RB_ERR_NOMEM;
    }
    *out = d;
    return RB_OK;
}

void rb_ingest_doc_free(struct rb_ingest_doc *doc)
{
    if (!doc)
        return;
    free(doc->text);
    for (size_t i = 0; i < doc->n_blocks; i++)
        free(doc->blocks[i].rows);
    free(doc->blocks);
    free(doc->page_starts);
    free(doc->title);
    free(doc->language);
    free(doc->metadata_json);
    free_attachments(doc->attachments, doc->n_attachments);
    free(doc);
}

/* ============================================================ parse entry */

enum rb_status rb_ingest_parse_buffer(const void *data, size_t len, const char *name,
                                      enum rb_ingest_format format,
                                      const struct rb_ingest_limits *limits,
                                      struct rb_ingest_doc **out, struct rb_errmsg *err)
{
    struct rb_ingest_limits defaults;
    *out = NULL;
    if (!limits) {
        rb_ingest_limits_default(&defaults);
        limits = &defaults;
    }
    if (err)
        rb_errmsg_clear(err);
    if (len > limits->max_file_bytes)
        return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE, "file is %zu bytes, limit %zu", len,
                                   limits->max_file_bytes)
                   : RB_ERR_TOO_LARGE;
    if (format == RB_INGEST_FORMAT_UNKNOWN)
        format = rb_ingest_detect(name, data, len);
    struct rb__docb b;
    rb__docb_init(&b, limits, err);
    enum rb_status st;
    switch (format) {
    case RB_INGEST_FORMAT_PDF: st = rb__parse_pdf(&b, data, len); break;
    case RB_INGEST_FORMAT_IMAGE: st = rb__parse_image(&b, data, len); break;
    case RB_INGEST_FORMAT_DOCX: st = rb__parse_docx(&b, data, len); break;
    case RB_INGEST_FORMAT_XLSX: st = rb__parse_xlsx(&b, data, len); break;
    case RB_INGEST_FORMAT_PPTX: st = rb__parse_pptx(&b, data, len); break;
    case RB_INGEST_FORMAT_ODT: st = rb__parse_odt(&b, data, len); break;
    case RB_INGEST_FORMAT_HTML: st = rb__parse_html(&b, data, len, NULL); break;
    case RB_INGEST_FORMAT_MARKDOWN: st = rb__parse_markdown(&b, data, len); break;
    case RB_INGEST_FORMAT_TEXT: st = rb__parse_text(&b, data, len); break;
    case RB_INGEST_FORMAT_CSV: st = rb__parse_csv(&b, data, len); break;
    case RB_INGEST_FORMAT_EMAIL: st = rb__parse_email(&b, data, len); break;
    case RB_INGEST_FORMAT_EPUB: st = rb__parse_epub(&b, data, len); break;
    case RB_INGEST_FORMAT_RTF: st = rb__parse_rtf(&b, data, len); break;
    default: {
        const char *hint = legacy_hint(name, data, len);
        if (hint && strncmp(hint, "password", 8) == 0)
            st = rb__docb_fail(&b, RB_ERR_DENIED, "%s%s%s", name ? rb_path_basename(name) : "",
                               name ? ": " : "", hint);
        else
            st = rb__docb_fail(&b, RB_ERR_UNSUPPORTED, "unsupported file format%s%s%s%s",
                               name ? ": " : "", name ? rb_path_basename(name) : "",
                               hint ? ": " : "", hint ? hint : "");
        break;
    }
    }
    if (st != RB_OK && b.st == RB_OK)
        rb__docb_fail(&b, st, "%s parser failed (%s)", rb_ingest_format_name(format),
                      rb_status_str(st));
    return rb__docb_finish(&b, format, out);
}
