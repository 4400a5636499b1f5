/* RTF (Rich Text Format, 1.x as written by Word, WordPad, TextEdit and
 * LibreOffice). Debian has no C library that reads RTF, so this is a bounded
 * tokenizer over the spec's three token kinds (groups, control words and
 * symbols, text) with only the state the text needs:
 *   - characters: \'hh bytes decoded from the code page of the current font
 *     (\fcharset in the font table) or the document's \ansicpg, through
 *     iconv; \uN Unicode (with surrogate pairs) skipping the \ucN fallback
 *     characters; the named symbols (\emdash, \lquote, \~ ...);
 *   - destinations: the font table, stylesheet (heading styles by name or
 *     \outlinelevel) and \info \title are read; every other destination
 *     (\*, colour/list tables, pictures, headers, footers, field
 *     instructions, binary \bin data ...) is skipped;
 *   - paragraphs at \par (and "\" + newline), headings from \outlinelevelN
 *     or a heading style, list items from \listtext / \pntext / \ls, tables
 *     from \intbl paragraphs, \cell and \row (first row as header).
 * Group nesting is bounded by max_depth; text by max_text_bytes. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest-impl.h"

#define MAX_FONTS 1024
#define MAX_STYLES 1024

enum dest {
    D_TEXT = 0, /* visible text */
    D_SKIP,     /* ignored destination */
    D_FONTTBL,
    D_STYLESHEET,
    D_TITLE,
    D_MARKER /* \listtext / \pntext: a list marker, not text */
};

struct state {
    enum dest dest;
    int uc;   /* fallback characters after \uN */
    int font; /* \fN */
};

struct rtf {
    struct rb__docb *b;
    const unsigned char *p, *end;
    struct state st[1]; /* current */
    struct state *stack;
    int depth, max_depth;
    int default_cp; /* \ansicpg */
    short font_cp[MAX_FONTS];
    signed char style_level[MAX_STYLES]; /* heading level of \sN, 0 = none */
    int cur_font_def, cur_style_def;     /* while reading the tables */
    int cur_style_outline;
    struct rb_buf name; /* style name being read */
    /* the paragraph being built */
    struct rb_buf para;
    struct rb_buf cell; /* table cell text */
    int outline;        /* \outlinelevelN + 1, 0 = none */
    int style;          /* \sN */
    bool list;          /* \ls or a list marker */
    int ilvl;
    bool intbl;
    bool in_table, row_open;
    size_t rows;
    struct rb_buf title;
    /* \'hh bytes waiting for decoding */
    unsigned char pend[256];
    size_t n_pend;
    int pend_cp;
    iconv_t cd;
    int cd_cp;
    int skip_fallback; /* characters still to skip after \uN */
    uint32_t high_surrogate;
};

static int hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int charset_cp(int fcharset, int dflt)
{
    switch (fcharset) {
    case 0:
        return 1252;
    case 1:
        return dflt;
    case 2:
        return 0; /* symbol: no text */
    case 77:
        return 10000;
    case 128:
        return 932;
    case 129:
        return 949;
    case 130:
        return 1361;
    case 134:
        return 936;
    case 136:
        return 950;
    case 161:
        return 1253;
    case 162:
        return 1254;
    case 163:
        return 1258;
    case 177:
        return 1255;
    case 178:
        return 1256;
    case 186:
        return 1257;
    case 204:
        return 1251;
    case 222:
        return 874;
    case 238:
        return 1250;
    default:
        return dflt;
    }
}

static const char *cp_name(int cp, char *buf, size_t n)
{
    switch (cp) {
    case 936:
        return "GB18030";
    case 950:
        return "BIG5";
    case 932:
        return "SHIFT_JIS";
    case 949:
        return "CP949";
    case 10000:
        return "MACINTOSH";
    case 65001:
        return "UTF-8";
    case 874:
        return "CP874";
    case 1361:
        return "JOHAB";
    case 437:
        return "CP437";
    case 850:
        return "CP850";
    default:
        snprintf(buf, n, "CP%d", cp);
        return buf;
    }
}

static struct rb_buf *target(struct rtf *r)
{
    if (r->st->dest == D_TITLE)
        return &r->title;
    if (r->st->dest == D_STYLESHEET)
        return &r->name;
    return &r->para;
}

static void put_cp(struct rtf *r, uint32_t cp)
{
    if (r->st->dest != D_TEXT && r->st->dest != D_TITLE && r->st->dest != D_STYLESHEET)
        return;
    char u[4];
    int n = rb_utf8_encode(cp, u);
    if (n > 0 && rb_buf_append(target(r), u, (size_t)n) != RB_OK)
        rb__docb_fail(r->b, RB_ERR_TOO_LARGE, "RTF text larger than %zu MiB",
                      r->b->lim->max_text_bytes >> 20);
}

static void put_str(struct rtf *r, const char *s)
{
    if (r->st->dest != D_TEXT && r->st->dest != D_TITLE && r->st->dest != D_STYLESHEET)
        return;
    if (rb_buf_append_str(target(r), s) != RB_OK)
        rb__docb_fail(r->b, RB_ERR_TOO_LARGE, "RTF text too large");
}

/* Decodes the pending \'hh bytes (and raw 8-bit text) in their code page. */
static void flush_bytes(struct rtf *r)
{
    if (!r->n_pend)
        return;
    int cp = r->pend_cp;
    if (cp == 0) { /* symbol font: nothing readable */
        r->n_pend = 0;
        return;
    }
    if (r->cd == (iconv_t)-1 || r->cd_cp != cp) {
        if (r->cd != (iconv_t)-1)
            iconv_close(r->cd);
        char buf[16];
        r->cd = iconv_open("UTF-8", cp_name(cp, buf, sizeof buf));
        if (r->cd == (iconv_t)-1)
            r->cd = iconv_open("UTF-8", "CP1252");
        r->cd_cp = cp;
    }
    char *in = (char *)r->pend;
    size_t inleft = r->n_pend;
    while (inleft && r->cd != (iconv_t)-1) {
        char out[1024], *o = out;
        size_t oleft = sizeof out;
        size_t rc = iconv(r->cd, &in, &inleft, &o, &oleft);
        if (o > out && rb_buf_append(target(r), out, (size_t)(o - out)) != RB_OK) {
            rb__docb_fail(r->b, RB_ERR_TOO_LARGE, "RTF text too large");
            break;
        }
        if (rc == (size_t)-1 && errno != E2BIG) { /* invalid or truncated: U+FFFD, skip a byte */
            put_cp(r, 0xFFFD);
            in++;
            inleft--;
            iconv(r->cd, NULL, NULL, NULL, NULL);
        }
    }
    r->n_pend = 0;
}

static void add_byte(struct rtf *r, unsigned char c)
{
    if (r->skip_fallback > 0) {
        r->skip_fallback--;
        return;
    }
    if (r->st->dest == D_SKIP || r->st->dest == D_MARKER || r->st->dest == D_FONTTBL)
        return;
    int cp = r->default_cp;
    if (r->st->font >= 0 && r->st->font < MAX_FONTS && r->font_cp[r->st->font] >= 0)
        cp = r->font_cp[r->st->font];
    if (r->n_pend && (r->pend_cp != cp || r->n_pend == sizeof r->pend))
        flush_bytes(r);
    r->pend_cp = cp;
    r->pend[r->n_pend++] = c;
}

static void add_char(struct rtf *r, unsigned char c)
{
    if (c >= 0x80) {
        add_byte(r, c);
        return;
    }
    if (r->skip_fallback > 0) {
        r->skip_fallback--;
        return;
    }
    flush_bytes(r);
    if (r->st->dest == D_FONTTBL || r->st->dest == D_SKIP || r->st->dest == D_MARKER)
        return;
    char ch = (char)c;
    if (rb_buf_append(target(r), &ch, 1) != RB_OK)
        rb__docb_fail(r->b, RB_ERR_TOO_LARGE, "RTF text too large");
}

static void end_table(struct rtf *r)
{
    if (!r->in_table)
        return;
    if (r->row_open)
        rb__docb_row_end(r->b);
    rb__docb_table_end(r->b, r->rows > 1 ? 1 : 0);
    r->in_table = r->row_open = false;
    r->rows = 0;
}

/* End of a paragraph (\par). */
static void end_para(struct rtf *r)
{
    flush_bytes(r);
    if (r->intbl) {
        /* a paragraph break inside a cell: keep the cell going */
        if (r->para.len) {
            if (r->cell.len)
                (void)!rb_buf_append(&r->cell, " ", 1);
            (void)!rb_buf_append(&r->cell, r->para.data, r->para.len);
            rb_buf_reset(&r->para);
        }
        return;
    }
    end_table(r);
    if (!r->para.len)
        return;
    int level = r->outline;
    if (!level && r->style > 0 && r->style < MAX_STYLES)
        level = r->style_level[r->style];
    if (level > 0 && r->para.len < 400)
        rb__docb_add(r->b, RB_INGEST_BLOCK_HEADING, level > 9 ? 9 : level, r->para.data,
                     r->para.len);
    else if (r->list)
        rb__docb_add(r->b, RB_INGEST_BLOCK_LIST_ITEM, r->ilvl + 1, r->para.data, r->para.len);
    else
        rb__docb_add(r->b, RB_INGEST_BLOCK_PARAGRAPH, 0, r->para.data, r->para.len);
    rb_buf_reset(&r->para);
}

static void end_cell(struct rtf *r)
{
    flush_bytes(r);
    if (r->para.len) {
        if (r->cell.len)
            (void)!rb_buf_append(&r->cell, " ", 1);
        (void)!rb_buf_append(&r->cell, r->para.data, r->para.len);
        rb_buf_reset(&r->para);
    }
    if (!r->in_table) {
        rb__docb_table_begin(r->b);
        r->in_table = true;
        r->rows = 0;
    }
    if (!r->row_open) {
        rb__docb_row_begin(r->b);
        r->row_open = true;
    }
    rb__docb_cell(r->b, r->cell.data ? r->cell.data : "", r->cell.len);
    rb_buf_reset(&r->cell);
}

static void end_row(struct rtf *r)
{
    flush_bytes(r);
    if (r->para.len || r->cell.len)
        end_cell(r);
    if (r->row_open) {
        rb__docb_row_end(r->b);
        r->row_open = false;
        r->rows++;
    }
}

/* The style name just read ("heading 2", "Heading 1 Char" is not). */
static void end_style(struct rtf *r)
{
    if (r->cur_style_def < 0 || r->cur_style_def >= MAX_STYLES)
        return;
    int level = r->cur_style_outline;
    const char *n = r->name.data ? r->name.data : "";
    while (*n == ' ')
        n++;
    if (!level && strncasecmp(n, "heading ", 8) == 0 && n[8] >= '1' && n[8] <= '9' &&
        (n[9] == ';' || n[9] == '\0'))
        level = n[8] - '0';
    if (!level && (strncasecmp(n, "title;", 6) == 0))
        level = 1;
    r->style_level[r->cur_style_def] = (signed char)level;
}

static void control(struct rtf *r, const char *w, bool has_param, long param)
{
    struct state *s = r->st;
#define IS(x) (strcmp(w, x) == 0)
    /* destinations */
    if (IS("fonttbl")) {
        s->dest = D_FONTTBL;
        return;
    }
    if (IS("stylesheet")) {
        s->dest = D_STYLESHEET;
        return;
    }
    if (IS("listtext") || IS("pntext")) {
        flush_bytes(r);
        s->dest = D_MARKER;
        r->list = true;
        return;
    }
    static const char *const skipped[] = {"colortbl",
                                          "pict",
                                          "object",
                                          "objdata",
                                          "header",
                                          "headerl",
                                          "headerr",
                                          "headerf",
                                          "footer",
                                          "footerl",
                                          "footerr",
                                          "footerf",
                                          "footnote",
                                          "fldinst",
                                          "listtable",
                                          "listoverridetable",
                                          "rsidtbl",
                                          "generator",
                                          "xmlnstbl",
                                          "themedata",
                                          "colorschememapping",
                                          "latentstyles",
                                          "datastore",
                                          "private",
                                          "bkmkstart",
                                          "bkmkend",
                                          "author",
                                          "operator",
                                          "company",
                                          "comment",
                                          "doccomm",
                                          "keywords",
                                          "subject",
                                          "category",
                                          "manager",
                                          "revtbl",
                                          "pgdsctbl",
                                          "filetbl",
                                          "mmathPr",
                                          "nonshppict",
                                          "shppict",
                                          "sp",
                                          "sn",
                                          "sv",
                                          "txe",
                                          "xe",
                                          "tc",
                                          "atnid",
                                          "atnauthor",
                                          "annotation",
                                          "expandedcolortbl",
                                          "userprops",
                                          "docvar",
                                          "passwordhash",
                                          "ftnsep",
                                          "ftnsepc",
                                          "aftnsep",
                                          "aftnsepc",
                                          "pnseclvl",
                                          "protusertbl",
                                          "wgrffmtfilter",
                                          "fchars",
                                          "lchars"};
    for (size_t i = 0; i < RB_ARRAY_LEN(skipped); i++)
        if (IS(skipped[i])) {
            flush_bytes(r);
            s->dest = D_SKIP;
            return;
        }
    if (s->dest == D_FONTTBL) {
        if (IS("f") && has_param)
            r->cur_font_def = (int)param;
        else if (IS("fcharset") && has_param && r->cur_font_def >= 0 && r->cur_font_def < MAX_FONTS)
            r->font_cp[r->cur_font_def] = (short)charset_cp((int)param, r->default_cp);
        else if (IS("cpg") && has_param && r->cur_font_def >= 0 && r->cur_font_def < MAX_FONTS)
            r->font_cp[r->cur_font_def] = (short)param;
        return;
    }
    if (s->dest == D_STYLESHEET) {
        if ((IS("s") || IS("cs") || IS("ds") || IS("ts")) && has_param) {
            r->cur_style_def = IS("s") ? (int)param : -1;
            r->cur_style_outline = 0;
            rb_buf_reset(&r->name);
        } else if (IS("outlinelevel") && has_param && param >= 0 && param < 9) {
            r->cur_style_outline = (int)param + 1;
        }
        return;
    }
    /* characters */
    if (IS("u") && has_param) {
        long v = param < 0 ? param + 65536 : param;
        flush_bytes(r);
        if (r->skip_fallback > 0) /* \u inside the fallback of another \u */
            r->skip_fallback = 0;
        if (v >= 0xD800 && v < 0xDC00) {
            r->high_surrogate = (uint32_t)v;
        } else if (v >= 0xDC00 && v < 0xE000 && r->high_surrogate) {
            put_cp(r, 0x10000 + ((r->high_surrogate - 0xD800) << 10) + ((uint32_t)v - 0xDC00));
            r->high_surrogate = 0;
        } else if (v > 0 && v < 0x110000) {
            put_cp(r, (uint32_t)v);
        }
        r->skip_fallback = s->uc;
        return;
    }
    if (IS("uc") && has_param) {
        s->uc = param < 0 ? 0 : param > 10 ? 10 : (int)param;
        return;
    }
    static const struct {
        const char *w, *utf8;
    } symbols[] = {{"emdash", "\xe2\x80\x94"},
                   {"endash", "\xe2\x80\x93"},
                   {"bullet", "\xe2\x80\xa2"},
                   {"lquote", "\xe2\x80\x98"},
                   {"rquote", "\xe2\x80\x99"},
                   {"ldblquote", "\xe2\x80\x9c"},
                   {"rdblquote", "\xe2\x80\x9d"},
                   {"emspace", " "},
                   {"enspace", " "},
                   {"qmspace", " "},
                   {"tab", "\t"},
                   {"line", "\n"},
                   {"lbr", "\n"}};
    for (size_t i = 0; i < RB_ARRAY_LEN(symbols); i++)
        if (IS(symbols[i].w)) {
            flush_bytes(r);
            if (r->skip_fallback > 0) {
                r->skip_fallback--;
                return;
            }
            put_str(r, symbols[i].utf8);
            return;
        }
    /* structure */
    if (IS("par") || IS("sect")) {
        end_para(r);
    } else if (IS("pard")) {
        flush_bytes(r);
        r->outline = 0;
        r->style = 0;
        r->list = false;
        r->ilvl = 0;
        r->intbl = false;
    } else if (IS("outlinelevel") && has_param) {
        r->outline = param >= 0 && param < 9 ? (int)param + 1 : 0;
    } else if (IS("s") && has_param) {
        r->style = (int)param;
    } else if (IS("ls") && has_param) {
        r->list = true;
    } else if (IS("ilvl") && has_param) {
        r->ilvl = param >= 0 && param < 9 ? (int)param : 0;
    } else if (IS("intbl")) {
        r->intbl = true;
    } else if (IS("cell") || IS("nestcell")) {
        if (IS("cell"))
            end_cell(r);
        else
            put_str(r, " ");
    } else if (IS("row")) {
        end_row(r);
        r->intbl = false;
    } else if (IS("f") && has_param) {
        flush_bytes(r);
        s->font = (int)param;
    } else if (IS("ansicpg") && has_param && param > 0 && param < 70000) {
        r->default_cp = (int)param;
    } else if (IS("mac")) {
        r->default_cp = 10000;
    } else if (IS("pc")) {
        r->default_cp = 437;
    } else if (IS("pca")) {
        r->default_cp = 850;
    }
#undef IS
}

enum rb_status rb__parse_rtf(struct rb__docb *b, const void *data, size_t len)
{
    if (len < 5 || memcmp(data, "{\\rtf", 5) != 0)
        return rb__docb_fail(b, RB_ERR_PARSE, "not an RTF document (no {\\rtf header)");
    struct rtf r;
    memset(&r, 0, sizeof r);
    r.b = b;
    r.p = data;
    r.end = r.p + len;
    r.max_depth = b->lim->max_depth;
    r.stack = calloc((size_t)r.max_depth + 1, sizeof *r.stack);
    if (!r.stack)
        return rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
    r.default_cp = 1252;
    r.st->uc = 1;
    r.st->font = -1;
    r.cur_font_def = r.cur_style_def = -1;
    r.cd = (iconv_t)-1;
    for (int i = 0; i < MAX_FONTS; i++)
        r.font_cp[i] = -1;
    rb_buf_init(&r.para, b->lim->max_text_bytes + 1);
    rb_buf_init(&r.cell, b->lim->max_text_bytes + 1);
    rb_buf_init(&r.title, 4096);
    rb_buf_init(&r.name, 4096);
    bool in_info = false;
    int info_depth = -1;
    while (r.p < r.end && b->st == RB_OK) {
        unsigned char c = *r.p++;
        if (c == '{') {
            flush_bytes(&r);
            if (r.depth >= r.max_depth) {
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "RTF groups nested deeper than %d", r.max_depth);
                break;
            }
            r.stack[r.depth++] = *r.st;
            /* {\* ...}: an optional destination we do not know is skipped,
             * except the ones whose text we read or skip anyway by name */
            if (r.p + 1 < r.end && r.p[0] == '\\' && r.p[1] == '*') {
                r.p += 2;
                r.st->dest = D_SKIP;
            }
            continue;
        }
        if (c == '}') {
            flush_bytes(&r);
            if (r.depth == 0)
                break; /* the document's closing brace */
            enum dest was = r.st->dest;
            if (was == D_STYLESHEET && r.cur_style_def >= 0 &&
                r.stack[r.depth - 1].dest == D_STYLESHEET)
                end_style(&r), r.cur_style_def = -1;
            if (was == D_FONTTBL && r.stack[r.depth - 1].dest == D_FONTTBL)
                r.cur_font_def = -1;
            *r.st = r.stack[--r.depth];
            r.skip_fallback = 0;
            if (in_info && r.depth < info_depth)
                in_info = false;
            continue;
        }
        if (c == '\r' || c == '\n')
            continue;
        if (c != '\\') {
            if (r.st->dest == D_FONTTBL && c == ';')
                r.cur_font_def = -1;
            add_char(&r, c);
            continue;
        }
        if (r.p >= r.end)
            break;
        unsigned char d = *r.p;
        if ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z')) {
            char word[33];
            size_t n = 0;
            while (r.p < r.end && ((*r.p >= 'a' && *r.p <= 'z') || (*r.p >= 'A' && *r.p <= 'Z'))) {
                if (n < sizeof word - 1)
                    word[n++] = (char)*r.p;
                r.p++;
            }
            word[n] = '\0';
            bool neg = false, has = false;
            long param = 0;
            if (r.p < r.end && *r.p == '-') {
                neg = true;
                r.p++;
            }
            int digits = 0;
            while (r.p < r.end && *r.p >= '0' && *r.p <= '9') {
                if (digits++ < 10)
                    param = param * 10 + (*r.p - '0');
                r.p++;
                has = true;
            }
            if (neg)
                param = -param;
            if (r.p < r.end && *r.p == ' ')
                r.p++; /* the delimiting space belongs to the control word */
            if (strcmp(word, "bin") == 0) {
                /* binary data: skip param bytes */
                size_t skip = has && param > 0 ? (size_t)param : 0;
                r.p = skip > (size_t)(r.end - r.p) ? r.end : r.p + skip;
                continue;
            }
            if (strcmp(word, "info") == 0) {
                in_info = true;
                info_depth = r.depth;
                r.st->dest = D_SKIP;
                continue;
            }
            if (strcmp(word, "title") == 0 && in_info) {
                r.st->dest = D_TITLE;
                continue;
            }
            control(&r, word, has, param);
            continue;
        }
        r.p++;
        switch (d) {
        case '\'': {
            int hi = r.p < r.end ? hex_digit(*r.p) : -1;
            int lo = r.p + 1 < r.end ? hex_digit(r.p[1]) : -1;
            if (hi >= 0 && lo >= 0) {
                r.p += 2;
                unsigned char byte = (unsigned char)(hi * 16 + lo);
                if (r.st->dest == D_FONTTBL || r.st->dest == D_SKIP || r.st->dest == D_MARKER)
                    break;
                if (r.skip_fallback > 0) {
                    r.skip_fallback--;
                    break;
                }
                add_byte(&r, byte);
            }
            break;
        }
        case '\\':
        case '{':
        case '}':
            add_char(&r, d);
            break;
        case '~':
            flush_bytes(&r);
            put_str(&r, "\xc2\xa0");
            break;
        case '_':
            flush_bytes(&r);
            put_str(&r, "-");
            break;
        case '-':
            break; /* optional hyphen */
        case '\n':
        case '\r':
            end_para(&r);
            break;
        case '*':
            break; /* \* outside a group start: ignore */
        case '|':
        case ':':
            break;
        case '\t':
            flush_bytes(&r);
            put_str(&r, "\t");
            break;
        default:
            break;
        }
    }
    flush_bytes(&r);
    if (b->st == RB_OK) {
        /* an unterminated row or cell, then the last paragraph */
        if (r.row_open)
            end_row(&r);
        if (r.cell.len) {
            (void)!rb_buf_append(&r.para, " ", r.para.len ? 1 : 0);
            (void)!rb_buf_append(&r.para, r.cell.data, r.cell.len);
        }
        r.intbl = false;
        end_para(&r);
        end_table(&r);
        if (r.title.len)
            rb__docb_set_title(b, r.title.data, r.title.len);
    }
    if (r.cd != (iconv_t)-1)
        iconv_close(r.cd);
    rb_buf_free(&r.para);
    rb_buf_free(&r.cell);
    rb_buf_free(&r.title);
    rb_buf_free(&r.name);
    free(r.stack);
    return b->st;
}
