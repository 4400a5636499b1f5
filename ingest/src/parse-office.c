/* Office Open XML (DOCX, XLSX, PPTX) and OpenDocument text (ODT): ZIP
 * containers read with libzip, parts parsed with libxml2 (no network, no
 * entity substitution, libxml2's default depth limit). The container is
 * checked before anything is inflated: total declared size and per-member
 * compression ratio are bounded, so a zip bomb is refused up front, and each
 * read is capped at its declared size so a lying header cannot overrun. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <zip.h>

#include "ingest-impl.h"

/* ================================================================ container */

struct box {
    zip_t *za;
    struct rb__docb *b;
    size_t inflated; /* bytes read so far */
};

static enum rb_status box_open(struct box *x, struct rb__docb *b, const void *data, size_t len,
                               const char *what)
{
    memset(x, 0, sizeof *x);
    x->b = b;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
    }
    x->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!x->za) {
        zip_source_free(src);
        /* Encrypted OOXML (password-protected) is an OLE compound file, not a ZIP. */
        if (len >= 8 && memcmp(data, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8) == 0) {
            zip_error_fini(&ze);
            return rb__docb_fail(b, RB_ERR_DENIED,
                                 "%s is password-protected (encrypted OLE container)", what);
        }
        enum rb_status st = rb__docb_fail(b, RB_ERR_PARSE, "%s: not a valid ZIP container (%s)",
                                          what, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    zip_int64_t n = zip_get_num_entries(x->za, 0);
    if (n > 100000)
        return rb__docb_fail(b, RB_ERR_TOO_LARGE, "%s: ZIP has %lld members", what, (long long)n);
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t s;
        if (zip_stat_index(x->za, (zip_uint64_t)i, 0, &s) != 0)
            continue;
        if ((s.valid & ZIP_STAT_ENCRYPTION_METHOD) && s.encryption_method != ZIP_EM_NONE)
            return rb__docb_fail(b, RB_ERR_DENIED, "%s: ZIP member %s is encrypted", what,
                                 s.name ? s.name : "?");
        if (!(s.valid & ZIP_STAT_SIZE))
            continue;
        total += s.size;
        if (total > b->lim->max_unzipped_bytes)
            return rb__docb_fail(b, RB_ERR_TOO_LARGE,
                                 "%s: ZIP would inflate to more than %zu MiB (zip bomb?)", what,
                                 b->lim->max_unzipped_bytes >> 20);
        if ((s.valid & ZIP_STAT_COMP_SIZE) && s.size > (1u << 20) &&
            (double)s.size > b->lim->max_zip_ratio * (double)(s.comp_size ? s.comp_size : 1))
            return rb__docb_fail(b, RB_ERR_TOO_LARGE,
                                 "%s: ZIP member %s has compression ratio %.0f:1 (zip bomb?)",
                                 what, s.name ? s.name : "?",
                                 (double)s.size / (double)(s.comp_size ? s.comp_size : 1));
    }
    return RB_OK;
}

static void box_close(struct box *x)
{
    if (x->za)
        zip_discard(x->za);
    x->za = NULL;
}

/* Reads member `name` (case-insensitive). RB_ERR_NOT_FOUND when absent. */
static enum rb_status box_read(struct box *x, const char *name, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (name[0] == '/')
        name++;
    zip_int64_t idx = zip_name_locate(x->za, name, ZIP_FL_NOCASE);
    if (idx < 0)
        return RB_ERR_NOT_FOUND;
    zip_stat_t s;
    if (zip_stat_index(x->za, (zip_uint64_t)idx, 0, &s) != 0 || !(s.valid & ZIP_STAT_SIZE))
        return rb__docb_fail(x->b, RB_ERR_PARSE, "ZIP member %s unreadable", name);
    if (s.size > x->b->lim->max_unzipped_bytes - x->inflated)
        return rb__docb_fail(x->b, RB_ERR_TOO_LARGE, "ZIP member %s too large", name);
    zip_file_t *f = zip_fopen_index(x->za, (zip_uint64_t)idx, 0);
    if (!f)
        return rb__docb_fail(x->b, RB_ERR_PARSE, "ZIP member %s: %s", name,
                             zip_strerror(x->za));
    size_t cap = (size_t)s.size;
    char *buf = malloc(cap + 1);
    if (!buf) {
        zip_fclose(f);
        return rb__docb_fail(x->b, RB_ERR_NOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < cap) {
        zip_int64_t r = zip_fread(f, buf + got, cap - got);
        if (r < 0) {
            zip_fclose(f);
            free(buf);
            return rb__docb_fail(x->b, RB_ERR_PARSE, "ZIP member %s is corrupt", name);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    zip_fclose(f);
    buf[got] = '\0';
    x->inflated += got;
    *out = buf;
    *out_len = got;
    return RB_OK;
}

static xmlDocPtr box_xml(struct box *x, const char *name, bool required)
{
    char *data;
    size_t len;
    enum rb_status st = box_read(x, name, &data, &len);
    if (st == RB_ERR_NOT_FOUND) {
        if (required)
            rb__docb_fail(x->b, RB_ERR_PARSE, "missing part %s", name);
        return NULL;
    }
    if (st != RB_OK)
        return NULL;
    if (len > INT32_MAX) {
        free(data);
        rb__docb_fail(x->b, RB_ERR_TOO_LARGE, "part %s too large", name);
        return NULL;
    }
    xmlDocPtr doc = xmlReadMemory(data, (int)len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc && required)
        rb__docb_fail(x->b, RB_ERR_PARSE, "part %s is not well-formed XML", name);
    return doc;
}

/* ================================================================ XML helpers */

static bool is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *local)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local))
            return c;
    return NULL;
}

/* Attribute by local name, any namespace. Borrowed, valid while the doc lives. */
static const char *attr(const xmlNode *n, const char *local)
{
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next)
        if (strcmp((const char *)a->name, local) == 0 && a->children &&
            a->children->type == XML_TEXT_NODE)
            return (const char *)a->children->content;
    return NULL;
}

/* A namespaced attribute ("r:id"): local name with any non-null namespace. */
static const char *attr_ns(const xmlNode *n, const char *local)
{
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next)
        if (a->ns && strcmp((const char *)a->name, local) == 0 && a->children &&
            a->children->type == XML_TEXT_NODE)
            return (const char *)a->children->content;
    return NULL;
}

/* Text under n: text nodes, tab/br/line-break/s elements; skips deleted
 * text, field instructions and phonetic runs. Paragraphs nested in n are
 * separated by a space. */
static void gather(const xmlNode *n, struct rb_buf *o, int depth)
{
    if (depth > 256)
        return;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content)
                (void)!rb_buf_append_str(o, (const char *)c->content);
            continue;
        }
        if (c->type != XML_ELEMENT_NODE)
            continue;
        const char *nm = (const char *)c->name;
        if (!strcmp(nm, "delText") || !strcmp(nm, "instrText") || !strcmp(nm, "rPh") ||
            !strcmp(nm, "Fallback") || !strcmp(nm, "annotation"))
            continue;
        if (!strcmp(nm, "tab"))
            (void)!rb_buf_append(o, "\t", 1);
        else if (!strcmp(nm, "br") || !strcmp(nm, "cr") || !strcmp(nm, "line-break"))
            (void)!rb_buf_append(o, "\n", 1);
        else if (!strcmp(nm, "s") && c->ns && c->ns->prefix && !strcmp((const char *)c->ns->prefix, "text")) {
            const char *cnt = attr(c, "c");
            int k = cnt ? atoi(cnt) : 1;
            for (int i = 0; i < k && i < 100; i++)
                (void)!rb_buf_append(o, " ", 1);
        } else {
            if ((!strcmp(nm, "p") || !strcmp(nm, "h")) && o->len)
                (void)!rb_buf_append(o, " ", 1);
            gather(c, o, depth + 1);
        }
    }
}

/* Relationship id -> target path resolved against base_dir ("word/", "xl/"). */
static char *rel_target(struct box *x, const char *rels_name, const char *base_dir, const char *id)
{
    xmlDocPtr d = box_xml(x, rels_name, false);
    if (!d)
        return NULL;
    char *out = NULL;
    for (const xmlNode *r = xmlDocGetRootElement(d)->children; r && !out; r = r->next) {
        const char *rid = attr(r, "Id"), *target = attr(r, "Target");
        if (is(r, "Relationship") && rid && target && !strcmp(rid, id))
            out = target[0] == '/' ? rb_strdup(target + 1) : rb_asprintf("%s%s", base_dir, target);
    }
    xmlFreeDoc(d);
    return out;
}

/* ====================================================================== DOCX */

struct style {
    char *id;
    int heading; /* 0 or 1..9 */
    bool list;
    bool title;
};

static int heading_from_name(const char *name)
{
    if (!name)
        return 0;
    if (!strncasecmp(name, "heading", 7)) {
        const char *p = name + 7;
        while (*p == ' ')
            p++;
        if (*p >= '1' && *p <= '9')
            return *p - '0';
    }
    return 0;
}

static struct style *docx_styles(struct box *x, size_t *n)
{
    *n = 0;
    xmlDocPtr d = box_xml(x, "word/styles.xml", false);
    if (!d)
        return NULL;
    size_t cap = 0;
    struct style *s = NULL;
    for (const xmlNode *c = xmlDocGetRootElement(d)->children; c; c = c->next) {
        if (!is(c, "style"))
            continue;
        const char *id = attr(c, "styleId");
        const char *name = attr(child(c, "name"), "val");
        const xmlNode *ppr = child(c, "pPr");
        const char *outline = attr(child(ppr, "outlineLvl"), "val");
        int h = heading_from_name(name);
        if (!h)
            h = heading_from_name(id);
        if (!h && outline && *outline >= '0' && *outline <= '8')
            h = *outline - '0' + 1;
        bool title = name && !strcasecmp(name, "Title");
        bool list = (name && strcasestr(name, "list")) || child(ppr, "numPr");
        if (!id || (!h && !title && !list))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct style *ns = realloc(s, cap * sizeof *s);
            if (!ns)
                break;
            s = ns;
        }
        s[*n].id = rb_strdup(id);
        s[*n].heading = title ? 1 : h;
        s[*n].list = list && !h;
        s[*n].title = title;
        (*n)++;
    }
    xmlFreeDoc(d);
    return s;
}

struct docx {
    struct rb__docb *b;
    struct style *styles;
    size_t n_styles;
    struct rb_buf t;
    bool page_break; /* a break was seen: the next block starts a new page */
};

static void docx_breaks(struct docx *dx, const xmlNode *n, int depth)
{
    if (depth > 64)
        return;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (is(c, "lastRenderedPageBreak"))
            dx->page_break = true;
        else if (is(c, "br") && attr(c, "type") && !strcmp(attr(c, "type"), "page"))
            dx->page_break = true;
        else if (c->type == XML_ELEMENT_NODE && !is(c, "txbxContent"))
            docx_breaks(dx, c, depth + 1);
    }
}

static void docx_paragraph(struct docx *dx, const xmlNode *p)
{
    struct rb__docb *b = dx->b;
    bool had_break_before = dx->page_break;
    dx->page_break = false;
    docx_breaks(dx, p, 0);
    /* A break inside the paragraph: most of the text is on the next page when
     * the break comes first (lastRenderedPageBreak usually leads the run). */
    if (had_break_before || dx->page_break) {
        rb__docb_page(b);
        dx->page_break = false;
    }
    const xmlNode *ppr = child(p, "pPr");
    const char *sid = attr(child(ppr, "pStyle"), "val");
    int heading = 0, list = 0;
    bool title = false;
    for (size_t i = 0; sid && i < dx->n_styles; i++)
        if (!strcmp(dx->styles[i].id, sid)) {
            heading = dx->styles[i].heading;
            list = dx->styles[i].list ? 1 : 0;
            title = dx->styles[i].title;
        }
    if (!heading && sid)
        heading = heading_from_name(sid);
    const char *outline = attr(child(ppr, "outlineLvl"), "val");
    if (!heading && outline && *outline >= '0' && *outline <= '8')
        heading = *outline - '0' + 1;
    const xmlNode *num = child(ppr, "numPr");
    if (num && !heading) {
        const char *ilvl = attr(child(num, "ilvl"), "val");
        list = 1 + (ilvl ? atoi(ilvl) : 0);
        if (list < 1 || list > 9)
            list = 1;
    }
    rb_buf_reset(&dx->t);
    gather(p, &dx->t, 0);
    if (title && !b->title)
        rb__docb_set_title(b, dx->t.data, dx->t.len);
    rb__docb_add(b,
                 heading ? RB_INGEST_BLOCK_HEADING
                         : list ? RB_INGEST_BLOCK_LIST_ITEM : RB_INGEST_BLOCK_PARAGRAPH,
                 heading ? heading : list, dx->t.data, dx->t.len);
}

static void docx_table(struct docx *dx, const xmlNode *tbl, int depth)
{
    struct rb__docb *b = dx->b;
    rb__docb_table_begin(b);
    for (const xmlNode *tr = tbl->children; tr; tr = tr->next) {
        if (!is(tr, "tr"))
            continue;
        docx_breaks(dx, tr, 0);
        rb__docb_row_begin(b);
        for (const xmlNode *tc = tr->children; tc; tc = tc->next) {
            if (!is(tc, "tc"))
                continue;
            rb_buf_reset(&dx->t);
            gather(tc, &dx->t, depth + 1);
            rb__docb_cell(b, dx->t.data ? dx->t.data : "", dx->t.len);
        }
        rb__docb_row_end(b);
    }
    rb__docb_table_end(b, 1);
}

static void docx_body(struct docx *dx, const xmlNode *body, int depth)
{
    if (depth > dx->b->lim->max_depth) {
        rb__docb_fail(dx->b, RB_ERR_TOO_LARGE, "DOCX nesting too deep");
        return;
    }
    for (const xmlNode *c = body->children; c && dx->b->st == RB_OK; c = c->next) {
        if (is(c, "p"))
            docx_paragraph(dx, c);
        else if (is(c, "tbl"))
            docx_table(dx, c, depth + 1);
        else if (is(c, "sdt") || is(c, "sdtContent") || is(c, "customXml") || is(c, "ins"))
            docx_body(dx, c, depth + 1);
    }
}

enum rb_status rb__parse_docx(struct rb__docb *b, const void *data, size_t len)
{
    struct box x;
    if (box_open(&x, b, data, len, "DOCX") != RB_OK) {
        box_close(&x);
        return b->st;
    }
    struct docx dx = {.b = b};
    rb_buf_init(&dx.t, b->lim->max_text_bytes + 1);
    dx.styles = docx_styles(&x, &dx.n_styles);
    xmlDocPtr d = box_xml(&x, "word/document.xml", true);
    if (d) {
        const xmlNode *body = child(xmlDocGetRootElement(d), "body");
        rb__docb_page(b);
        if (body)
            docx_body(&dx, body, 0);
        xmlFreeDoc(d);
    }
    for (size_t i = 0; i < dx.n_styles; i++)
        free(dx.styles[i].id);
    free(dx.styles);
    rb_buf_free(&dx.t);
    box_close(&x);
    return b->st;
}

/* ====================================================================== XLSX */

struct strings {
    char **s;
    size_t n;
};

static void shared_strings(struct box *x, struct strings *ss)
{
    ss->s = NULL;
    ss->n = 0;
    xmlDocPtr d = box_xml(x, "xl/sharedStrings.xml", false);
    if (!d)
        return;
    size_t cap = 0;
    struct rb_buf t;
    rb_buf_init(&t, x->b->lim->max_text_bytes + 1);
    for (const xmlNode *si = xmlDocGetRootElement(d)->children; si; si = si->next) {
        if (!is(si, "si"))
            continue;
        if (ss->n == cap) {
            cap = cap ? cap * 2 : 256;
            char **ns = rb_malloc_array(cap, sizeof *ns);
            if (!ns)
                break;
            if (ss->s)
                memcpy(ns, ss->s, ss->n * sizeof *ns);
            free(ss->s);
            ss->s = ns;
        }
        rb_buf_reset(&t);
        gather(si, &t, 0);
        ss->s[ss->n++] = rb_strdup(t.data ? t.data : "");
    }
    rb_buf_free(&t);
    xmlFreeDoc(d);
}

/* "BC12" -> column index 54 (0-based); -1 if absent. */
static long column_of(const char *ref)
{
    long col = 0;
    int letters = 0;
    for (; ref && *ref >= 'A' && *ref <= 'Z' && letters < 4; ref++, letters++)
        col = col * 26 + (*ref - 'A' + 1);
    return letters ? col - 1 : -1;
}

static void xlsx_sheet(struct box *x, const char *path, const char *name, struct strings *ss)
{
    struct rb__docb *b = x->b;
    xmlDocPtr d = box_xml(x, path, false);
    if (!d) {
        RB_WARN("ingest", "XLSX sheet %s (%s) missing or unreadable", name, path);
        return;
    }
    const xmlNode *data = child(xmlDocGetRootElement(d), "sheetData");
    if (!data || !child(data, "row")) {
        xmlFreeDoc(d);
        return; /* empty sheet */
    }
    rb__docb_page(b);
    rb__docb_add(b, RB_INGEST_BLOCK_HEADING, 1, name, strlen(name));
    rb__docb_table_begin(b);
    struct rb_buf t;
    rb_buf_init(&t, b->lim->max_text_bytes + 1);
    for (const xmlNode *row = data->children; row && b->st == RB_OK; row = row->next) {
        if (!is(row, "row"))
            continue;
        rb__docb_row_begin(b);
        long next_col = 0;
        for (const xmlNode *c = row->children; c; c = c->next) {
            if (!is(c, "c"))
                continue;
            long col = column_of(attr(c, "r"));
            /* empty cells between two filled ones keep the grid (bounded) */
            for (; col >= 0 && next_col < col && col - next_col < 64; next_col++)
                rb__docb_cell(b, "", 0);
            next_col = (col >= 0 ? col : next_col) + 1;
            const char *type = attr(c, "t");
            rb_buf_reset(&t);
            const xmlNode *v = child(c, "v");
            if (type && !strcmp(type, "s")) {
                char *vs = v ? (char *)xmlNodeGetContent(v) : NULL;
                long i = vs ? strtol(vs, NULL, 10) : -1;
                if (i >= 0 && (size_t)i < ss->n)
                    (void)!rb_buf_append_str(&t, ss->s[i]);
                xmlFree(vs);
            } else if (type && !strcmp(type, "inlineStr")) {
                const xmlNode *is_ = child(c, "is");
                if (is_)
                    gather(is_, &t, 0);
            } else if (type && !strcmp(type, "b")) {
                char *vs = v ? (char *)xmlNodeGetContent(v) : NULL;
                (void)!rb_buf_append_str(&t, vs && vs[0] == '1' ? "TRUE" : "FALSE");
                xmlFree(vs);
            } else if (v) {
                gather(v, &t, 0);
            }
            rb__docb_cell(b, t.data ? t.data : "", t.len);
        }
        rb__docb_row_end(b);
    }
    rb__docb_table_end(b, 1);
    rb_buf_free(&t);
    xmlFreeDoc(d);
}

enum rb_status rb__parse_xlsx(struct rb__docb *b, const void *data, size_t len)
{
    struct box x;
    if (box_open(&x, b, data, len, "XLSX") != RB_OK) {
        box_close(&x);
        return b->st;
    }
    struct strings ss;
    shared_strings(&x, &ss);
    xmlDocPtr wb = box_xml(&x, "xl/workbook.xml", true);
    struct rb_buf names;
    rb_buf_init(&names, 1 << 20);
    (void)!rb_buf_append(&names, "{\"sheets\":[", 11);
    int count = 0;
    if (wb) {
        const xmlNode *sheets = child(xmlDocGetRootElement(wb), "sheets");
        for (const xmlNode *s = sheets ? sheets->children : NULL; s && b->st == RB_OK; s = s->next) {
            if (!is(s, "sheet"))
                continue;
            if (count >= b->lim->max_pages) {
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "workbook has more than %d sheets",
                              b->lim->max_pages);
                break;
            }
            const char *name = attr(s, "name");
            const char *rid = attr_ns(s, "id");
            char *path = rid ? rel_target(&x, "xl/_rels/workbook.xml.rels", "xl/", rid) : NULL;
            if (!path) {
                const char *sid = attr(s, "sheetId");
                path = rb_asprintf("xl/worksheets/sheet%s.xml", sid ? sid : "1");
            }
            if (path) {
                xlsx_sheet(&x, path, name ? name : "Sheet", &ss);
                cJSON *js = cJSON_CreateString(name ? name : "");
                char *q = js ? cJSON_PrintUnformatted(js) : NULL;
                if (q)
                    (void)!rb_buf_printf(&names, "%s%s", count ? "," : "", q);
                free(q);
                cJSON_Delete(js);
                count++;
            }
            free(path);
        }
        xmlFreeDoc(wb);
    }
    (void)!rb_buf_append(&names, "]}", 2);
    rb__docb_set_metadata(b, rb_buf_steal(&names));
    for (size_t i = 0; i < ss.n; i++)
        free(ss.s[i]);
    free(ss.s);
    box_close(&x);
    return b->st;
}

/* ====================================================================== PPTX */

static void pptx_shapes(struct box *x, const xmlNode *tree, struct rb_buf *t, int depth)
{
    struct rb__docb *b = x->b;
    if (depth > 64) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "PPTX shape nesting too deep");
        return;
    }
    for (const xmlNode *sp = tree->children; sp && b->st == RB_OK; sp = sp->next) {
        if (is(sp, "grpSp")) {
            pptx_shapes(x, sp, t, depth + 1);
        } else if (is(sp, "sp")) {
            const xmlNode *nv = child(sp, "nvSpPr");
            const char *ph = attr(child(child(nv, "nvPr"), "ph"), "type");
            bool title = ph && (!strcmp(ph, "title") || !strcmp(ph, "ctrTitle"));
            if (ph && (!strcmp(ph, "sldNum") || !strcmp(ph, "dt") || !strcmp(ph, "ftr")))
                continue;
            const xmlNode *body = child(sp, "txBody");
            if (!body)
                continue;
            if (title) {
                rb_buf_reset(t);
                gather(body, t, 0);
                rb__docb_add(b, RB_INGEST_BLOCK_HEADING, 1, t->data, t->len);
                continue;
            }
            for (const xmlNode *p = body->children; p; p = p->next) {
                if (!is(p, "p"))
                    continue;
                const xmlNode *ppr = child(p, "pPr");
                const char *lvl = attr(ppr, "lvl");
                bool bullet = child(ppr, "buChar") || child(ppr, "buAutoNum") || lvl;
                rb_buf_reset(t);
                gather(p, t, 0);
                rb__docb_add(b, bullet ? RB_INGEST_BLOCK_LIST_ITEM : RB_INGEST_BLOCK_PARAGRAPH,
                             bullet ? 1 + (lvl ? atoi(lvl) % 9 : 0) : 0, t->data, t->len);
            }
        } else if (is(sp, "graphicFrame")) {
            const xmlNode *tbl = child(child(child(sp, "graphic"), "graphicData"), "tbl");
            if (!tbl)
                continue;
            rb__docb_table_begin(b);
            for (const xmlNode *tr = tbl->children; tr; tr = tr->next) {
                if (!is(tr, "tr"))
                    continue;
                rb__docb_row_begin(b);
                for (const xmlNode *tc = tr->children; tc; tc = tc->next) {
                    if (!is(tc, "tc"))
                        continue;
                    rb_buf_reset(t);
                    gather(tc, t, 0);
                    rb__docb_cell(b, t->data ? t->data : "", t->len);
                }
                rb__docb_row_end(b);
            }
            rb__docb_table_end(b, 1);
        }
    }
}

enum rb_status rb__parse_pptx(struct rb__docb *b, const void *data, size_t len)
{
    struct box x;
    if (box_open(&x, b, data, len, "PPTX") != RB_OK) {
        box_close(&x);
        return b->st;
    }
    xmlDocPtr pres = box_xml(&x, "ppt/presentation.xml", true);
    struct rb_buf t;
    rb_buf_init(&t, b->lim->max_text_bytes + 1);
    const xmlNode *lst = pres ? child(xmlDocGetRootElement(pres), "sldIdLst") : NULL;
    int slides = 0;
    for (const xmlNode *s = lst ? lst->children : NULL; s && b->st == RB_OK; s = s->next) {
        const char *rid = attr_ns(s, "id");
        if (!is(s, "sldId") || !rid)
            continue;
        char *path = rel_target(&x, "ppt/_rels/presentation.xml.rels", "ppt/", rid);
        if (!path)
            continue;
        if (++slides > b->lim->max_pages) {
            free(path);
            rb__docb_fail(b, RB_ERR_TOO_LARGE, "presentation has more than %d slides",
                          b->lim->max_pages);
            break;
        }
        rb__docb_page(b);
        xmlDocPtr sd = box_xml(&x, path, false);
        free(path);
        if (!sd)
            continue;
        const xmlNode *tree = child(child(xmlDocGetRootElement(sd), "cSld"), "spTree");
        if (tree)
            pptx_shapes(&x, tree, &t, 0);
        xmlFreeDoc(sd);
    }
    if (pres)
        xmlFreeDoc(pres);
    rb_buf_free(&t);
    box_close(&x);
    return b->st;
}

/* ======================================================================= ODT */

static void odt_walk(struct rb__docb *b, const xmlNode *n, int list_depth, struct rb_buf *t,
                     int depth)
{
    if (depth > b->lim->max_depth) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "ODT nesting too deep");
        return;
    }
    for (const xmlNode *c = n->children; c && b->st == RB_OK; c = c->next) {
        if (is(c, "h")) {
            const char *lvl = attr(c, "outline-level");
            int l = lvl ? atoi(lvl) : 1;
            rb_buf_reset(t);
            gather(c, t, 0);
            rb__docb_add(b, RB_INGEST_BLOCK_HEADING, l < 1 ? 1 : l > 9 ? 9 : l, t->data, t->len);
        } else if (is(c, "p")) {
            rb_buf_reset(t);
            gather(c, t, 0);
            rb__docb_add(b, list_depth ? RB_INGEST_BLOCK_LIST_ITEM : RB_INGEST_BLOCK_PARAGRAPH,
                         list_depth, t->data, t->len);
        } else if (is(c, "list")) {
            odt_walk(b, c, list_depth + 1, t, depth + 1);
        } else if (is(c, "table")) {
            rb__docb_table_begin(b);
            size_t header = 0;
            for (const xmlNode *g = c->children; g; g = g->next) {
                bool hdr = is(g, "table-header-rows");
                const xmlNode *rows = (hdr || is(g, "table-rows")) ? g->children : g;
                for (const xmlNode *r = rows; r; r = (rows == g) ? NULL : r->next) {
                    if (!is(r, "table-row"))
                        continue;
                    rb__docb_row_begin(b);
                    for (const xmlNode *cell = r->children; cell; cell = cell->next) {
                        if (!is(cell, "table-cell"))
                            continue;
                        rb_buf_reset(t);
                        gather(cell, t, 0);
                        rb__docb_cell(b, t->data ? t->data : "", t->len);
                    }
                    rb__docb_row_end(b);
                    if (hdr)
                        header = 1;
                }
            }
            rb__docb_table_end(b, header ? header : 1);
        } else if (c->type == XML_ELEMENT_NODE &&
                   (is(c, "list-item") || is(c, "list-header") || is(c, "section") ||
                    is(c, "text") || is(c, "body") || is(c, "index-body") || is(c, "frame") ||
                    is(c, "text-box"))) {
            odt_walk(b, c, list_depth, t, depth + 1);
        }
    }
}

enum rb_status rb__parse_odt(struct rb__docb *b, const void *data, size_t len)
{
    struct box x;
    if (box_open(&x, b, data, len, "ODT") != RB_OK) {
        box_close(&x);
        return b->st;
    }
    xmlDocPtr d = box_xml(&x, "content.xml", true);
    if (d) {
        struct rb_buf t;
        rb_buf_init(&t, b->lim->max_text_bytes + 1);
        odt_walk(b, xmlDocGetRootElement(d), 0, &t, 0);
        rb_buf_free(&t);
        xmlFreeDoc(d);
    }
    xmlDocPtr meta = box_xml(&x, "meta.xml", false);
    if (meta) {
        const xmlNode *m = child(xmlDocGetRootElement(meta), "meta");
        const xmlNode *title = child(m, "title");
        if (title) {
            char *s = (char *)xmlNodeGetContent(title);
            if (s)
                rb__docb_set_title(b, s, strlen(s));
            xmlFree(s);
        }
        xmlFreeDoc(meta);
    }
    box_close(&x);
    return b->st;
}

/* ====================================================================== EPUB */

/* A manifest href resolved against the package's folder: percent-escapes
 * decoded, fragments dropped, "./" and empty segments dropped, "../"
 * applied. NULL when it would leave the container. Caller frees. */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *epub_path(const char *dir, const char *href)
{
    size_t hl = strcspn(href, "#?");
    char *dec = malloc(hl + 1);
    if (!dec)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < hl; i++) {
        int hi = i + 2 < hl ? hexval(href[i + 1]) : -1, lo = i + 2 < hl ? hexval(href[i + 2]) : -1;
        if (href[i] == '%' && hi >= 0 && lo >= 0 && (hi | lo)) {
            dec[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dec[n++] = href[i];
        }
    }
    dec[n] = '\0';
    char *joined = rb_asprintf("%s%s", dir, dec);
    free(dec);
    if (!joined)
        return NULL;
    /* normalise segment by segment */
    char *out = malloc(strlen(joined) + 1);
    if (!out) {
        free(joined);
        return NULL;
    }
    size_t o = 0;
    for (char *seg = joined; *seg;) {
        char *slash = strchr(seg, '/');
        size_t sl = slash ? (size_t)(slash - seg) : strlen(seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.')) {
            /* skip */
        } else if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            if (o == 0) { /* above the container root */
                free(joined);
                free(out);
                return NULL;
            }
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the slash */
        } else {
            if (o)
                out[o++] = '/';
            memcpy(out + o, seg, sl);
            o += sl;
        }
        seg += sl + (slash ? 1 : 0);
    }
    out[o] = '\0';
    free(joined);
    return out;
}

/* EPUB 2/3: META-INF/container.xml names the package (OPF); its spine lists
 * the XHTML documents in reading order, each parsed with the HTML parser
 * into the same document. DRM-encrypted books are refused. */
enum rb_status rb__parse_epub(struct rb__docb *b, const void *data, size_t len)
{
    struct box x;
    if (box_open(&x, b, data, len, "EPUB") != RB_OK) {
        box_close(&x);
        return b->st;
    }
    char *enc = NULL, *opf_path = NULL, *dir = NULL, *title = NULL;
    size_t enc_len = 0;
    xmlDocPtr container = NULL, opf = NULL;
    if (box_read(&x, "META-INF/encryption.xml", &enc, &enc_len) == RB_OK &&
        strstr(enc, "EncryptedData")) {
        rb__docb_fail(b, RB_ERR_DENIED, "EPUB is DRM-protected (its content is encrypted)");
        goto done;
    }
    if (b->st != RB_OK)
        goto done;
    container = box_xml(&x, "META-INF/container.xml", true);
    if (!container)
        goto done;
    const xmlNode *rootfiles = child(xmlDocGetRootElement(container), "rootfiles");
    for (const xmlNode *r = rootfiles ? rootfiles->children : NULL; r && !opf_path; r = r->next)
        if (is(r, "rootfile") && attr(r, "full-path"))
            opf_path = epub_path("", attr(r, "full-path"));
    if (!opf_path) {
        rb__docb_fail(b, RB_ERR_PARSE, "EPUB: container.xml names no package document");
        goto done;
    }
    const char *slash = strrchr(opf_path, '/');
    dir = rb_strndup(opf_path, slash ? (size_t)(slash - opf_path) + 1 : 0);
    opf = box_xml(&x, opf_path, true);
    if (!opf || !dir)
        goto done;
    const xmlNode *pkg = xmlDocGetRootElement(opf);
    const xmlNode *meta = child(pkg, "metadata"), *manifest = child(pkg, "manifest"),
                  *spine = child(pkg, "spine");
    const xmlNode *t = child(meta, "title");
    if (t)
        title = (char *)xmlNodeGetContent(t);
    if (!manifest || !spine) {
        rb__docb_fail(b, RB_ERR_PARSE, "EPUB: the package has no manifest or spine");
        goto done;
    }
    int chapters = 0, read = 0;
    for (const xmlNode *ir = spine->children; ir && b->st == RB_OK; ir = ir->next) {
        const char *idref = is(ir, "itemref") ? attr(ir, "idref") : NULL;
        if (!idref)
            continue;
        const char *lin = attr(ir, "linear");
        const xmlNode *item = NULL;
        for (const xmlNode *it = manifest->children; it && !item; it = it->next)
            if (is(it, "item") && attr(it, "id") && !strcmp(attr(it, "id"), idref))
                item = it;
        const char *href = item ? attr(item, "href") : NULL;
        const char *mt = item ? attr(item, "media-type") : NULL;
        if (!href || (mt && !strstr(mt, "html")) || (lin && !strcmp(lin, "no")))
            continue;
        if (++chapters > b->lim->max_pages) {
            rb__docb_fail(b, RB_ERR_TOO_LARGE, "EPUB has more than %d documents in its spine",
                          b->lim->max_pages);
            break;
        }
        char *path = epub_path(dir, href);
        char *xhtml = NULL;
        size_t xl = 0;
        if (path && box_read(&x, path, &xhtml, &xl) == RB_OK && rb__parse_html(b, xhtml, xl, NULL) == RB_OK)
            read++;
        free(xhtml);
        free(path);
    }
    if (b->st == RB_OK && title && *title)
        rb__docb_set_title(b, title, strlen(title)); /* over the chapters' <title> */
    if (b->st == RB_OK)
        rb__docb_set_metadata(b, rb_asprintf("{\"chapters\":%d}", read));
done:
    xmlFree(title);
    xmlFreeDoc(opf);
    xmlFreeDoc(container);
    free(dir);
    free(opf_path);
    free(enc);
    box_close(&x);
    return b->st;
}
