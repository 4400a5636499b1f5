/* Tables on PDF pages, found from character geometry.
 *
 * poppler's reading order splits a table into its columns (each column a
 * text block), so tables cannot be read from the text lines: they are found
 * on the page's geometry instead, from the per-character boxes of
 * poppler_page_get_text_layout (poppler-glib exposes no ruling lines).
 *
 * 1. Segments: runs of characters on one text line with no wide horizontal
 *    gap (a gap of about an em or more splits a line into two segments).
 * 2. Rows: segments whose vertical centres agree, sorted left to right;
 *    neighbouring segments with a small gap become one item, a lone
 *    currency sign joins the amount to its right.
 * 3. Runs: consecutive rows with two or more items (a few single-item rows,
 *    such as "Current assets" in a balance sheet, may sit between them), not
 *    separated by a large vertical gap.
 * 4. Columns: the union of the items' x-ranges over the run's body rows;
 *    each gap in the union is a column boundary. Header rows spanning
 *    several columns are assigned afterwards, by overlap.
 * 5. Acceptance: at least three rows with cells in two or more columns, and
 *    at least two columns that are not prose (a column of long many-word
 *    lines is a text column: two-column prose is never a table) nor list
 *    markers.
 * 6. Header: the leading rows before the first row holding a number outside
 *    the first column (years are headers), merged into one header row; in a
 *    table without numbers the first row and its wrapped continuation.
 *    A wrapped body cell (a text-only row with an empty first column right
 *    below a row) joins the row above.
 * The characters of a table are marked consumed so the caller leaves them
 * out of the page's paragraphs and emits the table where its first
 * character stood in reading order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poppler.h>

#include "ingest-impl.h"

#define MAX_TABLE_COLS 64
#define MAX_HEADER_ROWS 4

struct seg {
    size_t c0, c1; /* code points, inclusive */
    size_t b0, b1; /* bytes [b0, b1) */
    double x1, y1, x2, y2;
    int words;
};

/* Neighbouring segments of one row, treated as one cell's content. */
struct item {
    size_t s0, n; /* into the row's sorted segment indices */
    double x1, x2;
    double cx1; /* x1 without a leading currency sign: where the amount is */
    int words;
    bool numeric, year, marker, currency;
    bool digits;  /* a number with digits (not a dash for nil) */
    bool integer; /* digits only: value holds it */
    long value;
    int col;
};

struct row {
    size_t *segs; /* segment indices sorted by x (into a shared pool) */
    size_t n_segs;
    struct item *items;
    size_t n_items;
    double y1, y2, yc, h;
    bool overlap; /* overlapping text: not a table row */
    bool prose;   /* holds a line of running text (a footnote, a paragraph) */
    bool numeric; /* an item outside the first column is a number */
};

struct ctx {
    const char *text;
    const PopplerRectangle *rects;
    size_t n_rects;
    struct seg *segs;
    size_t n_segs;
    struct row *rows;
    size_t n_rows;
    size_t *pool;
    double med_h, page_x1, page_x2;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_seg_y(const void *a, const void *b, void *arg)
{
    const struct seg *s = arg;
    const struct seg *x = &s[*(const size_t *)a], *y = &s[*(const size_t *)b];
    double cx = (x->y1 + x->y2) / 2, cy = (y->y1 + y->y2) / 2;
    if (cx != cy)
        return cx < cy ? -1 : 1;
    return x->x1 < y->x1 ? -1 : x->x1 > y->x1;
}

static int cmp_seg_x(const void *a, const void *b, void *arg)
{
    const struct seg *s = arg;
    const struct seg *x = &s[*(const size_t *)a], *y = &s[*(const size_t *)b];
    return x->x1 < y->x1 ? -1 : x->x1 > y->x1;
}

static bool is_space_cp(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\f' || cp == 0xA0 || cp == 0x3000 ||
           (cp >= 0x2000 && cp <= 0x200B);
}

static bool it_numeric_digits(size_t digits, size_t letters)
{
    return letters == 0 || (letters == 1 && digits >= 2);
}

/* Classifies an item's text: a number (amount, percentage, date, a dash for
 * zero), a year alone, a list marker, a currency sign alone. */
static void classify(struct item *it, const char *s, size_t n)
{
    size_t digits = 0, letters = 0, other = 0, dashes = 0, i = 0, nonspace = 0;
    uint32_t only = 0;
    while (i < n) {
        uint32_t cp;
        int k = rb_utf8_decode(s + i, n - i, &cp);
        i += (size_t)k;
        if (is_space_cp(cp))
            continue;
        nonspace++;
        only = cp;
        if (cp >= '0' && cp <= '9')
            digits++;
        else if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                 (cp >= 0xC0 && cp != 0xD7 && cp != 0xF7 && !(cp >= 0x2000 && cp < 0x3000)))
            letters++;
        else if (cp == '-' || cp == 0x2013 || cp == 0x2014 || cp == 0x2212)
            dashes++;
        else
            other++;
    }
    it->digits = digits > 0 && it_numeric_digits(digits, letters);
    it->integer = digits > 0 && digits == nonspace && digits <= 9;
    it->value = 0;
    for (size_t q = 0; it->integer && q < n; q++)
        if (s[q] >= '0' && s[q] <= '9')
            it->value = it->value * 10 + (s[q] - '0');
    it->currency = nonspace == 1 && (only == '$' || only == 0x20AC || only == 0xA3 ||
                                     only == 0xA5 || only == 0xFFE5);
    it->numeric = (digits > 0 && (letters == 0 || (letters == 1 && digits >= 2))) ||
                  (nonspace > 0 && dashes == nonspace) || it->currency;
    it->year = false;
    if (digits == 4 && letters == 0 && nonspace <= 6) {
        const char *p = s;
        while (p < s + n && !(*p >= '0' && *p <= '9'))
            p++;
        it->year = (p + 4 <= s + n) && (p[0] == '1' || p[0] == '2') && (p[1] == '9' || p[1] == '0');
    }
    /* "•", "1.", "a)", "(iv)", "-" as the whole cell */
    it->marker = false;
    if (nonspace == 1 && !digits && !letters && !dashes && !it->currency)
        it->marker = true;
    else if (nonspace <= 5 && n && (s[n - 1] == '.' || s[n - 1] == ')') &&
             digits + letters + 2 >= nonspace && (digits == 0 || letters == 0))
        it->marker = letters <= 4;
}

/* 1. Segments of the page's lines. */
static bool push_seg(struct ctx *c, size_t *cap, const struct seg *s)
{
    if (c->n_segs == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct seg *ns = realloc(c->segs, nc * sizeof *ns);
        if (!ns)
            return false;
        c->segs = ns;
        *cap = nc;
    }
    c->segs[c->n_segs++] = *s;
    return true;
}

static bool build_segments(struct ctx *c, const char *text, size_t len,
                           const PopplerRectangle *rects, size_t n_rects)
{
    size_t cap = 0, ci = 0, i = 0;
    bool open = false, space = false;
    struct seg cur = {0};
    size_t line_first_seg = 0; /* segments of the current text line start here */
    int vertical_steps = 0;    /* characters stacked below the previous one (rotated text) */
    bool token_numeric = true, token_has_value = false, prev_token_numeric = false;
    bool token_dashes = true, prev_token_dashes = false;
    while (i < len) {
        size_t start = i, adv = 1;
        uint32_t cp;
        (void)rb_utf8_decode(text + i, len - i, &cp);
        /* the rects index counts UTF-8 lead bytes, like the caller */
        while (start + adv < len && ((unsigned char)text[start + adv] & 0xC0) == 0x80)
            adv++;
        i = start + adv;
        size_t my = ci++;
        bool line_end = cp == '\n' || my >= n_rects;
        if (line_end) {
            if (open && !push_seg(c, &cap, &cur))
                return false;
            open = false;
            /* a rotated line (characters stacked vertically) is no table text */
            if (vertical_steps >= 2)
                c->n_segs = line_first_seg;
            line_first_seg = c->n_segs;
            vertical_steps = 0;
            token_numeric = token_dashes = true;
            token_has_value = prev_token_numeric = prev_token_dashes = false;
            if (my >= n_rects)
                break;
            continue;
        }
        if (is_space_cp(cp)) {
            if (open && !space) {
                prev_token_numeric = token_numeric && token_has_value;
                prev_token_dashes = token_dashes;
            }
            space = open;
            token_numeric = token_dashes = true;
            token_has_value = false;
            continue;
        }
        /* "3,655 $ 4,564", "1,209 1,164", "— 8": an amount after an amount
         * starts the next cell, even with only a space between them */
        bool currency = cp == '$' || cp == 0x20AC || cp == 0xA3 || cp == 0xA5 || cp == 0xFFE5;
        bool dash = cp == '-' || cp == 0x2013 || cp == 0x2014 || cp == 0x2212;
        bool starts_amount = currency || dash || cp == '(' || (cp >= '0' && cp <= '9');
        if (open && space && starts_amount && prev_token_numeric &&
            !(dash && prev_token_dashes)) { /* "- - - x" is a rule, not amounts */
            if (!push_seg(c, &cap, &cur))
                return false;
            open = false;
        }
        /* "(12,369)$ (24,281)": a currency sign right after an amount */
        if (open && !space && currency && token_numeric && token_has_value) {
            if (!push_seg(c, &cap, &cur))
                return false;
            open = false;
            token_numeric = token_dashes = true;
            token_has_value = false;
        }
        if (!(currency || dash || cp == '(' || cp == ')' || cp == ',' || cp == '.' || cp == '%' ||
              (cp >= '0' && cp <= '9')))
            token_numeric = false;
        if ((cp >= '0' && cp <= '9') || dash || cp == '%')
            token_has_value = true;
        if (!dash)
            token_dashes = false;
        const PopplerRectangle *r = &rects[my];
        double x1 = fmin(r->x1, r->x2), x2 = fmax(r->x1, r->x2);
        double y1 = fmin(r->y1, r->y2), y2 = fmax(r->y1, r->y2);
        if (!isfinite(x1) || !isfinite(x2) || !isfinite(y1) || !isfinite(y2))
            continue;
        double h = y2 - y1;
        if (open) {
            double mh = fmax(cur.y2 - cur.y1, h);
            double gap = x1 - cur.x2;
            double dc = fabs((y1 + y2) / 2 - (cur.y1 + cur.y2) / 2);
            if (dc > mh * 0.6 && x1 < cur.x2 && x2 > cur.x1)
                vertical_steps++;
            if (gap > mh * 0.95 || gap < -mh * 0.6 || dc > mh * 0.6) {
                if (!push_seg(c, &cap, &cur))
                    return false;
                open = false;
            }
        }
        if (!open) {
            cur = (struct seg){.c0 = my,
                               .c1 = my,
                               .b0 = start,
                               .b1 = i,
                               .x1 = x1,
                               .y1 = y1,
                               .x2 = x2,
                               .y2 = y2,
                               .words = 1};
            open = true;
            space = false;
            /* a new segment is a new token ("activities$(12,369)$" without
             * spaces, split by the gaps) */
            token_numeric = currency || dash || cp == '(' || cp == ')' || cp == ',' || cp == '.' ||
                            cp == '%' || (cp >= '0' && cp <= '9');
            token_has_value = (cp >= '0' && cp <= '9') || dash || cp == '%';
            token_dashes = dash;
            continue;
        }
        if (space)
            cur.words++;
        space = false;
        cur.c1 = my;
        cur.b1 = i;
        cur.x1 = fmin(cur.x1, x1);
        cur.x2 = fmax(cur.x2, x2);
        cur.y1 = fmin(cur.y1, y1);
        cur.y2 = fmax(cur.y2, y2);
    }
    if (open && !push_seg(c, &cap, &cur))
        return false;
    if (vertical_steps >= 2)
        c->n_segs = line_first_seg;
    return true;
}

static bool seg_is_amount(const struct ctx *c, const struct seg *s)
{
    struct item it;
    classify(&it, c->text + s->b0, s->b1 - s->b0);
    return it.numeric && !it.currency;
}

static bool seg_is_currency(const struct ctx *c, const struct seg *s)
{
    struct item it;
    classify(&it, c->text + s->b0, s->b1 - s->b0);
    return it.currency;
}

/* 2. Rows and their items. */
static bool build_rows(struct ctx *c)
{
    size_t n = c->n_segs;
    c->pool = malloc((n ? n : 1) * sizeof *c->pool);
    c->rows = calloc(n ? n : 1, sizeof *c->rows);
    double *hs = malloc((n ? n : 1) * sizeof *hs);
    if (!c->pool || !c->rows || !hs) {
        free(hs);
        return false;
    }
    c->page_x1 = INFINITY;
    c->page_x2 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        c->pool[i] = i;
        hs[i] = c->segs[i].y2 - c->segs[i].y1;
        c->page_x1 = fmin(c->page_x1, c->segs[i].x1);
        c->page_x2 = fmax(c->page_x2, c->segs[i].x2);
    }
    qsort(hs, n, sizeof *hs, cmp_double);
    c->med_h = n ? hs[n / 2] : 0;
    free(hs);
    if (c->med_h <= 0)
        return true;
    qsort_r(c->pool, n, sizeof *c->pool, cmp_seg_y, c->segs);
    for (size_t i = 0; i < n;) {
        const struct seg *s0 = &c->segs[c->pool[i]];
        double yc = (s0->y1 + s0->y2) / 2, h0 = s0->y2 - s0->y1;
        size_t j = i + 1;
        while (j < n) {
            const struct seg *s = &c->segs[c->pool[j]];
            double h = fmax(s->y2 - s->y1, h0);
            if (fabs((s->y1 + s->y2) / 2 - yc) > 0.4 * fmax(h, c->med_h * 0.5))
                break;
            j++;
        }
        struct row *r = &c->rows[c->n_rows++];
        r->segs = c->pool + i;
        r->n_segs = j - i;
        qsort_r(r->segs, r->n_segs, sizeof *r->segs, cmp_seg_x, c->segs);
        r->y1 = INFINITY;
        r->y2 = -INFINITY;
        for (size_t k = 0; k < r->n_segs; k++) {
            r->y1 = fmin(r->y1, c->segs[r->segs[k]].y1);
            r->y2 = fmax(r->y2, c->segs[r->segs[k]].y2);
        }
        r->yc = (r->y1 + r->y2) / 2;
        r->h = r->y2 - r->y1;
        i = j;
    }
    /* items */
    for (size_t ri = 0; ri < c->n_rows; ri++) {
        struct row *r = &c->rows[ri];
        r->items = calloc(r->n_segs, sizeof *r->items);
        if (!r->items)
            return false;
        for (size_t k = 0; k < r->n_segs; k++) {
            const struct seg *s = &c->segs[r->segs[k]];
            struct item *last = r->n_items ? &r->items[r->n_items - 1] : NULL;
            if (last && s->x1 < last->x2 - c->med_h * 0.3)
                r->overlap = true;
            /* two amounts side by side stay two cells however close */
            const struct seg *left = k ? &c->segs[r->segs[k - 1]] : NULL;
            if (last && s->x1 - last->x2 < c->med_h * 0.6 &&
                !((seg_is_amount(c, s) || seg_is_currency(c, s)) && seg_is_amount(c, left))) {
                last->n++;
                last->x2 = fmax(last->x2, s->x2);
                last->words += s->words;
                continue;
            }
            r->items[r->n_items++] = (struct item){.s0 = k,
                                                   .n = 1,
                                                   .x1 = s->x1,
                                                   .x2 = s->x2,
                                                   .cx1 = s->x1,
                                                   .words = s->words,
                                                   .col = -1};
        }
        for (size_t k = 0; k < r->n_items; k++) {
            /* an item of several segments is a number when each one is */
            struct item *it = &r->items[k];
            bool numeric = true, digits = false;
            for (size_t q = 0; q < it->n; q++) {
                const struct seg *s = &c->segs[r->segs[it->s0 + q]];
                classify(it, c->text + s->b0, s->b1 - s->b0);
                numeric = numeric && it->numeric;
                digits = digits || it->digits;
            }
            if (it->n > 1) {
                it->numeric = numeric;
                it->digits = numeric && digits;
                it->year = it->marker = it->currency = it->integer = false;
            }
        }
        for (size_t k = 0; k < r->n_items; k++)
            if (r->items[k].words >= 7 &&
                r->items[k].x2 - r->items[k].x1 > (c->page_x2 - c->page_x1) * 0.6)
                r->prose = true;
        /* a lone currency sign belongs to the amount on its right */
        for (size_t k = 0; k + 1 < r->n_items; k++) {
            if (!r->items[k].currency || !r->items[k + 1].numeric || r->items[k + 1].currency)
                continue;
            r->items[k].n += r->items[k + 1].n;
            r->items[k].x2 = r->items[k + 1].x2;
            r->items[k].cx1 = r->items[k + 1].cx1;
            r->items[k].words += r->items[k + 1].words;
            r->items[k].currency = false;
            r->items[k].numeric = true;
            r->items[k].digits = r->items[k + 1].digits;
            memmove(&r->items[k + 1], &r->items[k + 2], (r->n_items - k - 2) * sizeof *r->items);
            r->n_items--;
        }
    }
    return true;
}

/* A line of running text: several words filling a wide column. */
static bool prose_line(const struct ctx *c, const struct item *it, double col_x1, double col_x2)
{
    double w = col_x2 - col_x1;
    return it->words >= 4 && (it->x2 - it->x1) >= 0.7 * w && w >= (c->page_x2 - c->page_x1) * 0.15;
}

static size_t item_text(const struct ctx *c, const struct row *r, const struct item *it,
                        struct rb_buf *out)
{
    size_t before = out->len;
    for (size_t k = 0; k < it->n; k++) {
        const struct seg *s = &c->segs[r->segs[it->s0 + k]];
        if (out->len)
            (void)!rb_buf_append(out, " ", 1);
        (void)!rb_buf_append(out, c->text + s->b0, s->b1 - s->b0);
    }
    return out->len - before;
}

static void mark_item(const struct ctx *c, const struct row *r, const struct item *it,
                      unsigned char *consumed, size_t *first)
{
    for (size_t k = 0; k < it->n; k++) {
        const struct seg *s = &c->segs[r->segs[it->s0 + k]];
        memset(consumed + s->c0, 1, s->c1 - s->c0 + 1);
        if (s->c0 < *first)
            *first = s->c0;
    }
}

static void table_clear(struct rb__pdf_table *t)
{
    if (t->cells)
        for (size_t k = 0; k < t->n_rows * t->n_cols; k++)
            free(t->cells[k]);
    free(t->cells);
    t->cells = NULL;
}

struct span {
    double x1, x2;
    int cells, prose, markers, numbers, words;
    int alone;    /* cells alone in their row */
    int full;     /* cells as wide as the column (justified lines) */
    int sequence; /* cells continuing 1, 2, 3... (line numbers) */
    long last;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->x1 < y->x1 ? -1 : x->x1 > y->x1;
}

/* The column an item belongs to: the span it overlaps most, else the nearest. */
static int column_of(const struct span *sp, size_t n, const struct item *it)
{
    int best = -1;
    double best_ov = 0, best_d = INFINITY;
    int near = 0;
    for (size_t k = 0; k < n; k++) {
        double ov = fmin(sp[k].x2, it->x2) - fmax(sp[k].x1, it->cx1);
        if (ov > best_ov) {
            best_ov = ov;
            best = (int)k;
        }
        double d = fabs((sp[k].x1 + sp[k].x2) / 2 - (it->cx1 + it->x2) / 2);
        if (d < best_d) {
            best_d = d;
            near = (int)k;
        }
    }
    return best >= 0 ? best : near;
}

/* Puts an item's text in its column; an item overlapping several columns
 * (a header spanning them, "Base Model Large Model") is split into words,
 * each going to the column it overlaps most. */
static void place_item(const struct ctx *c, const struct row *r, const struct item *it,
                       const struct span *sp, size_t n_sp, bool header, struct rb_buf *row_bufs)
{
    int overlapped = 0;
    for (size_t q = 0; q < n_sp; q++)
        overlapped += fmin(sp[q].x2, it->x2) - fmax(sp[q].x1, it->x1) > c->med_h * 0.2;
    if (!header || overlapped < 2 || it->col < 0) {
        item_text(c, r, it, &row_bufs[it->col < 0 ? 0 : it->col]);
        return;
    }
    for (size_t k = 0; k < it->n; k++) {
        const struct seg *s = &c->segs[r->segs[it->s0 + k]];
        size_t ci = s->c0, w0 = 0;
        struct item word = {.x1 = INFINITY, .x2 = -INFINITY};
        bool in_word = false;
        for (size_t i = s->b0; i <= s->b1; i++) {
            bool lead = i < s->b1 && ((unsigned char)c->text[i] & 0xC0) != 0x80;
            bool sp_char = i < s->b1 && (c->text[i] == ' ' || c->text[i] == '\t');
            if ((i == s->b1 || sp_char) && in_word) {
                word.cx1 = word.x1;
                int col = column_of(sp, n_sp, &word);
                struct rb_buf *out = &row_bufs[col];
                if (out->len)
                    (void)!rb_buf_append(out, " ", 1);
                (void)!rb_buf_append(out, c->text + w0, i - w0);
                in_word = false;
                word.x1 = INFINITY;
                word.x2 = -INFINITY;
            }
            if (i == s->b1)
                break;
            if (lead) {
                if (!sp_char && ci < c->n_rects) {
                    const PopplerRectangle *b = &c->rects[ci];
                    word.x1 = fmin(word.x1, fmin(b->x1, b->x2));
                    word.x2 = fmax(word.x2, fmax(b->x1, b->x2));
                    if (!in_word)
                        w0 = i;
                    in_word = true;
                }
                ci++;
            }
        }
    }
}

static bool row_has_amount(const struct row *row)
{
    for (size_t k = 1; k < row->n_items; k++)
        if (row->items[k].digits && !row->items[k].year)
            return true;
    return false;
}

/* The columns of rows [from, to]: the union of their items' x-ranges (of
 * the rows with amounts only, when amounts_only). *out caller-frees. */
static bool build_spans(const struct ctx *c, size_t from, size_t to, bool amounts_only,
                        struct span **out, size_t *n_out)
{
    size_t n_sp = 0, cap_sp = 16;
    struct span *sp = malloc(cap_sp * sizeof *sp);
    if (!sp)
        return false;
    for (size_t r = from; r <= to; r++) {
        const struct row *row = &c->rows[r];
        if (row->n_items < 2 || (amounts_only && !row_has_amount(row)))
            continue;
        for (size_t k = 0; k < row->n_items; k++) {
            if (n_sp == cap_sp) {
                cap_sp *= 2;
                struct span *ns = realloc(sp, cap_sp * sizeof *ns);
                if (!ns) {
                    free(sp);
                    return false;
                }
                sp = ns;
            }
            sp[n_sp++] = (struct span){.x1 = row->items[k].cx1, .x2 = row->items[k].x2};
        }
    }
    qsort(sp, n_sp, sizeof *sp, cmp_span);
    size_t m = 0;
    for (size_t k = 0; k < n_sp; k++) {
        if (m && sp[k].x1 <= sp[m - 1].x2)
            sp[m - 1].x2 = fmax(sp[m - 1].x2, sp[k].x2);
        else
            sp[m++] = sp[k];
    }
    *out = sp;
    *n_out = m;
    return true;
}

/* Tries rows [a, b] as a table; on success appends it to *tabs and marks
 * its characters. */
static bool try_table(struct ctx *c, size_t a, size_t b, unsigned char *consumed,
                      struct rb__pdf_table **tabs, size_t *n_tabs, size_t *cap_tabs, size_t *b_used)
{
    *b_used = b;
    size_t nr;
    /* header candidates: leading multi-item rows before the first numeric row */
    size_t first_num = b + 1;
    for (size_t r = a; r <= b; r++) {
        const struct row *row = &c->rows[r];
        for (size_t k = 1; k < row->n_items; k++)
            if (row->items[k].digits && !row->items[k].year) {
                first_num = r;
                break;
            }
        if (first_num <= b)
            break;
    }
    bool has_numbers = first_num <= b;
    /* Stacked tables: a row of header text (years or words, no amounts)
     * below rows of amounts starts the next table. */
    for (size_t r = first_num + 1; has_numbers && r + 1 <= b; r++) {
        const struct row *row = &c->rows[r];
        if (row->n_items < 3 || row->n_items * 2 < c->rows[first_num].n_items)
            continue;
        bool header_like = true;
        for (size_t k = 1; k < row->n_items && header_like; k++)
            header_like = row->items[k].year || !row->items[k].numeric;
        if (!header_like)
            continue;
        bool amounts_below = false;
        for (size_t q = r + 1; q <= b && q <= r + 3 && !amounts_below; q++)
            for (size_t k = 1; k < c->rows[q].n_items; k++)
                amounts_below =
                    amounts_below || (c->rows[q].items[k].digits && !c->rows[q].items[k].year);
        if (!amounts_below)
            continue;
        b = r - 1;
        while (b > first_num && c->rows[b].n_items < 2)
            b--;
        break;
    }
    *b_used = b;
    size_t hdr_end = a; /* rows [a, hdr_end) form the header */
    if (has_numbers) {
        /* The table starts at its header: up to MAX_HEADER_ROWS rows right
         * above the first row with numbers, each with several items or with
         * one item right of the label column (a wrapped header cell); one or
         * two single-item rows at the left between header and numbers are
         * section labels ("Current assets"). Rows above are not part of it. */
        double label_x2 = INFINITY; /* the shortest label of the body */
        for (size_t r = first_num; r <= b; r++)
            if (c->rows[r].n_items >= 2)
                label_x2 = fmin(label_x2, c->rows[r].items[0].x2);
        size_t start = first_num;
        int hdr = 0, singles = 0;
        for (size_t r = first_num; r > a; r--) {
            const struct row *row = &c->rows[r - 1];
            double gap = c->rows[r].y1 - row->y2;
            if (gap > c->med_h * (r == first_num || (hdr == 0 && singles) ? 2.5 : 1.5))
                break;
            bool right = row->n_items == 1 && row->items[0].x1 > label_x2;
            if (row->n_items >= 2 || right) {
                if (hdr == MAX_HEADER_ROWS || (hdr && gap > c->med_h * 1.0))
                    break;
                if (!hdr)
                    hdr_end = r;
                hdr++;
                start = r - 1;
            } else if (hdr || ++singles > 2) {
                break;
            }
        }
        a = start;
        if (!hdr)
            hdr_end = a;
    }
    nr = b - a + 1;
    /* Columns: the union of the items' x-ranges over the rows of amounts
     * (all body rows in a table without numbers). A text row below whose
     * item bridges two columns (a caption, a paragraph) ends the table. */
    size_t body0 = has_numbers ? first_num : b - a >= 3 ? a + 1 : a; /* below the header */
    struct span *sp = NULL;
    size_t n_sp = 0;
    if (!build_spans(c, body0, b, has_numbers, &sp, &n_sp))
        return false;
    for (size_t r = body0 + 1; has_numbers && r <= b; r++) {
        const struct row *row = &c->rows[r];
        if (row_has_amount(row))
            continue;
        bool bridges = false;
        for (size_t k = 0; k < row->n_items && !bridges; k++) {
            int over = 0;
            for (size_t q = 0; q < n_sp; q++)
                over += fmin(sp[q].x2, row->items[k].x2) - fmax(sp[q].x1, row->items[k].cx1) >
                        c->med_h * 0.2;
            bridges = over >= 2 && row->items[k].words >= 3;
        }
        if (!bridges)
            continue;
        b = r - 1;
        while (b > body0 && c->rows[b].n_items < 2)
            b--;
        *b_used = b;
        nr = b - a + 1;
        free(sp);
        if (!build_spans(c, body0, b, has_numbers, &sp, &n_sp))
            return false;
        break;
    }
    if (n_sp < 2 || n_sp > MAX_TABLE_COLS) {
        free(sp);
        return false;
    }
    /* assign columns; statistics per column */
    size_t spread_rows = 0;
    for (size_t r = a; r <= b; r++) {
        struct row *row = &c->rows[r];
        int prev = -1, distinct = 0;
        for (size_t k = 0; k < row->n_items; k++) {
            struct item *it = &row->items[k];
            it->col = column_of(sp, n_sp, it);
            if (row->n_items == 1) {
                /* a single item (a section label) goes where it starts */
                for (size_t q = 0; q < n_sp; q++)
                    if (it->x1 < sp[q].x2) {
                        it->col = (int)q;
                        break;
                    }
            }
            if (it->col != prev)
                distinct++;
            prev = it->col;
            if (r < body0)
                continue;
            struct span *s = &sp[it->col];
            s->cells++;
            s->prose += prose_line(c, it, s->x1, s->x2);
            s->markers += it->marker;
            s->numbers += it->numeric;
            s->words += it->words;
            s->alone += row->n_items == 1;
            s->full += it->x2 - it->cx1 >= (s->x2 - s->x1) * 0.93;
            if (it->integer && (s->cells == 1 || it->value == s->last + 1) &&
                s->sequence == s->cells - 1)
                s->sequence++;
            if (it->integer)
                s->last = it->value;
        }
        if (r >= body0 && distinct >= 2)
            spread_rows++;
        row->numeric = false;
        for (size_t k = 0; k < row->n_items; k++)
            if (row->items[k].col > 0 && row->items[k].digits && !row->items[k].year)
                row->numeric = true;
    }
    /* Columns that make a table: not running text (two-column prose), not
     * list markers, not line numbers. A table needs two of them, one with
     * numbers or three with short cells. */
    int good = 0, numeric = 0, short_cells = 0;
    /* a column of running text at either edge is prose beside the table
     * (a table in one column of a two-column page): left out */
    size_t lo = 0, hi = n_sp - 1;
#define PROSE_COL(t) ((t)->prose * 20 >= (t)->cells * 7 || (t)->words >= (t)->cells * 5)
#define BESIDE(t)                                                                                  \
    (PROSE_COL(t) && (t)->cells >= 4 &&                                                            \
     ((t)->alone * 3 >= (t)->cells || (t)->full * 4 >= (t)->cells * 3))
    while (lo < hi && BESIDE(&sp[lo]))
        lo++;
    while (hi > lo && BESIDE(&sp[hi]))
        hi--;
    for (size_t q = lo; q <= hi; q++) {
        const struct span *t = &sp[q];
        if (t->cells < 2 || PROSE_COL(t) || t->markers * 2 >= t->cells || t->sequence == t->cells)
            continue;
        good++;
        numeric += t->numbers * 2 >= t->cells;
        short_cells += t->words * 2 <= t->cells * 7;
    }
#ifdef RB_PDF_TABLE_DEBUG /* tuning aid: -DRB_PDF_TABLE_DEBUG=1 (2 = rows too) */
    {
        fprintf(stderr,
                "candidate rows %zu-%zu y %.0f-%.0f: good %d numeric %d short %d spread %zu\n", a,
                b, c->rows[a].y1, c->rows[b].y2, good, numeric, short_cells, spread_rows);
        for (size_t r = a; r <= b && RB_PDF_TABLE_DEBUG == 2; r++) {
            fprintf(stderr, "  row %zu:", r);
            for (size_t k = 0; k < c->rows[r].n_items; k++) {
                const struct item *it = &c->rows[r].items[k];
                const struct seg *f = &c->segs[c->rows[r].segs[it->s0]];
                fprintf(stderr, " [%.0f-%.0f n%zu '%.*s']", it->x1, it->x2, it->n,
                        (int)(f->b1 - f->b0), c->text + f->b0);
            }
            fprintf(stderr, "\n");
        }
        for (size_t q = 0; q < n_sp; q++)
            fprintf(
                stderr,
                "  col %zu x %.0f-%.0f cells %d prose %d markers %d numbers %d words %d seq %d\n",
                q, sp[q].x1, sp[q].x2, sp[q].cells, sp[q].prose, sp[q].markers, sp[q].numbers,
                sp[q].words, sp[q].sequence);
    }
#endif
    if (good < 2 || (numeric < 1 && short_cells < 3) || spread_rows < 3) {
        free(sp);
        return false;
    }
    /* header rows of a table without numbers: the first row and its
     * wrapped continuation (fewer items, tight below it) */
    if (!has_numbers) {
        hdr_end = a + 1;
        while (hdr_end <= b && hdr_end - a < MAX_HEADER_ROWS) {
            const struct row *p = &c->rows[hdr_end - 1], *q = &c->rows[hdr_end];
            if (q->n_items >= p->n_items || q->y1 - p->y2 > c->med_h * 0.5)
                break;
            hdr_end++;
        }
    }
    /* the grid */
    size_t cols = hi - lo + 1;
    struct rb__pdf_table t = {.n_cols = cols, .first_char = (size_t)-1};
    t.cells = calloc(nr * cols, sizeof *t.cells);
    struct rb_buf *bufs = calloc(nr * cols, sizeof *bufs);
    if (!t.cells || !bufs) {
        free(t.cells);
        free(bufs);
        free(sp);
        return false;
    }
    for (size_t k = 0; k < nr * cols; k++)
        rb_buf_init(&bufs[k], 1u << 20);
    size_t out_row = 0;
    double prev_y2 = -INFINITY;
    bool prev_label_only = false; /* the last row has text in the first column only */
    for (size_t r = a; r <= b; r++) {
        const struct row *row = &c->rows[r];
        bool any = false, first_empty = true;
        for (size_t k = 0; k < row->n_items; k++) {
            int col = row->items[k].col;
            any = any || (col >= (int)lo && col <= (int)hi);
            first_empty = first_empty && col != (int)lo;
        }
        if (!any)
            continue; /* only prose beside the table */
        size_t target;
        if (r < hdr_end) {
            target = 0;
        } else {
            /* a wrapped text cell continues the row above; so do the
             * amounts of a label set on its own line just above them */
            bool has_prev = out_row > (hdr_end > a ? 1u : 0u);
            bool cont =
                has_prev && first_empty && !row->numeric && row->y1 - prev_y2 < c->med_h * 0.8;
            cont = cont || (has_prev && first_empty && prev_label_only && row->numeric &&
                            row->y1 - prev_y2 < c->med_h * 0.5);
            target = cont ? out_row - 1 : out_row++;
            prev_label_only = !cont;
            for (size_t k = 0; k < row->n_items && prev_label_only; k++)
                prev_label_only = row->items[k].col <= (int)lo;
        }
        if (r < hdr_end && out_row == 0)
            out_row = 1;
        for (size_t k = 0; k < row->n_items; k++) {
            struct item it = row->items[k];
            if (it.col < (int)lo || it.col > (int)hi)
                continue;
            it.col -= (int)lo;
            place_item(c, row, &it, sp + lo, cols, r < hdr_end, &bufs[target * cols]);
            mark_item(c, row, &it, consumed, &t.first_char);
        }
        prev_y2 = row->y2;
    }
    t.n_rows = out_row;
    t.header_rows = hdr_end > a ? 1 : 0;
    bool ok = true;
    for (size_t k = 0; k < out_row * cols; k++) {
        t.cells[k] = bufs[k].data ? bufs[k].data : rb_strdup("");
        bufs[k].data = NULL;
        if (!t.cells[k])
            ok = false;
    }
    for (size_t k = 0; k < nr * cols; k++)
        rb_buf_free(&bufs[k]);
    free(bufs);
    free(sp);
    if (ok && *n_tabs == *cap_tabs) {
        size_t nc = *cap_tabs ? *cap_tabs * 2 : 4;
        struct rb__pdf_table *nt = realloc(*tabs, nc * sizeof *nt);
        if (nt) {
            *tabs = nt;
            *cap_tabs = nc;
        } else {
            ok = false;
        }
    }
    if (!ok) {
        table_clear(&t);
        return false;
    }
    (*tabs)[(*n_tabs)++] = t;
    return true;
}

enum rb_status rb__pdf_tables_find(const char *text, size_t len, const PopplerRectangle *rects,
                                   size_t n_rects, unsigned char *consumed,
                                   struct rb__pdf_table **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    struct ctx c = {.text = text, .rects = rects, .n_rects = n_rects};
    enum rb_status st = RB_OK;
    if (!build_segments(&c, text, len, rects, n_rects) || !build_rows(&c)) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    if (c.med_h <= 0)
        goto done;
    size_t cap = 0, failed_end = (size_t)-1;
    int failed_tries = 0;
    for (size_t i = 0; i < c.n_rows;) {
        if (c.rows[i].n_items < 2 || c.rows[i].overlap || c.rows[i].prose) {
            i++;
            continue;
        }
        /* 3. the run of rows from i */
        size_t last_multi = i, singles = 0, j = i + 1;
        for (; j < c.n_rows; j++) {
            const struct row *p = &c.rows[j - 1], *q = &c.rows[j];
            if (q->overlap || (q->prose && q->n_items >= 2) || q->y1 - p->y2 > c.med_h * 2.5)
                break;
            if (q->n_items >= 2) {
                last_multi = j;
                singles = 0;
            } else if (++singles > 3) {
                break;
            }
        }
        /* a full-width single row (a paragraph line) ends the run */
        size_t end = last_multi;
        double last_col_x1 = -INFINITY; /* where the rightmost column starts */
        for (size_t r = i; r <= end; r++)
            if (c.rows[r].n_items >= 2)
                last_col_x1 = fmax(last_col_x1, c.rows[r].items[c.rows[r].n_items - 1].x1);
        for (size_t r = i + 1; r <= end; r++)
            if (c.rows[r].n_items == 1 && c.rows[r].items[0].x2 > last_col_x1 + c.med_h &&
                c.rows[r].items[0].words >= 6) {
                end = r - 1;
                while (end > i && c.rows[end].n_items < 2)
                    end--;
                break;
            }
        size_t used = end;
        if (end - i + 1 >= 3 && try_table(&c, i, end, consumed, out, n_out, &cap, &used)) {
            i = used + 1;
            failed_end = (size_t)-1;
            continue;
        }
        /* retry from the next rows (leading rows may spoil a table), but a
         * few times per run only: bounded work on pages of many rows */
        if (end == failed_end && ++failed_tries >= 8) {
            i = end + 1;
            continue;
        }
        if (end != failed_end) {
            failed_end = end;
            failed_tries = 0;
        }
        i++;
    }
done:
    for (size_t r = 0; r < c.n_rows; r++)
        free(c.rows[r].items);
    free(c.rows);
    free(c.pool);
    free(c.segs);
    if (st != RB_OK) {
        rb__pdf_tables_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
    }
    return st;
}

void rb__pdf_tables_free(struct rb__pdf_table *t, size_t n)
{
    if (!t)
        return;
    for (size_t i = 0; i < n; i++)
        table_clear(&t[i]);
    free(t);
}
