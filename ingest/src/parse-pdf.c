/* PDF through poppler-glib: text page by page in poppler's reading order,
 * with character boxes (poppler_page_get_text_layout) used to find
 * paragraphs (vertical gaps, column jumps, line-height changes), headings
 * (taller lines, numbered section titles, the document outline) and list
 * items. Pages with no text layer are rendered with cairo and OCR'd. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <poppler.h>

#include "ingest-impl.h"

struct line {
    size_t start, end; /* bytes in the page text, without the newline */
    double x1, y1, x2, y2;
    bool has_box;
};

static bool line_is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f')
            return false;
    return true;
}

/* "3", "3.2", "3.2.1" followed by a space and a capital or CJK: returns the
 * depth, 0 if not a numbered title. Trailing "." after a single number makes
 * it a list item instead ("1. Buy milk"). */
static int numbered_title(const char *s, size_t n)
{
    size_t i = 0;
    int depth = 0;
    while (i < n) {
        size_t d = i;
        while (d < n && s[d] >= '0' && s[d] <= '9' && d - i < 3)
            d++;
        if (d == i)
            return 0;
        depth++;
        i = d;
        if (i < n && s[i] == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
            i++;
            continue;
        }
        break;
    }
    if (i < n && s[i] == '.' && depth == 1)
        return 0;
    if (i < n && s[i] == '.')
        i++;
    if (i >= n || s[i] != ' ')
        return 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= n)
        return 0;
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'A' && c <= 'Z') || c >= 0xE0))
        return 0;
    return depth > 6 ? 6 : depth;
}

static bool bullet_line(const char *s, size_t n, size_t *skip)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    static const char *const bullets[] = {"\xe2\x80\xa2", "\xe2\x97\x8f", "\xe2\x96\xaa",
                                          "\xef\x82\xb7", "\xe2\x80\x93", "\xc2\xb7", "- ", "* "};
    for (size_t k = 0; k < RB_ARRAY_LEN(bullets); k++) {
        size_t bl = strlen(bullets[k]);
        if (n - i > bl && memcmp(s + i, bullets[k], bl) == 0) {
            *skip = i + bl;
            return true;
        }
    }
    size_t d = i;
    while (d < n && d - i < 3 && ((s[d] >= '0' && s[d] <= '9') || (s[d] >= 'a' && s[d] <= 'z' && d == i)))
        d++;
    if (d > i && d + 1 < n && (s[d] == '.' || s[d] == ')') && s[d + 1] == ' ' &&
        !(s[i] >= 'a' && s[i] <= 'z' && d - i > 1)) {
        *skip = i;
        return true;
    }
    return false;
}

static bool only_bullets(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = rb_utf8_decode(s + i, n - i, &cp);
        if (!(cp == ' ' || cp == 0x2022 || cp == 0x25CF || cp == 0x25AA || cp == 0xF0B7 ||
              cp == 0xB7 || cp == 0x25E6 || cp == 0x25A0 || cp == 0x2013))
            return false;
        i += (size_t)k;
    }
    return true;
}

static bool ends_sentence(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '"' || s[n - 1] == ')'))
        n--;
    if (!n)
        return false;
    char c = s[n - 1];
    if (c == '.' || c == '!' || c == '?' || c == ':')
        return true;
    return n >= 3 && ((unsigned char)s[n - 3] == 0xE3 && (unsigned char)s[n - 2] == 0x80 &&
                      (unsigned char)s[n - 1] == 0x82); /* 。 */
}

struct outline_entry {
    char *title;
    int level;
    bool used;
};
struct outline {
    struct outline_entry *e;
    size_t n, cap;
};

static void outline_walk(PopplerIndexIter *it, int level, struct outline *o)
{
    if (level > 9)
        return;
    do {
        PopplerAction *a = poppler_index_iter_get_action(it);
        if (a && a->type == POPPLER_ACTION_GOTO_DEST && a->any.title && o->n < 10000) {
            if (o->n == o->cap) {
                size_t nc = o->cap ? o->cap * 2 : 32;
                struct outline_entry *ne = realloc(o->e, nc * sizeof *ne);
                if (!ne) {
                    poppler_action_free(a);
                    return;
                }
                o->e = ne;
                o->cap = nc;
            }
            o->e[o->n].title = rb_strdup(a->any.title);
            o->e[o->n].level = level;
            o->e[o->n].used = false;
            if (o->e[o->n].title)
                o->n++;
        }
        if (a)
            poppler_action_free(a);
        PopplerIndexIter *c = poppler_index_iter_get_child(it);
        if (c) {
            outline_walk(c, level + 1, o);
            poppler_index_iter_free(c);
        }
    } while (poppler_index_iter_next(it));
}

/* Compares ignoring whitespace differences. */
static bool same_text(const char *a, size_t an, const char *b)
{
    size_t i = 0, j = 0, bn = strlen(b);
    for (;;) {
        while (i < an && (a[i] == ' ' || a[i] == '\t'))
            i++;
        while (j < bn && (b[j] == ' ' || b[j] == '\t'))
            j++;
        if (i >= an || j >= bn)
            return i >= an && j >= bn;
        if (a[i] != b[j])
            return false;
        i++, j++;
    }
}

static int outline_level(struct outline *o, const char *s, size_t n)
{
    for (size_t k = 0; k < o->n; k++)
        if (!o->e[k].used && same_text(s, n, o->e[k].title)) {
            o->e[k].used = true;
            return o->e[k].level;
        }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Appends line text to para, undoing end-of-line hyphenation ("infor-\nmation"). */
static void join_line(struct rb_buf *para, const char *s, size_t n)
{
    if (para->len) {
        char last = para->data[para->len - 1];
        char prev = para->len >= 2 ? para->data[para->len - 2] : 0;
        if (last == '-' && prev >= 'a' && prev <= 'z' && n && s[0] >= 'a' && s[0] <= 'z')
            para->data[--para->len] = '\0';
        else
            (void)!rb_buf_append(para, "\n", 1);
    }
    (void)!rb_buf_append(para, s, n);
}

/* The header of the last table of the previous page: a table that goes on
 * over the page break (its first rows on the next page have no header of
 * their own, and the same columns) gets it repeated as its header row. */
struct table_carry {
    char **header; /* n_cols cells, or NULL */
    size_t n_cols;
    int page;
};

static void carry_clear(struct table_carry *c)
{
    for (size_t i = 0; c->header && i < c->n_cols; i++)
        free(c->header[i]);
    free(c->header);
    c->header = NULL;
    c->n_cols = 0;
}

static void emit_table(struct rb__docb *b, const struct rb__pdf_table *t, bool first_on_page,
                       struct table_carry *carry)
{
    bool continued = first_on_page && t->header_rows == 0 && carry->header &&
                     carry->n_cols == t->n_cols && carry->page == b->n_pages - 1;
    rb__docb_table_begin(b);
    if (continued) {
        rb__docb_row_begin(b);
        for (size_t c = 0; c < t->n_cols; c++)
            rb__docb_cell(b, carry->header[c], strlen(carry->header[c]));
        rb__docb_row_end(b);
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        rb__docb_row_begin(b);
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            rb__docb_cell(b, cell, strlen(cell));
        }
        rb__docb_row_end(b);
    }
    rb__docb_table_end(b, continued ? 1 : t->header_rows);
    /* remember this table's header for the next page */
    if (t->header_rows || continued) {
        char **h = calloc(t->n_cols, sizeof *h);
        for (size_t c = 0; h && c < t->n_cols; c++) {
            h[c] = rb_strdup(continued ? carry->header[c] : t->cells[c]);
            if (!h[c]) {
                for (size_t k = 0; k < c; k++)
                    free(h[k]);
                free(h);
                h = NULL;
            }
        }
        carry_clear(carry);
        carry->header = h;
        carry->n_cols = h ? t->n_cols : 0;
    }
    /* a header-less table keeps the header for the pages after it (a long
     * table whose columns ran together on one page) */
    carry->page = b->n_pages;
}

/* Page text and boxes without the characters of its tables. */
struct page_tables {
    struct rb__pdf_table *t;
    size_t n;
    size_t *anchor;   /* byte offset in the filtered text where table i stood */
    size_t *order;    /* tables by anchor */
    char *text;       /* filtered text */
    size_t text_len;
    PopplerRectangle *rects;
    size_t n_rects;
};

static void page_tables_free(struct page_tables *pt)
{
    rb__pdf_tables_free(pt->t, pt->n);
    free(pt->anchor);
    free(pt->order);
    free(pt->text);
    free(pt->rects);
    memset(pt, 0, sizeof *pt);
}

static bool find_tables(struct rb__docb *b, const char *text, size_t tl,
                        const PopplerRectangle *rects, size_t n_rects, struct page_tables *pt)
{
    memset(pt, 0, sizeof *pt);
    unsigned char *consumed = calloc(n_rects ? n_rects : 1, 1);
    if (!consumed) {
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return false;
    }
    enum rb_status st = rb__pdf_tables_find(text, tl, rects, n_rects, consumed, &pt->t, &pt->n);
    if (st != RB_OK || pt->n == 0) {
        free(consumed);
        if (st != RB_OK)
            rb__docb_fail(b, st, "out of memory finding tables");
        return false;
    }
    pt->anchor = calloc(pt->n, sizeof *pt->anchor);
    pt->order = calloc(pt->n, sizeof *pt->order);
    pt->text = malloc(tl + 1);
    pt->rects = malloc((n_rects ? n_rects : 1) * sizeof *pt->rects);
    if (!pt->anchor || !pt->order || !pt->text || !pt->rects) {
        free(consumed);
        page_tables_free(pt);
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return false;
    }
    size_t ci = 0, fo = 0;
    for (size_t i = 0; i < tl;) {
        size_t n = 1;
        while (i + n < tl && ((unsigned char)text[i + n] & 0xC0) == 0x80)
            n++;
        for (size_t k = 0; k < pt->n; k++)
            if (pt->t[k].first_char == ci)
                pt->anchor[k] = fo;
        if (ci >= n_rects || !consumed[ci]) {
            memcpy(pt->text + fo, text + i, n);
            fo += n;
            if (ci < n_rects)
                pt->rects[pt->n_rects++] = rects[ci];
        }
        ci++;
        i += n;
    }
    pt->text[fo] = '\0';
    pt->text_len = fo;
    free(consumed);
    /* reading order of the tables: by anchor (insertion sort, few tables) */
    for (size_t k = 0; k < pt->n; k++) {
        size_t j = k;
        while (j > 0 && pt->anchor[pt->order[j - 1]] > pt->anchor[k]) {
            pt->order[j] = pt->order[j - 1];
            j--;
        }
        pt->order[j] = k;
    }
    return true;
}

static void text_page(struct rb__docb *b, PopplerPage *page, const char *text, struct outline *ol,
                      struct table_carry *carry)
{
    size_t tl = strlen(text);
    PopplerRectangle *rects = NULL;
    guint n_rects = 0;
    bool geometry = poppler_page_get_text_layout(page, &rects, &n_rects) && rects;
    struct page_tables pt = {0};
    if (geometry && n_rects && b->lim->pdf_tables &&
        find_tables(b, text, tl, rects, n_rects, &pt)) {
        g_free(rects);
        rects = NULL;
        text = pt.text;
        tl = pt.text_len;
        n_rects = (guint)pt.n_rects;
    }
    const PopplerRectangle *boxes = pt.rects ? pt.rects : rects;
    size_t next_table = 0;
    /* rects[i] is the box of the i-th character of text. */
    size_t n_lines = 0, cap = 64;
    struct line *lines = malloc(cap * sizeof *lines);
    if (!lines) {
        g_free(rects);
        page_tables_free(&pt);
        rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
        return;
    }
    size_t ci = 0; /* character index */
    size_t i = 0;
    while (i <= tl) {
        size_t e = i;
        size_t c0 = ci;
        while (e < tl && text[e] != '\n') {
            if (((unsigned char)text[e] & 0xC0) != 0x80)
                ci++;
            e++;
        }
        if (!line_is_blank(text + i, e - i)) {
            if (n_lines == cap) {
                cap *= 2;
                struct line *nl = realloc(lines, cap * sizeof *lines);
                if (!nl)
                    break;
                lines = nl;
            }
            struct line *ln = &lines[n_lines++];
            ln->start = i;
            ln->end = e;
            ln->has_box = false;
            ln->x1 = ln->y1 = INFINITY;
            ln->x2 = ln->y2 = -INFINITY;
            if (geometry) {
                size_t cj = c0;
                for (size_t k = i; k < e; k++) {
                    if (((unsigned char)text[k] & 0xC0) == 0x80)
                        continue;
                    if (cj < n_rects && text[k] != ' ') {
                        const PopplerRectangle *r = &boxes[cj];
                        ln->x1 = fmin(ln->x1, fmin(r->x1, r->x2));
                        ln->x2 = fmax(ln->x2, fmax(r->x1, r->x2));
                        ln->y1 = fmin(ln->y1, fmin(r->y1, r->y2));
                        ln->y2 = fmax(ln->y2, fmax(r->y1, r->y2));
                        ln->has_box = true;
                    }
                    cj++;
                }
            }
        }
        if (e < tl)
            ci++; /* the newline */
        i = e + 1;
    }
    g_free(rects);
    /* Typical line height and the text column's right edge. */
    double med_h = 0, right = 0;
    if (n_lines) {
        /* The body text height: the line height carrying the most characters. */
        double *hs = malloc(n_lines * sizeof *hs);
        size_t nh = 0;
        for (size_t k = 0; hs && k < n_lines; k++)
            if (lines[k].has_box) {
                hs[nh++] = lines[k].y2 - lines[k].y1;
                right = fmax(right, lines[k].x2);
            }
        if (nh) {
            qsort(hs, nh, sizeof *hs, cmp_double);
            double best_w = -1;
            for (size_t a = 0; a < nh; a++) {
                double w = 0;
                for (size_t k = 0; k < n_lines; k++)
                    if (lines[k].has_box && fabs((lines[k].y2 - lines[k].y1) - hs[a]) <= hs[a] * 0.06)
                        w += (double)(lines[k].end - lines[k].start);
                if (w > best_w) {
                    best_w = w;
                    med_h = hs[a];
                }
                while (a + 1 < nh && hs[a + 1] - hs[a] < 0.01)
                    a++;
            }
        }
        free(hs);
    }
    struct rb_buf para;
    rb_buf_init(&para, b->lim->max_text_bytes + 1);
    enum rb_ingest_block_kind kind = RB_INGEST_BLOCK_PARAGRAPH;
    int level = 0;
    const struct line *prev = NULL;
    for (size_t k = 0; k <= n_lines && b->st == RB_OK; k++) {
        const struct line *ln = k < n_lines ? &lines[k] : NULL;
        /* a table that stood before this line in reading order */
        if (ln && next_table < pt.n && pt.anchor[pt.order[next_table]] <= ln->start) {
            if (para.len) {
                rb__docb_add(b, kind, level, para.data, para.len);
                rb_buf_reset(&para);
            }
            while (next_table < pt.n && pt.anchor[pt.order[next_table]] <= ln->start)
                emit_table(b, &pt.t[pt.order[next_table]], next_table == 0, carry), next_table++;
            kind = RB_INGEST_BLOCK_PARAGRAPH;
            level = 0;
            prev = NULL;
        }
        const char *s = ln ? text + ln->start : NULL;
        size_t n = ln ? ln->end - ln->start : 0;
        size_t skip = 0;
        int num = ln && n < 100 ? numbered_title(s, n) : 0;
        int olv = ln ? outline_level(ol, s, n) : 0;
        double h = ln && ln->has_box ? ln->y2 - ln->y1 : 0;
        /* a tall line is a heading only when it stands alone (the next line is
         * not a continuation in the same size) */
        const struct line *nx = k + 1 < n_lines ? &lines[k + 1] : NULL;
        bool standalone = !nx || !nx->has_box || fabs((nx->y2 - nx->y1) - h) > h * 0.1 ||
                          nx->y1 - (ln ? ln->y2 : 0) > med_h * 0.75;
        bool tall = ln && med_h > 0 && h > med_h * 1.18 && n < 120 && standalone;
        bool number_only = ln && n <= 8 && strspn(s, "0123456789.") == n && nx &&
                           nx->end - nx->start < 120 && nx->has_box && ln->has_box &&
                           fabs(nx->y1 - ln->y1) < med_h * 0.5;
        bool bullet = ln && !num && !olv && bullet_line(s, n, &skip);
        if (num && ln->has_box && med_h > 0 && h < med_h * 0.95)
            num = 0; /* footnotes and small print are not section titles */
        bool title_like = ln && n < 160 && !ends_sentence(s, n) && (num || olv || tall || number_only);
        bool number_head = kind == RB_INGEST_BLOCK_HEADING && para.len && para.len <= 8 &&
                           strspn(para.data, "0123456789.") == para.len;
        bool brk = !ln || !prev || bullet || title_like || kind == RB_INGEST_BLOCK_HEADING;
        bool same_row = ln && prev && ln->has_box && prev->has_box && med_h > 0 &&
                        fabs(ln->y1 - prev->y1) < med_h * 0.5 && ln->x1 > prev->x2;
        if (number_head && ln && !num && (title_like || (same_row && n < 100 && !ends_sentence(s, n)))) {
            /* "3.1" on its own line, the title on the next: one heading */
            brk = false;
            int depth = 1;
            for (size_t q = 0; q < para.len; q++)
                depth += para.data[q] == '.' && q + 1 < para.len;
            level = olv ? olv : depth;
        }
        if (!brk && ln->has_box && prev->has_box && med_h > 0) {
            double gap = ln->y1 - prev->y2;
            double ph = prev->y2 - prev->y1;
            if (gap > med_h * 0.75 || ln->y1 < prev->y1 - med_h * 0.5 || /* column jump */
                fabs(h - ph) > med_h * 0.25 ||
                (ends_sentence(text + prev->start, prev->end - prev->start) &&
                 prev->x2 < right - med_h * 4 && kind != RB_INGEST_BLOCK_LIST_ITEM))
                brk = true;
            /* a list item continues on indented lines only */
            if (kind == RB_INGEST_BLOCK_LIST_ITEM && ln->x1 <= prev->x1 - 2 && !brk)
                brk = ends_sentence(text + prev->start, prev->end - prev->start);
        }
        if (brk && para.len) {
            rb__docb_add(b, kind, level, para.data, para.len);
            rb_buf_reset(&para);
        }
        if (!ln)
            break;
        if (brk) {
            kind = RB_INGEST_BLOCK_PARAGRAPH;
            level = 0;
            if (title_like) {
                kind = RB_INGEST_BLOCK_HEADING;
                level = olv ? olv : num ? num : (h > med_h * 1.6 ? 1 : h > med_h * 1.3 ? 2 : 3);
            } else if (bullet) {
                kind = RB_INGEST_BLOCK_LIST_ITEM;
                level = 1;
            }
        }
        /* lines of only bullet glyphs carry no text */
        if (!(bullet && line_is_blank(s + skip, n - skip)) && !only_bullets(s, n))
            join_line(&para, s + skip, n - skip);
        prev = ln;
    }
    rb_buf_free(&para);
    free(lines);
    while (next_table < pt.n && b->st == RB_OK)
        emit_table(b, &pt.t[pt.order[next_table]], next_table == 0, carry), next_table++;
    page_tables_free(&pt);
}

static void ocr_page(struct rb__docb *b, PopplerPage *page, struct rb__ocr **ocr, bool *ocr_failed)
{
    if (!b->lim->ocr || *ocr_failed || b->ocr_pages >= b->lim->ocr_max_pages)
        return;
    if (!*ocr && rb__ocr_open(b->lim, ocr, b->err) != RB_OK) {
        *ocr_failed = true;
        RB_WARN("ingest", "%s", b->err ? b->err->text : "OCR unavailable");
        if (b->err)
            rb_errmsg_clear(b->err);
        return;
    }
    double wpt = 0, hpt = 0;
    poppler_page_get_size(page, &wpt, &hpt);
    double scale = b->lim->ocr_dpi / 72.0;
    int w = (int)(wpt * scale), h = (int)(hpt * scale);
    if (w <= 0 || h <= 0)
        return;
    if (w > 6000 || h > 6000) { /* absurd page sizes: scale down */
        double f = 6000.0 / (w > h ? w : h);
        scale *= f;
        w = (int)(wpt * scale);
        h = (int)(hpt * scale);
    }
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return;
    }
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    poppler_page_render_for_printing(page, cr);
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    const unsigned char *px = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    unsigned char *grey = malloc((size_t)w * (size_t)h);
    if (grey && px) {
        for (int y = 0; y < h; y++) {
            const uint32_t *row = (const uint32_t *)(px + (size_t)y * (size_t)stride);
            for (int x = 0; x < w; x++) {
                uint32_t v = row[x];
                unsigned r = (v >> 16) & 255, g = (v >> 8) & 255, bl = v & 255;
                grey[(size_t)y * (size_t)w + (size_t)x] = (unsigned char)((r * 299 + g * 587 + bl * 114) / 1000);
            }
        }
        char *text = NULL;
        struct rb_errmsg e = {{0}};
        if (rb__ocr_pixels(*ocr, grey, w, h, 1, w, b->lim->ocr_dpi, &text, &e) == RB_OK) {
            b->ocr_pages++;
            rb__add_plain_paragraphs(b, text, strlen(text), false);
        } else {
            RB_WARN("ingest", "OCR of a page failed: %s", e.text);
        }
        free(text);
    }
    free(grey);
    cairo_surface_destroy(surf);
}

enum rb_status rb__parse_pdf(struct rb__docb *b, const void *data, size_t len)
{
    GBytes *bytes = g_bytes_new_static(data, len);
    GError *gerr = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    g_bytes_unref(bytes);
    if (!doc) {
        enum rb_status st;
        if (gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED)
            st = rb__docb_fail(b, RB_ERR_DENIED, "PDF is encrypted and needs a password");
        else
            st = rb__docb_fail(b, RB_ERR_PARSE, "PDF is damaged or not a PDF (%s)",
                               gerr && gerr->message ? gerr->message : "unknown error");
        if (gerr)
            g_error_free(gerr);
        return st;
    }
    int n = poppler_document_get_n_pages(doc);
    if (n <= 0) {
        g_object_unref(doc);
        return rb__docb_fail(b, RB_ERR_PARSE, "PDF has no pages");
    }
    if (n > b->lim->max_pages) {
        g_object_unref(doc);
        return rb__docb_fail(b, RB_ERR_TOO_LARGE, "PDF has %d pages, limit %d", n,
                             b->lim->max_pages);
    }
    gchar *title = poppler_document_get_title(doc);
    if (title) {
        rb__docb_set_title(b, title, strlen(title));
        g_free(title);
    }
    struct outline ol = {0};
    struct table_carry carry = {0};
    PopplerIndexIter *it = poppler_index_iter_new(doc);
    if (it) {
        outline_walk(it, 1, &ol);
        poppler_index_iter_free(it);
    }
    struct rb__ocr *ocr = NULL;
    bool ocr_failed = false;
    int readable = 0;
    for (int i = 0; i < n && b->st == RB_OK; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        rb__docb_page(b);
        if (!page)
            continue;
        readable++;
        char *text = poppler_page_get_text(page);
        if (text && !line_is_blank(text, strlen(text)) &&
            strspn(text, " \t\r\n\f") < strlen(text))
            text_page(b, page, text, &ol, &carry);
        else
            ocr_page(b, page, &ocr, &ocr_failed);
        g_free(text);
        g_object_unref(page);
    }
    rb__ocr_close(ocr);
    carry_clear(&carry);
    if (!readable && b->st == RB_OK)
        rb__docb_fail(b, RB_ERR_PARSE, "PDF is damaged: none of its %d pages can be read", n);
    for (size_t k = 0; k < ol.n; k++)
        free(ol.e[k].title);
    free(ol.e);
    char *meta = rb_asprintf("{\"pages\":%d}", n);
    rb__docb_set_metadata(b, meta);
    g_object_unref(doc);
    return b->st;
}
