/* Question/result tables for batch jobs: JSON Lines, CSV (RFC 4180) and XLSX
 * (read with libzip + libxml2, written with libxlsxwriter). */
#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xlsxwriter.h>
#include <zip.h>

/* libxlsxwriter's bundled BSD tree.h defines RB_MIN/RB_MAX (red-black trees);
 * ours (common.h) mean min/max. */
#undef RB_MIN
#undef RB_MAX

#include "answer-impl.h"

#define TABLE_MAX_FILE ((size_t)256 << 20)
#define TABLE_MAX_ROWS 1000000
#define TABLE_MAX_COLS 256

enum rb_answer_format rb_answer_format_from_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot)
        return RB_ANSWER_FORMAT_UNKNOWN;
    if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0)
        return RB_ANSWER_FORMAT_JSONL;
    if (strcasecmp(dot, ".csv") == 0)
        return RB_ANSWER_FORMAT_CSV;
    if (strcasecmp(dot, ".xlsx") == 0)
        return RB_ANSWER_FORMAT_XLSX;
    return RB_ANSWER_FORMAT_UNKNOWN;
}

void rb_answer_table_free(struct rb_answer_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_cols; i++)
        free(t->header[i]);
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cell[i]);
    free(t->header);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

const char *rb_answer_table_get(const struct rb_answer_table *t, size_t row, const char *column)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcasecmp(t->header[c], column) == 0) {
            const char *v = t->cell[row * t->n_cols + c];
            return v && *v ? v : NULL;
        }
    return NULL;
}

/* Rows are built as lists of (column index, value) and then laid out. */
struct builder {
    char **header;
    size_t n_cols;
    char ***rows; /* each row: n_cols slots (grown as columns appear) */
    size_t *row_cols;
    size_t n_rows, cap_rows;
};

static long col_index(struct builder *b, const char *name, bool add)
{
    for (size_t c = 0; c < b->n_cols; c++)
        if (strcmp(b->header[c], name) == 0)
            return (long)c;
    if (!add || b->n_cols >= TABLE_MAX_COLS)
        return -1;
    char **h = realloc(b->header, (b->n_cols + 1) * sizeof *h);
    if (!h)
        return -1;
    b->header = h;
    if (!(h[b->n_cols] = rb_strdup(name)))
        return -1;
    return (long)b->n_cols++;
}

static enum rb_status new_row(struct builder *b)
{
    if (b->n_rows >= TABLE_MAX_ROWS)
        return RB_ERR_TOO_LARGE;
    if (b->n_rows == b->cap_rows) {
        size_t cap = b->cap_rows ? b->cap_rows * 2 : 64;
        char ***r = realloc(b->rows, cap * sizeof *r);
        if (!r)
            return RB_ERR_NOMEM;
        b->rows = r;
        size_t *rc = realloc(b->row_cols, cap * sizeof *rc);
        if (!rc)
            return RB_ERR_NOMEM;
        b->row_cols = rc;
        b->cap_rows = cap;
    }
    b->rows[b->n_rows] = NULL;
    b->row_cols[b->n_rows] = 0;
    b->n_rows++;
    return RB_OK;
}

/* Sets cell (last row, column c), taking ownership of v. */
static enum rb_status set_cell(struct builder *b, size_t c, char *v)
{
    size_t r = b->n_rows - 1;
    if (c >= b->row_cols[r]) {
        char **cells = realloc(b->rows[r], (c + 1) * sizeof *cells);
        if (!cells) {
            free(v);
            return RB_ERR_NOMEM;
        }
        for (size_t k = b->row_cols[r]; k <= c; k++)
            cells[k] = NULL;
        b->rows[r] = cells;
        b->row_cols[r] = c + 1;
    }
    free(b->rows[r][c]);
    b->rows[r][c] = v;
    return RB_OK;
}

static void builder_free(struct builder *b)
{
    for (size_t r = 0; r < b->n_rows; r++) {
        for (size_t c = 0; c < b->row_cols[r]; c++)
            free(b->rows[r][c]);
        free(b->rows[r]);
    }
    for (size_t c = 0; c < b->n_cols; c++)
        free(b->header[c]);
    free(b->rows);
    free(b->row_cols);
    free(b->header);
}

static enum rb_status builder_finish(struct builder *b, struct rb_answer_table *t)
{
    size_t cells;
    if (!rb_size_mul(b->n_rows, b->n_cols ? b->n_cols : 1, &cells))
        return RB_ERR_TOO_LARGE;
    t->cell = rb_calloc_array(cells ? cells : 1, sizeof *t->cell);
    if (!t->cell)
        return RB_ERR_NOMEM;
    for (size_t r = 0; r < b->n_rows; r++)
        for (size_t c = 0; c < b->row_cols[r] && c < b->n_cols; c++) {
            t->cell[r * b->n_cols + c] = b->rows[r][c];
            b->rows[r][c] = NULL;
        }
    t->header = b->header;
    t->n_cols = b->n_cols;
    t->n_rows = b->n_rows;
    b->header = NULL;
    b->n_cols = 0;
    builder_free(b);
    return RB_OK;
}

/* ------------------------------------------------------------------ JSONL */

static enum rb_status read_jsonl(const char *data, size_t len, struct builder *b,
                                 struct rb_errmsg *err)
{
    size_t line_no = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        line_no++;
        size_t s = i;
        while (s < e && isspace((unsigned char)data[s]))
            s++;
        if (s < e) {
            cJSON *j = NULL;
            struct rb_errmsg je;
            if (rb_json_parse(data + s, e - s, 16, &j, &je) != RB_OK)
                return rb_errmsg_set(err, RB_ERR_FORMAT, "line %zu: %s", line_no, je.text);
            if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                return rb_errmsg_set(err, RB_ERR_FORMAT, "line %zu: not a JSON object", line_no);
            }
            enum rb_status st = new_row(b);
            const cJSON *it;
            cJSON_ArrayForEach(it, j)
            {
                if (st != RB_OK)
                    break;
                long c = col_index(b, it->string, true);
                if (c < 0) {
                    st = RB_ERR_TOO_LARGE;
                    break;
                }
                char *v = cJSON_IsString(it) ? rb_strdup(it->valuestring) : rb_json_print(it);
                if (!v) {
                    st = RB_ERR_NOMEM;
                    break;
                }
                st = set_cell(b, (size_t)c, v);
            }
            cJSON_Delete(j);
            if (st != RB_OK)
                return rb_errmsg_set(err, st, "line %zu: %s", line_no, rb_status_str(st));
        }
        i = e + 1;
    }
    return RB_OK;
}

/* -------------------------------------------------------------------- CSV */

static enum rb_status read_csv(const char *data, size_t len, struct builder *b,
                               struct rb_errmsg *err)
{
    size_t i = 0, line = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* Excel's BOM */
    bool header_done = false;
    size_t col = 0;
    struct rb_buf cell;
    rb_buf_init(&cell, 16 << 20);
    enum rb_status st = RB_OK;
    bool row_open = false;
    while (i <= len && st == RB_OK) {
        rb_buf_reset(&cell);
        st = rb_buf_append(&cell, "", 0);
        size_t start_line = line;
        if (i < len && data[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    st = rb_errmsg_set(err, RB_ERR_FORMAT,
                                       "line %zu: unterminated quoted field", start_line);
                    break;
                }
                if (data[i] == '"') {
                    if (i + 1 < len && data[i + 1] == '"') {
                        st = rb_buf_append(&cell, "\"", 1);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (data[i] == '\n')
                    line++;
                st = rb_buf_append(&cell, data + i, 1);
                i++;
                if (st != RB_OK)
                    break;
            }
            if (st != RB_OK)
                break;
            if (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "line %zu: text after a closing quote",
                                   line);
                break;
            }
        } else {
            size_t s = i;
            while (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r')
                i++;
            st = rb_buf_append(&cell, data + s, i - s);
        }
        if (st != RB_OK)
            break;
        bool end_row = i >= len || data[i] == '\n' || data[i] == '\r';
        bool empty_line = end_row && col == 0 && cell.len == 0;
        if (!empty_line) {
            if (!header_done) {
                char name[32];
                const char *nm = cell.data;
                if (!*nm) {
                    snprintf(name, sizeof name, "column%zu", col + 1);
                    nm = name;
                }
                if (col_index(b, nm, false) >= 0 || col_index(b, nm, true) < 0) {
                    st = rb_errmsg_set(err, RB_ERR_FORMAT, "line 1: duplicate or too many columns");
                    break;
                }
            } else {
                if (!row_open) {
                    if ((st = new_row(b)) != RB_OK)
                        break;
                    row_open = true;
                }
                if (col >= b->n_cols) {
                    st = rb_errmsg_set(err, RB_ERR_FORMAT, "line %zu: more fields than the header",
                                       line);
                    break;
                }
                char *v = rb_strdup(cell.data);
                if (!v || (st = set_cell(b, col, v)) != RB_OK) {
                    st = RB_ERR_NOMEM;
                    break;
                }
            }
            col++;
        }
        if (i >= len)
            break;
        if (data[i] == ',') {
            i++;
            continue;
        }
        /* end of record */
        if (data[i] == '\r')
            i++;
        if (i < len && data[i] == '\n')
            i++;
        line++;
        if (col > 0)
            header_done = true;
        col = 0;
        row_open = false;
    }
    rb_buf_free(&cell);
    if (st == RB_OK && !header_done && b->n_cols == 0)
        st = rb_errmsg_set(err, RB_ERR_FORMAT, "empty CSV file");
    return st;
}

/* ------------------------------------------------------------------- XLSX */

static char *zip_read(zip_t *z, const char *name, size_t *len, struct rb_errmsg *err)
{
    zip_stat_t stt;
    if (zip_stat(z, name, 0, &stt) != 0)
        return NULL;
    if (!(stt.valid & ZIP_STAT_SIZE) || stt.size > TABLE_MAX_FILE) {
        rb_errmsg_set(err, RB_ERR_TOO_LARGE, "%s is too large", name);
        return NULL;
    }
    zip_file_t *f = zip_fopen(z, name, 0);
    if (!f)
        return NULL;
    char *buf = malloc(stt.size + 1);
    zip_int64_t got = buf ? zip_fread(f, buf, stt.size) : -1;
    zip_fclose(f);
    if (got < 0 || (zip_uint64_t)got != stt.size) {
        free(buf);
        rb_errmsg_set(err, RB_ERR_CORRUPT, "%s: cannot be read from the archive", name);
        return NULL;
    }
    buf[stt.size] = '\0';
    *len = stt.size;
    return buf;
}

/* Concatenated text of the <t> descendants of n. */
static enum rb_status node_text(xmlNode *n, struct rb_buf *b)
{
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcmp(c->name, BAD_CAST "t") == 0) {
            xmlChar *s = xmlNodeGetContent(c);
            enum rb_status st = s ? rb_buf_append_str(b, (const char *)s) : RB_OK;
            xmlFree(s);
            if (st != RB_OK)
                return st;
        } else if (xmlStrcmp(c->name, BAD_CAST "rPh") != 0) {
            enum rb_status st = node_text(c, b);
            if (st != RB_OK)
                return st;
        }
    }
    return RB_OK;
}

static xmlDoc *parse_xml(const char *data, size_t len)
{
    return xmlReadMemory(data, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
}

/* "BC12" -> column 54 (0-based); -1 when malformed. */
static long ref_column(const char *ref)
{
    long c = 0;
    size_t k = 0;
    while (ref[k] >= 'A' && ref[k] <= 'Z' && k < 4)
        c = c * 26 + (ref[k++] - 'A' + 1);
    return k ? c - 1 : -1;
}

static enum rb_status read_xlsx(const char *path, struct builder *b, struct rb_errmsg *err)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z)
        return rb_errmsg_set(err, RB_ERR_FORMAT, "%s: not an XLSX (zip) file", path);
    enum rb_status st = RB_OK;
    char **shared = NULL;
    size_t n_shared = 0;
    xmlDoc *sdoc = NULL, *doc = NULL;
    size_t len = 0;
    char *ss = zip_read(z, "xl/sharedStrings.xml", &len, err);
    if (ss) {
        sdoc = parse_xml(ss, len);
        free(ss);
        if (!sdoc) {
            st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: malformed sharedStrings.xml", path);
            goto out;
        }
        xmlNode *root = xmlDocGetRootElement(sdoc);
        for (xmlNode *si = root ? root->children : NULL; si; si = si->next)
            if (si->type == XML_ELEMENT_NODE && xmlStrcmp(si->name, BAD_CAST "si") == 0)
                n_shared++;
        shared = rb_calloc_array(n_shared ? n_shared : 1, sizeof *shared);
        if (!shared) {
            st = RB_ERR_NOMEM;
            goto out;
        }
        size_t k = 0;
        for (xmlNode *si = root ? root->children : NULL; si; si = si->next) {
            if (si->type != XML_ELEMENT_NODE || xmlStrcmp(si->name, BAD_CAST "si") != 0)
                continue;
            struct rb_buf t;
            rb_buf_init(&t, 16 << 20);
            if ((st = node_text(si, &t)) != RB_OK || (st = rb_buf_append(&t, "", 0)) != RB_OK) {
                rb_buf_free(&t);
                goto out;
            }
            shared[k++] = rb_buf_steal(&t);
        }
    }
    char *sheet = zip_read(z, "xl/worksheets/sheet1.xml", &len, err);
    if (!sheet) {
        st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: no first worksheet (xl/worksheets/sheet1.xml)",
                           path);
        goto out;
    }
    doc = parse_xml(sheet, len);
    free(sheet);
    if (!doc) {
        st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: malformed sheet1.xml", path);
        goto out;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *data = NULL;
    for (xmlNode *c = root ? root->children : NULL; c && !data; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "sheetData") == 0)
            data = c;
    /* The header is the first of the first ten rows with the most cells: a
     * title row above the table (one merged cell) is skipped. */
    xmlNode *header_row = NULL;
    size_t most = 0, seen_rows = 0;
    for (xmlNode *row = data ? data->children : NULL; row && seen_rows < 10; row = row->next) {
        if (row->type != XML_ELEMENT_NODE || xmlStrcmp(row->name, BAD_CAST "row") != 0)
            continue;
        seen_rows++;
        size_t cells = 0;
        for (xmlNode *c = row->children; c; c = c->next)
            cells += c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST "c") == 0;
        if (cells > most) {
            most = cells;
            header_row = row;
        }
    }
    bool header = false;
    for (xmlNode *row = header_row; row && st == RB_OK; row = row->next) {
        if (row->type != XML_ELEMENT_NODE || xmlStrcmp(row->name, BAD_CAST "row") != 0)
            continue;
        header = row == header_row;
        bool any = false;
        long next_col = 0;
        for (xmlNode *c = row->children; c && st == RB_OK; c = c->next) {
            if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST "c") != 0)
                continue;
            xmlChar *ref = xmlGetProp(c, BAD_CAST "r");
            xmlChar *type = xmlGetProp(c, BAD_CAST "t");
            long col = ref ? ref_column((const char *)ref) : next_col;
            xmlFree(ref);
            if (col < 0 || col >= TABLE_MAX_COLS) {
                xmlFree(type);
                st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: bad cell reference", path);
                break;
            }
            next_col = col + 1;
            struct rb_buf v;
            rb_buf_init(&v, 16 << 20);
            st = rb_buf_append(&v, "", 0);
            if (type && xmlStrcmp(type, BAD_CAST "inlineStr") == 0) {
                for (xmlNode *is = c->children; is && st == RB_OK; is = is->next)
                    if (is->type == XML_ELEMENT_NODE && xmlStrcmp(is->name, BAD_CAST "is") == 0)
                        st = node_text(is, &v);
            } else {
                for (xmlNode *vn = c->children; vn && st == RB_OK; vn = vn->next) {
                    if (vn->type != XML_ELEMENT_NODE || xmlStrcmp(vn->name, BAD_CAST "v") != 0)
                        continue;
                    xmlChar *s = xmlNodeGetContent(vn);
                    if (type && xmlStrcmp(type, BAD_CAST "s") == 0) {
                        int64_t idx = -1;
                        if (!s || rb_parse_i64((const char *)s, &idx) != RB_OK || idx < 0 ||
                            (size_t)idx >= n_shared)
                            st = rb_errmsg_set(err, RB_ERR_FORMAT,
                                               "%s: shared string index out of range", path);
                        else
                            st = rb_buf_append_str(&v, shared[idx]);
                    } else if (s) {
                        st = rb_buf_append_str(&v, (const char *)s);
                    }
                    xmlFree(s);
                }
            }
            xmlFree(type);
            if (st == RB_OK) {
                if (header) {
                    char name[32];
                    const char *nm = v.data;
                    if (!*nm) {
                        snprintf(name, sizeof name, "column%ld", col + 1);
                        nm = name;
                    }
                    while (st == RB_OK && (long)b->n_cols < col) {
                        char fill[32];
                        snprintf(fill, sizeof fill, "column%zu", b->n_cols + 1);
                        if (col_index(b, fill, true) < 0)
                            st = RB_ERR_NOMEM;
                    }
                    if (st == RB_OK && col_index(b, nm, true) < 0)
                        st = rb_errmsg_set(err, RB_ERR_FORMAT, "%s: duplicate header %s", path, nm);
                } else if (v.len > 0) {
                    if (!any && (st = new_row(b)) != RB_OK) {
                        rb_buf_free(&v);
                        break;
                    }
                    any = true;
                    if (col < (long)b->n_cols)
                        st = set_cell(b, (size_t)col, rb_buf_steal(&v));
                }
            }
            rb_buf_free(&v);
        }
    }
out:
    for (size_t k = 0; k < n_shared && shared; k++)
        free(shared[k]);
    free(shared);
    xmlFreeDoc(sdoc);
    xmlFreeDoc(doc);
    zip_close(z);
    return st;
}

enum rb_status rb_answer_table_read(const char *path, struct rb_answer_table *out,
                                    struct rb_errmsg *err)
{
    memset(out, 0, sizeof *out);
    enum rb_answer_format f = rb_answer_format_from_path(path);
    if (f == RB_ANSWER_FORMAT_UNKNOWN)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s: unknown table format (expected .jsonl, .csv or .xlsx)", path);
    struct builder b = {0};
    enum rb_status st;
    if (f == RB_ANSWER_FORMAT_XLSX) {
        st = read_xlsx(path, &b, err);
    } else {
        char *data = NULL;
        size_t len = 0;
        st = rb_fs_read_file(path, TABLE_MAX_FILE, &data, &len);
        if (st != RB_OK) {
            builder_free(&b);
            return rb_errmsg_set(err, st, "%s: %s", path, rb_status_str(st));
        }
        if (!rb_utf8_valid(data, len)) {
            free(data);
            builder_free(&b);
            return rb_errmsg_set(err, RB_ERR_ENCODING, "%s: not UTF-8 text", path);
        }
        st = f == RB_ANSWER_FORMAT_JSONL ? read_jsonl(data, len, &b, err)
                                         : read_csv(data, len, &b, err);
        free(data);
    }
    if (st == RB_OK)
        st = builder_finish(&b, out);
    else
        builder_free(&b);
    return st;
}

/* ----------------------------------------------------------------- writing */

static enum rb_status csv_field(struct rb_buf *b, const char *v)
{
    if (!v)
        v = "";
    bool quote = strpbrk(v, ",\"\r\n") != NULL || (*v && (isspace((unsigned char)*v)));
    /* Cells starting with = + - @ are formulas in spreadsheets: prefix a quote
     * so a document's text cannot inject one (CSV injection). */
    bool formula = *v == '=' || *v == '+' || *v == '-' || *v == '@';
    enum rb_status st = RB_OK;
    if (quote || formula)
        st = rb_buf_append(b, "\"", 1);
    if (st == RB_OK && formula)
        st = rb_buf_append(b, "'", 1);
    for (const char *p = v; *p && st == RB_OK; p++)
        st = *p == '"' ? rb_buf_append(b, "\"\"", 2) : rb_buf_append(b, p, 1);
    if (st == RB_OK && (quote || formula))
        st = rb_buf_append(b, "\"", 1);
    return st;
}

enum rb_status rb_answer_table_write(const char *path, const struct rb_answer_table *t,
                                     struct rb_errmsg *err)
{
    enum rb_answer_format f = rb_answer_format_from_path(path);
    if (f == RB_ANSWER_FORMAT_UNKNOWN)
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "%s: unknown table format (expected .jsonl, .csv or .xlsx)", path);
    if (f == RB_ANSWER_FORMAT_XLSX) {
        char *tmp = rb_asprintf("%s.tmp.%d", path, (int)getpid());
        if (!tmp)
            return RB_ERR_NOMEM;
        lxw_workbook *wb = workbook_new(tmp);
        if (!wb) {
            free(tmp);
            return rb_errmsg_set(err, RB_ERR_IO, "%s: cannot create workbook", path);
        }
        lxw_worksheet *ws = workbook_add_worksheet(wb, "results");
        lxw_format *bold = workbook_add_format(wb);
        format_set_bold(bold);
        lxw_format *wrap = workbook_add_format(wb);
        format_set_text_wrap(wrap);
        for (size_t c = 0; c < t->n_cols; c++)
            worksheet_write_string(ws, 0, (lxw_col_t)c, t->header[c], bold);
        for (size_t r = 0; r < t->n_rows; r++)
            for (size_t c = 0; c < t->n_cols; c++) {
                const char *v = t->cell[r * t->n_cols + c];
                if (!v || !*v)
                    continue;
                /* Excel's cell limit is 32 767 characters */
                char *cut = NULL;
                if (strlen(v) > 32000)
                    v = cut = rb_strndup(v, rb_utf8_truncate(v, strlen(v), 32000));
                if (v)
                    worksheet_write_string(ws, (lxw_row_t)(r + 1), (lxw_col_t)c, v, wrap);
                free(cut);
            }
        worksheet_freeze_panes(ws, 1, 0);
        lxw_error e = workbook_close(wb);
        if (e != LXW_NO_ERROR) {
            unlink(tmp);
            free(tmp);
            return rb_errmsg_set(err, RB_ERR_IO, "%s: %s", path, lxw_strerror(e));
        }
        enum rb_status st = rename(tmp, path) == 0 ? rb_fs_sync_parent(path) : RB_ERR_IO;
        if (st != RB_OK)
            unlink(tmp);
        free(tmp);
        return st == RB_OK ? RB_OK : rb_errmsg_set(err, st, "%s: cannot write", path);
    }
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = rb_buf_append(&b, "", 0);
    if (f == RB_ANSWER_FORMAT_CSV) {
        for (size_t c = 0; c < t->n_cols && st == RB_OK; c++) {
            st = csv_field(&b, t->header[c]);
            if (st == RB_OK)
                st = rb_buf_append_str(&b, c + 1 < t->n_cols ? "," : "\r\n");
        }
        for (size_t r = 0; r < t->n_rows && st == RB_OK; r++)
            for (size_t c = 0; c < t->n_cols && st == RB_OK; c++) {
                st = csv_field(&b, t->cell[r * t->n_cols + c]);
                if (st == RB_OK)
                    st = rb_buf_append_str(&b, c + 1 < t->n_cols ? "," : "\r\n");
            }
    } else {
        for (size_t r = 0; r < t->n_rows && st == RB_OK; r++) {
            cJSON *o = cJSON_CreateObject();
            for (size_t c = 0; c < t->n_cols; c++) {
                const char *v = t->cell[r * t->n_cols + c];
                if (!v)
                    continue;
                /* JSON-valued columns (citations, refused) go in as JSON */
                cJSON *j = NULL;
                if ((*v == '[' || *v == '{' || strcmp(v, "true") == 0 ||
                     strcmp(v, "false") == 0) &&
                    (j = cJSON_Parse(v)) != NULL)
                    cJSON_AddItemToObject(o, t->header[c], j);
                else
                    cJSON_AddStringToObject(o, t->header[c], v);
            }
            char *line = rb_json_print(o);
            cJSON_Delete(o);
            st = line ? rb_buf_printf(&b, "%s\n", line) : RB_ERR_NOMEM;
            free(line);
        }
    }
    if (st == RB_OK)
        st = rb_fs_write_atomic(path, b.data, b.len);
    rb_buf_free(&b);
    return st == RB_OK ? RB_OK : rb_errmsg_set(err, st, "%s: cannot write: %s", path,
                                                rb_status_str(st));
}
