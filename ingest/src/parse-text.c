/* Plain text and CSV: encoding detection (BOMs, UTF-8 validity, uchardet)
 * and conversion to UTF-8 with iconv; paragraphs; RFC 4180 CSV with
 * delimiter sniffing. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uchardet/uchardet.h>

#include "ingest-impl.h"

enum rb_status rb__to_utf8(const char *data, size_t len, const char *charset, size_t max_out,
                           char **out, size_t *out_len, const char **detected,
                           struct rb_errmsg *err)
{
    static char detected_buf[64];
    *out = NULL;
    *out_len = 0;
    const char *cs = charset;
    size_t skip = 0;
    if (!cs) {
        if (len >= 4 && memcmp(data, "\xff\xfe\0\0", 4) == 0)
            cs = "UTF-32LE", skip = 4;
        else if (len >= 4 && memcmp(data, "\0\0\xfe\xff", 4) == 0)
            cs = "UTF-32BE", skip = 4;
        else if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
            cs = "UTF-8", skip = 3;
        else if (len >= 2 && memcmp(data, "\xff\xfe", 2) == 0)
            cs = "UTF-16LE", skip = 2;
        else if (len >= 2 && memcmp(data, "\xfe\xff", 2) == 0)
            cs = "UTF-16BE", skip = 2;
        else if (rb_utf8_valid(data, len))
            cs = "UTF-8";
        else {
            uchardet_t ud = uchardet_new();
            if (ud) {
                /* A sample is enough and bounds the detector's time. */
                size_t sample = len < (1u << 20) ? len : (1u << 20);
                if (uchardet_handle_data(ud, data, sample) == 0) {
                    uchardet_data_end(ud);
                    const char *c = uchardet_get_charset(ud);
                    if (c && *c)
                        rb_strlcpy(detected_buf, c, sizeof detected_buf);
                    else
                        detected_buf[0] = '\0';
                }
                uchardet_delete(ud);
            }
            /* GB2312 detections are widened to GB18030 (a superset); unknown
             * 8-bit text falls back to Windows-1252, which maps every byte. */
            if (!detected_buf[0] || strcasecmp(detected_buf, "ASCII") == 0)
                cs = "WINDOWS-1252";
            else if (strcasecmp(detected_buf, "GB2312") == 0 || strcasecmp(detected_buf, "GBK") == 0)
                cs = "GB18030";
            else
                cs = detected_buf;
        }
    }
    if (detected)
        *detected = cs;
    data += skip;
    len -= skip;
    if (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "UTF8") == 0) {
        if (len > max_out)
            return err ? rb_errmsg_set(err, RB_ERR_TOO_LARGE, "text exceeds limit") : RB_ERR_TOO_LARGE;
        *out = rb_utf8_sanitize(data, len, out_len);
        return *out ? RB_OK : RB_ERR_NOMEM;
    }
    iconv_t cd = iconv_open("UTF-8", cs);
    if (cd == (iconv_t)-1)
        return err ? rb_errmsg_set(err, RB_ERR_ENCODING, "unsupported text encoding '%s'", cs)
                   : RB_ERR_ENCODING;
    struct rb_buf o;
    rb_buf_init(&o, max_out + 1);
    char *in = (char *)data;
    size_t in_left = len;
    char tmp[16384];
    enum rb_status st = RB_OK;
    size_t bad = 0;
    while (in_left > 0) {
        char *op = tmp;
        size_t o_left = sizeof tmp;
        size_t r = iconv(cd, &in, &in_left, &op, &o_left);
        if (rb_buf_append(&o, tmp, sizeof tmp - o_left) != RB_OK) {
            st = RB_ERR_TOO_LARGE;
            break;
        }
        if (r == (size_t)-1) {
            if (errno == E2BIG)
                continue;
            /* Invalid or truncated sequence: U+FFFD and skip one byte. */
            if (rb_buf_append(&o, "\xef\xbf\xbd", 3) != RB_OK) {
                st = RB_ERR_TOO_LARGE;
                break;
            }
            in++;
            in_left--;
            if (++bad > 1000 && bad > len / 10) {
                st = RB_ERR_ENCODING;
                break;
            }
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    iconv_close(cd);
    if (st != RB_OK) {
        rb_buf_free(&o);
        if (!err)
            return st;
        return st == RB_ERR_ENCODING
                   ? rb_errmsg_set(err, st, "text is not valid %s", cs)
                   : rb_errmsg_set(err, st, "decoded text exceeds limit");
    }
    if (rb_buf_append(&o, "", 0) != RB_OK) {
        rb_buf_free(&o);
        return RB_ERR_NOMEM;
    }
    *out_len = o.len;
    *out = rb_buf_steal(&o);
    /* iconv output is UTF-8, but sanitise anyway (e.g. surrogates from UTF-16). */
    if (!rb_utf8_valid(*out, *out_len)) {
        char *s = rb_utf8_sanitize(*out, *out_len, out_len);
        free(*out);
        *out = s;
        if (!s)
            return RB_ERR_NOMEM;
    }
    return RB_OK;
}

/* A line is blank when it has only whitespace. */
static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f')
            return false;
    return true;
}

static bool list_marker(const char *s, size_t n, size_t *skip)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i + 1 < n && (s[i] == '-' || s[i] == '*' || s[i] == '+') && s[i + 1] == ' ') {
        *skip = i + 2;
        return true;
    }
    if (i + 3 < n && memcmp(s + i, "\xe2\x80\xa2", 3) == 0) { /* • */
        *skip = i + 3;
        return true;
    }
    size_t d = i;
    while (d < n && d - i < 3 && s[d] >= '0' && s[d] <= '9')
        d++;
    if (d > i && d + 1 < n && (s[d] == '.' || s[d] == ')') && s[d + 1] == ' ') {
        *skip = i; /* keep the number: it is content */
        return true;
    }
    return false;
}

void rb__add_plain_paragraphs(struct rb__docb *b, const char *text, size_t len,
                              bool line_paragraphs)
{
    /* Paragraphs are separated by blank lines; when the text has no blank
     * lines at all (one paragraph per line, common in Chinese text), by line
     * breaks. Bulleted lines become list items. */
    size_t start = 0, i = 0;
    struct rb_buf para;
    rb_buf_init(&para, b->lim->max_text_bytes + 1);
    while (i <= len && b->st == RB_OK) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        const char *line = text + i;
        size_t ll = e - i;
        size_t skip;
        bool blank = blank_line(line, ll);
        bool item = !blank && list_marker(line, ll, &skip);
        if (blank || item || line_paragraphs) {
            if (para.len)
                rb__docb_add(b, RB_INGEST_BLOCK_PARAGRAPH, 0, para.data, para.len);
            rb_buf_reset(&para);
        }
        if (item) {
            /* continuation lines of the item are appended to it */
            if (rb_buf_append(&para, line + skip, ll - skip) != RB_OK)
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "paragraph too large");
            size_t f = e;
            while (f < len) {
                size_t g = f + 1, h = g;
                while (h < len && text[h] != '\n')
                    h++;
                if (g >= len || blank_line(text + g, h - g) || list_marker(text + g, h - g, &skip) ||
                    line_paragraphs || !(text[g] == ' ' || text[g] == '\t'))
                    break;
                if (rb_buf_append(&para, "\n", 1) != RB_OK ||
                    rb_buf_append(&para, text + g, h - g) != RB_OK)
                    rb__docb_fail(b, RB_ERR_TOO_LARGE, "paragraph too large");
                f = h;
            }
            rb__docb_add(b, RB_INGEST_BLOCK_LIST_ITEM, 1, para.data, para.len);
            rb_buf_reset(&para);
            e = f;
        } else if (!blank) {
            if ((para.len && rb_buf_append(&para, "\n", 1) != RB_OK) ||
                rb_buf_append(&para, line, ll) != RB_OK)
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "paragraph too large");
            if (line_paragraphs) {
                rb__docb_add(b, RB_INGEST_BLOCK_PARAGRAPH, 0, para.data, para.len);
                rb_buf_reset(&para);
            }
        }
        i = e + 1;
    }
    if (para.len)
        rb__docb_add(b, RB_INGEST_BLOCK_PARAGRAPH, 0, para.data, para.len);
    rb_buf_free(&para);
    (void)start;
}

enum rb_status rb__parse_text(struct rb__docb *b, const void *data, size_t len)
{
    char *u = NULL;
    size_t n = 0;
    const char *cs = NULL;
    enum rb_status st = rb__to_utf8(data, len, NULL, b->lim->max_text_bytes, &u, &n, &cs, b->err);
    if (st != RB_OK)
        return rb__docb_fail(b, st, "%s", b->err ? b->err->text : "cannot decode text");
    /* Blank-line separated text uses paragraphs; otherwise one per line. */
    bool has_blank = false;
    for (size_t i = 0; i + 1 < n && !has_blank; i++)
        if (u[i] == '\n') {
            size_t j = i + 1;
            while (j < n && (u[j] == ' ' || u[j] == '\t' || u[j] == '\r'))
                j++;
            if (j < n && u[j] == '\n')
                has_blank = true;
        }
    rb__add_plain_paragraphs(b, u, n, !has_blank);
    char *meta = rb_asprintf("{\"encoding\":\"%s\"}", cs ? cs : "UTF-8");
    rb__docb_set_metadata(b, meta);
    free(u);
    return b->st;
}

/* ===================================================================== CSV */

/* Fields per record for the first records under delimiter d (quotes respected). */
static double sniff_score(const char *s, size_t n, char d)
{
    int counts[16];
    int rec = 0, fields = 1;
    bool q = false;
    for (size_t i = 0; i < n && rec < 16; i++) {
        char c = s[i];
        if (c == '"')
            q = !q;
        else if (!q && c == d)
            fields++;
        else if (!q && c == '\n') {
            counts[rec++] = fields;
            fields = 1;
        }
    }
    if (rec < 16 && fields > 1)
        counts[rec++] = fields;
    if (rec == 0 || counts[0] < 2)
        return 0;
    int same = 0;
    for (int i = 0; i < rec; i++)
        same += counts[i] == counts[0];
    return (double)same / rec * 100 + counts[0];
}

enum rb_status rb__parse_csv(struct rb__docb *b, const void *data, size_t len)
{
    char *u = NULL;
    size_t n = 0;
    const char *cs = NULL;
    enum rb_status st = rb__to_utf8(data, len, NULL, b->lim->max_text_bytes, &u, &n, &cs, b->err);
    if (st != RB_OK)
        return rb__docb_fail(b, st, "%s", b->err ? b->err->text : "cannot decode CSV");
    size_t sample = n < 65536 ? n : 65536;
    char delim = ',';
    double best = sniff_score(u, sample, ',');
    const char cands[] = {'\t', ';', '|'};
    for (size_t i = 0; i < sizeof cands; i++) {
        double sc = sniff_score(u, sample, cands[i]);
        if (sc > best) {
            best = sc;
            delim = cands[i];
        }
    }
    struct rb_buf field;
    rb_buf_init(&field, b->lim->max_text_bytes + 1);
    rb__docb_table_begin(b);
    rb__docb_row_begin(b);
    size_t i = 0;
    bool row_has = false;
    while (i < n && b->st == RB_OK) {
        rb_buf_reset(&field);
        if (u[i] == '"') {
            i++;
            for (;;) {
                if (i >= n)
                    break; /* unterminated quote: take what there is */
                if (u[i] == '"') {
                    if (i + 1 < n && u[i + 1] == '"') {
                        if (rb_buf_append(&field, "\"", 1) != RB_OK)
                            break;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (rb_buf_append(&field, u + i, 1) != RB_OK)
                    break;
                i++;
            }
            /* junk after the closing quote up to the delimiter is kept */
            while (i < n && u[i] != delim && u[i] != '\n' && u[i] != '\r') {
                if (rb_buf_append(&field, u + i, 1) != RB_OK)
                    break;
                i++;
            }
        } else {
            size_t s = i;
            while (i < n && u[i] != delim && u[i] != '\n' && u[i] != '\r')
                i++;
            if (rb_buf_append(&field, u + s, i - s) != RB_OK)
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "CSV field too large");
        }
        rb__docb_cell(b, field.data ? field.data : "", field.len);
        row_has = true;
        if (i < n && u[i] == delim) {
            i++;
            if (i >= n)
                rb__docb_cell(b, "", 0);
            continue;
        }
        if (i < n && u[i] == '\r')
            i++;
        if (i < n && u[i] == '\n')
            i++;
        rb__docb_row_end(b);
        rb__docb_row_begin(b);
        row_has = false;
    }
    (void)row_has;
    rb__docb_table_end(b, 1);
    rb_buf_free(&field);
    char *meta = rb_asprintf("{\"encoding\":\"%s\",\"delimiter\":\"%s\"}", cs ? cs : "UTF-8",
                             delim == '\t' ? "\\t" : delim == ';' ? ";" : delim == '|' ? "|" : ",");
    rb__docb_set_metadata(b, meta);
    free(u);
    return b->st;
}
