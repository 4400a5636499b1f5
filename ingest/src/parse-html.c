/* HTML through libxml2's HTML parser: the main content (<main>/<article>
 * when present), headings, paragraphs, list items, tables, preformatted
 * text; script, style, nav, aside, footer, forms' controls are dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "ingest-impl.h"

struct walker {
    struct rb__docb *b;
    struct rb_buf inl; /* inline text of the block being collected */
    int list_depth;
    bool in_list_item;
};

static bool is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name && strcasecmp((const char *)n->name, name) == 0;
}

static bool dropped(const xmlNode *n)
{
    static const char *const names[] = {"script", "style", "nav", "noscript", "template", "head",
                                        "iframe", "svg", "aside", "footer", "select", "option",
                                        "button", "object", "canvas", "math"};
    for (size_t i = 0; i < RB_ARRAY_LEN(names); i++)
        if (is(n, names[i]))
            return true;
    return false;
}

static bool block_level(const xmlNode *n)
{
    static const char *const names[] = {
        "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "li", "table", "pre", "blockquote", "dl", "dt", "dd", "figure", "figcaption",
        "address", "hr", "form", "fieldset", "body", "center", "caption", "details", "summary"};
    if (n->type != XML_ELEMENT_NODE)
        return false;
    for (size_t i = 0; i < RB_ARRAY_LEN(names); i++)
        if (is(n, names[i]))
            return true;
    return false;
}

static void flush(struct walker *w)
{
    if (w->inl.len)
        rb__docb_add(w->b, w->in_list_item ? RB_INGEST_BLOCK_LIST_ITEM : RB_INGEST_BLOCK_PARAGRAPH,
                     w->in_list_item ? w->list_depth : 0, w->inl.data, w->inl.len);
    rb_buf_reset(&w->inl);
}

/* All text under n (for headings, cells, pre), with <br> as newlines. */
static void gather(const xmlNode *n, struct rb_buf *o, int depth)
{
    if (depth > 256)
        return;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content)
                (void)!rb_buf_append_str(o, (const char *)c->content);
        } else if (c->type == XML_ELEMENT_NODE && !dropped(c)) {
            if (is(c, "br"))
                (void)!rb_buf_append(o, "\n", 1);
            else {
                if (block_level(c) && o->len)
                    (void)!rb_buf_append(o, " ", 1);
                gather(c, o, depth + 1);
            }
        }
    }
}

static void walk(struct walker *w, const xmlNode *n, int depth);

static void table(struct walker *w, const xmlNode *t, int depth)
{
    struct rb__docb *b = w->b;
    struct rb_buf cell;
    rb_buf_init(&cell, b->lim->max_text_bytes + 1);
    rb__docb_table_begin(b);
    size_t header = 0, rows = 0;
    /* rows may sit in thead/tbody/tfoot or directly under table */
    const xmlNode *groups[2] = {t, NULL};
    (void)groups;
    for (const xmlNode *g = t->children; g; g = g->next) {
        const xmlNode *row_parent = NULL;
        if (is(g, "thead") || is(g, "tbody") || is(g, "tfoot"))
            row_parent = g;
        const xmlNode *first = row_parent ? row_parent->children : g;
        for (const xmlNode *r = first; r; r = row_parent ? r->next : NULL) {
            if (!is(r, "tr"))
                continue;
            bool all_th = true, any = false;
            rb__docb_row_begin(b);
            for (const xmlNode *c = r->children; c; c = c->next) {
                if (!is(c, "td") && !is(c, "th"))
                    continue;
                any = true;
                if (!is(c, "th"))
                    all_th = false;
                rb_buf_reset(&cell);
                gather(c, &cell, depth + 1);
                rb__docb_cell(b, cell.data ? cell.data : "", cell.len);
            }
            rb__docb_row_end(b);
            if (rows == 0 && any && (all_th || (row_parent && is(row_parent, "thead"))))
                header = 1;
            rows++;
        }
    }
    rb__docb_table_end(b, header);
    rb_buf_free(&cell);
}

static void walk(struct walker *w, const xmlNode *n, int depth)
{
    struct rb__docb *b = w->b;
    if (depth > b->lim->max_depth) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "HTML nesting deeper than %d", b->lim->max_depth);
        return;
    }
    for (const xmlNode *c = n->children; c && b->st == RB_OK; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content && rb_buf_append_str(&w->inl, (const char *)c->content) != RB_OK)
                rb__docb_fail(b, RB_ERR_TOO_LARGE, "paragraph too large");
            continue;
        }
        if (c->type != XML_ELEMENT_NODE || dropped(c))
            continue;
        if (is(c, "br")) {
            (void)!rb_buf_append(&w->inl, "\n", 1);
            continue;
        }
        if (!block_level(c)) {
            walk(w, c, depth + 1); /* inline element: its text joins the block */
            continue;
        }
        flush(w);
        const char *name = (const char *)c->name;
        if ((name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6' && !name[2]) {
            struct rb_buf t;
            rb_buf_init(&t, b->lim->max_text_bytes + 1);
            gather(c, &t, depth + 1);
            rb__docb_add(b, RB_INGEST_BLOCK_HEADING, name[1] - '0', t.data, t.len);
            rb_buf_free(&t);
        } else if (is(c, "pre")) {
            struct rb_buf t;
            rb_buf_init(&t, b->lim->max_text_bytes + 1);
            gather(c, &t, depth + 1);
            rb__docb_add(b, RB_INGEST_BLOCK_CODE, 0, t.data, t.len);
            rb_buf_free(&t);
        } else if (is(c, "table")) {
            table(w, c, depth + 1);
        } else if (is(c, "ul") || is(c, "ol")) {
            w->list_depth++;
            walk(w, c, depth + 1);
            flush(w);
            w->list_depth--;
        } else if (is(c, "li")) {
            bool saved = w->in_list_item;
            w->in_list_item = true;
            walk(w, c, depth + 1);
            flush(w);
            w->in_list_item = saved;
        } else {
            walk(w, c, depth + 1);
            flush(w);
        }
    }
}

static const xmlNode *find(const xmlNode *n, const char *name, int depth)
{
    if (depth > 256)
        return NULL;
    for (const xmlNode *c = n; c; c = c->next) {
        if (is(c, name))
            return c;
        if (c->type == XML_ELEMENT_NODE && !dropped(c)) {
            const xmlNode *f = find(c->children, name, depth + 1);
            if (f)
                return f;
        }
    }
    return NULL;
}

void rb__html_walk(struct rb__docb *b, struct _xmlDoc *doc)
{
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root)
        return;
    const xmlNode *head = find(root, "head", 0);
    const xmlNode *title = head ? find(head->children, "title", 0) : find(root, "title", 0);
    if (title) {
        struct rb_buf t;
        rb_buf_init(&t, 1 << 16);
        gather(title, &t, 0);
        rb__docb_set_title(b, t.data, t.len);
        rb_buf_free(&t);
    }
    const xmlNode *main = find(root, "main", 0);
    if (!main)
        main = find(root, "article", 0);
    struct walker w = {.b = b};
    rb_buf_init(&w.inl, b->lim->max_text_bytes + 1);
    if (main) {
        xmlNode holder = {0};
        holder.children = (xmlNode *)main;
        /* walk just that element (not its siblings) */
        xmlNode *saved_next = main->next;
        ((xmlNode *)main)->next = NULL;
        walk(&w, &holder, 0);
        ((xmlNode *)main)->next = saved_next;
    } else {
        walk(&w, (const xmlNode *)doc, 0);
    }
    flush(&w);
    rb_buf_free(&w.inl);
    if (!b->title)
        for (size_t i = 0; i < b->n_blocks; i++)
            if (b->blocks[i].kind == RB_INGEST_BLOCK_HEADING) {
                rb__docb_set_title(b, b->text.data + b->blocks[i].byte_start,
                                   b->blocks[i].byte_end - b->blocks[i].byte_start);
                break;
            }
}

enum rb_status rb__parse_html(struct rb__docb *b, const void *data, size_t len,
                              const char *charset)
{
    if (len > INT32_MAX)
        return rb__docb_fail(b, RB_ERR_TOO_LARGE, "HTML too large");
    /* Encodings: a BOM or <meta charset> is honoured by libxml2; without
     * either, detect ourselves so that e.g. cp1252 or GBK pages decode. */
    const char *enc = charset;
    char *u = NULL;
    size_t n = 0;
    const void *src = data;
    size_t src_len = len;
    bool has_meta = memmem(data, len < 4096 ? len : 4096, "charset", 7) != NULL;
    if (!enc && !has_meta) {
        const char *cs = NULL;
        enum rb_status st =
            rb__to_utf8(data, len, NULL, b->lim->max_text_bytes, &u, &n, &cs, b->err);
        if (st != RB_OK)
            return rb__docb_fail(b, st, "%s", b->err ? b->err->text : "cannot decode HTML");
        src = u;
        src_len = n;
        enc = "UTF-8";
    } else if (!enc && len >= 2 &&
               (memcmp(data, "\xff\xfe", 2) == 0 || memcmp(data, "\xfe\xff", 2) == 0)) {
        enc = NULL; /* libxml2 follows the BOM */
    }
    htmlDocPtr doc = htmlReadMemory(src, (int)src_len, NULL, enc,
                                    HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_RECOVER | HTML_PARSE_NOBLANKS);
    if (!doc) {
        free(u);
        return rb__docb_fail(b, RB_ERR_PARSE, "HTML could not be parsed");
    }
    rb__html_walk(b, doc);
    xmlFreeDoc(doc);
    free(u);
    return b->st;
}
