/* Markdown through cmark-gfm (CommonMark + GFM tables): headings, paragraphs,
 * list items (with nesting depth), tables with their header row, code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>

#include "ingest-impl.h"

/* Inline text of node into o (soft breaks as spaces, images by alt text). */
static void inline_text(cmark_node *node, struct rb_buf *o, int depth)
{
    if (depth > 200)
        return;
    for (cmark_node *c = cmark_node_first_child(node); c; c = cmark_node_next(c)) {
        cmark_node_type t = cmark_node_get_type(c);
        const char *lit = NULL;
        switch (t) {
        case CMARK_NODE_TEXT:
        case CMARK_NODE_CODE:
        case CMARK_NODE_HTML_INLINE:
            lit = cmark_node_get_literal(c);
            if (lit && t != CMARK_NODE_HTML_INLINE)
                (void)!rb_buf_append_str(o, lit);
            break;
        case CMARK_NODE_SOFTBREAK:
            (void)!rb_buf_append(o, "\n", 1);
            break;
        case CMARK_NODE_LINEBREAK:
            (void)!rb_buf_append(o, "\n", 1);
            break;
        default:
            inline_text(c, o, depth + 1);
            break;
        }
    }
}

static void walk(struct rb__docb *b, cmark_node *node, int list_depth, int depth)
{
    if (depth > b->lim->max_depth) {
        rb__docb_fail(b, RB_ERR_TOO_LARGE, "Markdown nesting deeper than %d", b->lim->max_depth);
        return;
    }
    struct rb_buf t;
    rb_buf_init(&t, b->lim->max_text_bytes + 1);
    for (cmark_node *c = cmark_node_first_child(node); c && b->st == RB_OK; c = cmark_node_next(c)) {
        cmark_node_type type = cmark_node_get_type(c);
        const char *ts = cmark_node_get_type_string(c);
        rb_buf_reset(&t);
        if (type == CMARK_NODE_HEADING) {
            inline_text(c, &t, 0);
            if (t.len)
                rb__docb_add(b, RB_INGEST_BLOCK_HEADING, cmark_node_get_heading_level(c), t.data,
                             t.len);
        } else if (type == CMARK_NODE_PARAGRAPH) {
            inline_text(c, &t, 0);
            if (t.len)
                rb__docb_add(b, list_depth ? RB_INGEST_BLOCK_LIST_ITEM : RB_INGEST_BLOCK_PARAGRAPH,
                             list_depth, t.data, t.len);
        } else if (type == CMARK_NODE_CODE_BLOCK) {
            const char *lit = cmark_node_get_literal(c);
            if (lit)
                rb__docb_add(b, RB_INGEST_BLOCK_CODE, 0, lit, strlen(lit));
        } else if (type == CMARK_NODE_LIST) {
            walk(b, c, list_depth + 1, depth + 1);
        } else if (type == CMARK_NODE_ITEM || type == CMARK_NODE_BLOCK_QUOTE) {
            walk(b, c, list_depth, depth + 1);
        } else if (ts && strcmp(ts, "table") == 0) {
            rb__docb_table_begin(b);
            size_t header = 0;
            for (cmark_node *row = cmark_node_first_child(c); row; row = cmark_node_next(row)) {
                if (cmark_gfm_extensions_get_table_row_is_header(row))
                    header = 1;
                rb__docb_row_begin(b);
                for (cmark_node *cell = cmark_node_first_child(row); cell;
                     cell = cmark_node_next(cell)) {
                    rb_buf_reset(&t);
                    inline_text(cell, &t, 0);
                    rb__docb_cell(b, t.data ? t.data : "", t.len);
                }
                rb__docb_row_end(b);
            }
            rb__docb_table_end(b, header);
        } else if (type == CMARK_NODE_HTML_BLOCK) {
            /* raw HTML blocks carry no prose worth indexing as markup */
        } else if (cmark_node_first_child(c)) {
            walk(b, c, list_depth, depth + 1);
        }
    }
    rb_buf_free(&t);
}

enum rb_status rb__parse_markdown(struct rb__docb *b, const void *data, size_t len)
{
    char *u = NULL;
    size_t n = 0;
    const char *cs = NULL;
    enum rb_status st = rb__to_utf8(data, len, NULL, b->lim->max_text_bytes, &u, &n, &cs, b->err);
    if (st != RB_OK)
        return rb__docb_fail(b, st, "%s", b->err ? b->err->text : "cannot decode Markdown");
    cmark_gfm_core_extensions_ensure_registered();
    cmark_parser *p = cmark_parser_new(CMARK_OPT_DEFAULT | CMARK_OPT_VALIDATE_UTF8);
    if (!p) {
        free(u);
        return rb__docb_fail(b, RB_ERR_NOMEM, "out of memory");
    }
    cmark_syntax_extension *table = cmark_find_syntax_extension("table");
    if (table)
        cmark_parser_attach_syntax_extension(p, table);
    cmark_parser_feed(p, u, n);
    cmark_node *root = cmark_parser_finish(p);
    if (!root) {
        cmark_parser_free(p);
        free(u);
        return rb__docb_fail(b, RB_ERR_PARSE, "Markdown could not be parsed");
    }
    walk(b, root, 0, 0);
    /* The first level-1 heading is the title. */
    for (size_t i = 0; i < b->n_blocks; i++)
        if (b->blocks[i].kind == RB_INGEST_BLOCK_HEADING) {
            rb__docb_set_title(b, b->text.data + b->blocks[i].byte_start,
                               b->blocks[i].byte_end - b->blocks[i].byte_start);
            break;
        }
    cmark_node_free(root);
    cmark_parser_free(p);
    free(u);
    return b->st;
}
