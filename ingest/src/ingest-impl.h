/* ingest private: the document builder shared by the parsers, OCR, and the
 * per-format parser entry points. */
#ifndef RAGBOX_INGEST_IMPL_H
#define RAGBOX_INGEST_IMPL_H

#include "ragbox/ingest.h"

/* Builds a struct rb_ingest_doc block by block. Errors are sticky: after
 * the first failure every call is a no-op and rb__docb_finish returns it. */
struct rb__docb {
    struct rb_buf text;
    struct rb_ingest_block *blocks;
    size_t n_blocks, cap_blocks;
    size_t *page_starts;
    int32_t n_pages, cap_pages;
    int32_t ocr_pages;
    char *title;
    char *metadata_json;
    struct rb_ingest_attachment *attachments;
    size_t n_attachments, cap_attachments;
    /* the table being built */
    struct rb_ingest_span *rows;
    size_t n_rows, cap_rows;
    size_t table_start;
    bool in_table, in_row;
    size_t row_start;
    int cells_in_row;
    int max_cells; /* most non-empty cells in a row of this table */
    const struct rb_ingest_limits *lim;
    struct rb_errmsg *err;
    enum rb_status st;
};

void rb__docb_init(struct rb__docb *b, const struct rb_ingest_limits *lim, struct rb_errmsg *err);
void rb__docb_free(struct rb__docb *b); /* after a failure, or instead of finish */
/* Records an error (first one wins) and returns it. */
enum rb_status rb__docb_fail(struct rb__docb *b, enum rb_status st, const char *fmt, ...)
    RB_PRINTF(3, 4);
/* Starts page n_pages+1 at the current end of the text. */
void rb__docb_page(struct rb__docb *b);
/* Appends a block. Whitespace is normalised (runs collapse to one space; a
 * line break between CJK characters disappears; invalid UTF-8 becomes
 * U+FFFD) except for CODE, which keeps its lines. Empty text adds nothing. */
void rb__docb_add(struct rb__docb *b, enum rb_ingest_block_kind kind, int level, const char *text,
                  size_t len);
/* Table: begin, (row_begin, cell*, row_end)*, end. Empty rows are dropped,
 * an empty table adds nothing. */
void rb__docb_table_begin(struct rb__docb *b);
void rb__docb_row_begin(struct rb__docb *b);
void rb__docb_cell(struct rb__docb *b, const char *text, size_t len);
void rb__docb_row_end(struct rb__docb *b);
void rb__docb_table_end(struct rb__docb *b, size_t header_rows);
void rb__docb_set_title(struct rb__docb *b, const char *title, size_t len);
/* Takes ownership of json (a JSON object string). */
void rb__docb_set_metadata(struct rb__docb *b, char *json);
/* Copies the attachment. */
void rb__docb_attach(struct rb__docb *b, const char *name, const char *mime, const void *data,
                     size_t len);
/* Finishes: page and char offsets of blocks, language. *out caller-owned. */
RB_NODISCARD enum rb_status rb__docb_finish(struct rb__docb *b, enum rb_ingest_format format,
                                            struct rb_ingest_doc **out);

/* Converts text in `charset` (NULL = detect: BOMs, UTF-8 validity,
 * uchardet) to UTF-8. Caller frees *out. */
RB_NODISCARD enum rb_status rb__to_utf8(const char *data, size_t len, const char *charset,
                                        size_t max_out, char **out, size_t *out_len,
                                        const char **detected, struct rb_errmsg *err);

/* OCR of an image in memory (any format leptonica reads) or of raw pixels. */
struct rb__ocr;
RB_NODISCARD enum rb_status rb__ocr_open(const struct rb_ingest_limits *lim, struct rb__ocr **out,
                                         struct rb_errmsg *err);
void rb__ocr_close(struct rb__ocr *ocr);
/* Recognises raw 8-bit grey or 32-bit pixels; *text caller-frees. */
RB_NODISCARD enum rb_status rb__ocr_pixels(struct rb__ocr *ocr, const unsigned char *pixels,
                                           int width, int height, int bytes_per_pixel,
                                           int bytes_per_line, int dpi, char **text,
                                           struct rb_errmsg *err);
RB_NODISCARD enum rb_status rb__ocr_image(struct rb__ocr *ocr, const void *data, size_t len,
                                          char **text, struct rb_errmsg *err);
/* Adds OCR text as paragraphs (blank-line separated) to b. */
void rb__add_plain_paragraphs(struct rb__docb *b, const char *text, size_t len, bool line_paragraphs);

/* Parsers: fill b (which the caller finishes or frees). */
enum rb_status rb__parse_pdf(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_image(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_docx(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_xlsx(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_pptx(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_odt(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_html(struct rb__docb *b, const void *data, size_t len,
                              const char *charset);
enum rb_status rb__parse_markdown(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_text(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_csv(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_email(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_epub(struct rb__docb *b, const void *data, size_t len);
enum rb_status rb__parse_rtf(struct rb__docb *b, const void *data, size_t len);

/* Tables found on a PDF page from character geometry (pdf-table.c). */
struct rb__pdf_table {
    size_t first_char;   /* code-point index in the page text of its first character */
    size_t n_rows, n_cols;
    size_t header_rows;  /* 0 or 1 */
    char **cells;        /* n_rows * n_cols, row-major, each NUL-terminated ("" if empty) */
};
struct _PopplerRectangle;
/* Finds the tables of a page: text is poppler_page_get_text, rects the
 * per-code-point boxes of poppler_page_get_text_layout. consumed (n_rects
 * bytes, zeroed by the caller) gets 1 for every code point that belongs to a
 * table. *out (n_out tables in page order) is freed with rb__pdf_tables_free. */
RB_NODISCARD enum rb_status rb__pdf_tables_find(const char *text, size_t len,
                                                const struct _PopplerRectangle *rects,
                                                size_t n_rects, unsigned char *consumed,
                                                struct rb__pdf_table **out, size_t *n_out);
void rb__pdf_tables_free(struct rb__pdf_table *t, size_t n);

/* Walks an HTML document already parsed by libxml2 into b (used by the
 * e-mail parser for text/html parts too). */
struct _xmlDoc;
void rb__html_walk(struct rb__docb *b, struct _xmlDoc *doc);

#endif
