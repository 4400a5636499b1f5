/* The chunker: cuts a document along its structure into passages that fit a
 * token budget.
 *
 * 1. Blocks become units: headings whole, paragraphs and list items split
 *    into sentences (English . ! ? followed by a space and a likely sentence
 *    start, not after a known abbreviation or an initial; CJK 。！？； and
 *    their closing quotes), table rows (each non-header row remembers its
 *    table's header row), code lines. A sentence longer than the budget is
 *    split at spaces, else at character boundaries.
 * 2. Units are packed greedily into chunks. A heading always starts a new
 *    chunk (a chunk never spans two sections), except that a chunk holding
 *    only headings merges forward. When a chunk is full, the next one starts
 *    with the trailing sentences of the previous one worth up to
 *    overlap_tokens (same section only). A chunk that starts inside a table
 *    below its header row gets the header row prepended to its text.
 * Each chunk is a contiguous range of the document text, so its byte and
 * char offsets point at the passage to show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest-impl.h"

/* ================================================================ tokens */

size_t rb_ingest_estimate_tokens(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    /* Calibrated on BPE/WordPiece vocabularies: a Latin word is ~1.3 tokens
     * (longer words split more), a CJK character ~1, other symbols 1. */
    size_t tokens10 = 0, i = 0;
    size_t word = 0;
    while (i < len) {
        uint32_t cp;
        int n = rb_utf8_decode(text + i, len - i, &cp);
        i += (size_t)n;
        bool alnum = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                     (cp >= '0' && cp <= '9') || (cp >= 0xC0 && cp < 0x2000 && cp != 0xD7 && cp != 0xF7);
        if (alnum) {
            word++;
            continue;
        }
        if (word) {
            tokens10 += 10 + (word > 6 ? (word - 6) * 10 / 4 : 3);
            word = 0;
        }
        if (cp == ' ' || cp == '\n' || cp == '\t' || cp == '\r')
            continue;
        tokens10 += 10;
    }
    if (word)
        tokens10 += 10 + (word > 6 ? (word - 6) * 10 / 4 : 3);
    return (tokens10 + 9) / 10;
}

void rb_ingest_chunk_options_default(struct rb_ingest_chunk_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_tokens = 384;
    o->overlap_tokens = 48;
    o->min_tokens = 24;
}

enum rb_status rb_ingest_chunk_options_from_config(const struct rb_config *cfg, const char *name,
                                                   struct rb_ingest_chunk_options *o,
                                                   struct rb_errmsg *err)
{
    rb_ingest_chunk_options_default(o);
    if (!cfg)
        return RB_OK;
    int64_t v;
    enum rb_status st;
    char section[128];
    const char *sections[2] = {"ingest", NULL};
    if (name && *name) {
        snprintf(section, sizeof section, "ingest.%s", name);
        sections[1] = section;
    }
    for (int s = 0; s < 2 && sections[s]; s++) {
        if ((st = rb_config_int(cfg, sections[s], "chunk_tokens", o->max_tokens, 16, 8192, &v, err)))
            return st;
        o->max_tokens = (int)v;
        if ((st = rb_config_int(cfg, sections[s], "chunk_overlap", o->overlap_tokens, 0, 4096, &v,
                                err)))
            return st;
        o->overlap_tokens = (int)v;
        if ((st = rb_config_int(cfg, sections[s], "chunk_min_tokens", o->min_tokens, 0, 4096, &v,
                                err)))
            return st;
        o->min_tokens = (int)v;
    }
    if (o->overlap_tokens >= o->max_tokens / 2)
        o->overlap_tokens = o->max_tokens / 4;
    return RB_OK;
}

/* ================================================================= units */

enum unit_kind { U_HEADING, U_TEXT, U_ROW, U_HEADER_ROW };

struct unit {
    size_t start, end; /* bytes in doc->text */
    size_t block;
    enum unit_kind kind;
    size_t tokens;
    struct rb_ingest_span header; /* U_ROW: its table's header row ({0,0} if none) */
    char *section;                /* borrowed from the sections array */
};

struct units {
    struct unit *u;
    size_t n, cap;
};

static bool push(struct units *us, struct unit u)
{
    if (us->n == us->cap) {
        size_t nc = us->cap ? us->cap * 2 : 256;
        struct unit *nu = rb_malloc_array(nc, sizeof *nu);
        if (!nu)
            return false;
        if (us->u)
            memcpy(nu, us->u, us->n * sizeof *nu);
        free(us->u);
        us->u = nu;
        us->cap = nc;
    }
    us->u[us->n++] = u;
    return true;
}

static bool is_upper_start(uint32_t cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '"' || cp == '\'' ||
           cp == '(' || cp == 0x201C || cp == 0x2018 || (cp >= 0xC0 && cp <= 0xDE) ||
           rb_utf8_is_cjk(cp);
}

/* Whether the word ending at text[end) (before a '.') is an abbreviation. */
static bool abbreviation(const char *text, size_t start, size_t end)
{
    static const char *const abbr[] = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st",
                                       "vs", "etc", "e.g", "i.e", "fig", "figs", "no", "nos",
                                       "vol", "p", "pp", "ch", "sec", "approx", "inc", "ltd",
                                       "co", "corp", "u.s", "u.k", "jan", "feb", "mar", "apr",
                                       "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
                                       "al", "eq", "ref", "art", "para", "cf", "ca", "est"};
    size_t b = end;
    while (b > start && text[b - 1] != ' ' && text[b - 1] != '(' && text[b - 1] != '\n')
        b--;
    size_t n = end - b;
    if (n == 1 && text[b] >= 'A' && text[b] <= 'Z')
        return true; /* an initial: "J. Smith" */
    if (n == 0 || n > 6)
        return false;
    char w[8];
    for (size_t i = 0; i < n; i++)
        w[i] = (char)((text[b + i] >= 'A' && text[b + i] <= 'Z') ? text[b + i] + 32 : text[b + i]);
    w[n] = '\0';
    for (size_t i = 0; i < RB_ARRAY_LEN(abbr); i++)
        if (!strcmp(w, abbr[i]))
            return true;
    return false;
}

static bool cjk_stop(uint32_t cp)
{
    return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF1B || cp == 0xFF0E;
}
static bool closing(uint32_t cp)
{
    return cp == 0x201D || cp == 0x2019 || cp == 0x300D || cp == 0x300F || cp == 0xFF09 ||
           cp == ')' || cp == '"' || cp == '\'' || cp == 0x3011;
}

/* Splits text[start, end) into sentences, calling emit for each range. */
static bool sentences(const char *text, size_t start, size_t end,
                      bool (*emit)(void *ctx, size_t s, size_t e), void *ctx)
{
    size_t s = start, i = start;
    while (i < end) {
        uint32_t cp;
        int n = rb_utf8_decode(text + i, end - i, &cp);
        size_t after = i + (size_t)n;
        size_t cut = 0;
        if (cjk_stop(cp)) {
            while (after < end) { /* closing quotes stay with their sentence */
                uint32_t c2;
                int m = rb_utf8_decode(text + after, end - after, &c2);
                if (!closing(c2) && !cjk_stop(c2))
                    break;
                after += (size_t)m;
            }
            cut = after;
        } else if (cp == '.' || cp == '!' || cp == '?' || cp == 0x2026) {
            size_t a = after;
            while (a < end && (text[a] == '.' || text[a] == '!' || text[a] == '?' ||
                               text[a] == '"' || text[a] == ')' || text[a] == '\''))
                a++;
            if (a < end && text[a] == ' ') {
                size_t b = a;
                while (b < end && text[b] == ' ')
                    b++;
                uint32_t next = 0;
                if (b < end)
                    rb_utf8_decode(text + b, end - b, &next);
                if (b < end && is_upper_start(next) && !(cp == '.' && abbreviation(text, s, i)))
                    cut = a;
            }
        }
        if (cut) {
            if (!emit(ctx, s, cut))
                return false;
            s = cut;
            while (s < end && text[s] == ' ')
                s++;
            i = s;
            continue;
        }
        i = after;
    }
    if (s < end)
        return emit(ctx, s, end);
    return true;
}

struct builder {
    const struct rb_ingest_doc *doc;
    const struct rb_ingest_chunk_options *o;
    struct units us;
    size_t block;
    char *section;
    bool oom;
};

static size_t count(struct builder *bd, size_t s, size_t e)
{
    return bd->o->count(bd->o->count_ctx, bd->doc->text + s, e - s);
}

/* Adds text[s, e) as one or more text units no larger than the budget. */
static bool emit_text(void *ctx, size_t s, size_t e)
{
    struct builder *bd = ctx;
    const char *t = bd->doc->text;
    size_t max = (size_t)bd->o->max_tokens;
    while (s < e) {
        size_t tok = count(bd, s, e);
        size_t cut = e;
        if (tok > max) {
            /* Proportional first guess, then back off to a space or a character boundary. */
            size_t len = e - s;
            size_t guess = (size_t)((double)len * (double)max / (double)tok * 0.9);
            if (guess < 1)
                guess = 1;
            cut = s + rb_utf8_truncate(t + s, len, guess);
            if (cut == s)
                cut = s + (size_t)rb_utf8_decode(t + s, len, &(uint32_t){0});
            size_t sp = cut;
            while (sp > s + (cut - s) * 2 / 3 && t[sp - 1] != ' ')
                sp--;
            if (sp > s + (cut - s) * 2 / 3)
                cut = sp;
            while (count(bd, s, cut) > max && cut > s + 1) {
                size_t shorter = s + rb_utf8_truncate(t + s, cut - s, (cut - s) * 3 / 4);
                if (shorter <= s)
                    break;
                cut = shorter;
            }
            tok = count(bd, s, cut);
        }
        size_t ue = cut;
        while (ue > s && t[ue - 1] == ' ')
            ue--;
        struct unit u = {.start = s, .end = ue, .block = bd->block, .kind = U_TEXT, .tokens = tok,
                         .section = bd->section};
        if (ue > s && !push(&bd->us, u)) {
            bd->oom = true;
            return false;
        }
        s = cut;
        while (s < e && t[s] == ' ')
            s++;
    }
    return true;
}

/* ================================================================ chunks */

struct out {
    struct rb_ingest_chunks *c;
    size_t cap;
};

static size_t char_at(const struct rb_ingest_doc *d, size_t block, size_t off)
{
    const struct rb_ingest_block *b = &d->blocks[block];
    size_t chars = b->char_start;
    if (off >= b->byte_start) {
        for (size_t i = b->byte_start; i < off && i < d->text_len; i++)
            chars += ((unsigned char)d->text[i] & 0xC0) != 0x80;
    }
    return chars;
}

static enum rb_status make_chunk(struct builder *bd, struct out *o, size_t first, size_t last)
{
    const struct rb_ingest_doc *d = bd->doc;
    const struct unit *a = &bd->us.u[first], *z = &bd->us.u[last];
    if (o->c->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        struct rb_ingest_chunk *ni = rb_malloc_array(nc, sizeof *ni);
        if (!ni)
            return RB_ERR_NOMEM;
        if (o->c->items)
            memcpy(ni, o->c->items, o->c->n * sizeof *ni);
        free(o->c->items);
        o->c->items = ni;
        o->cap = nc;
    }
    struct rb_ingest_chunk *c = &o->c->items[o->c->n];
    memset(c, 0, sizeof *c);
    c->byte_start = a->start;
    c->byte_end = z->end;
    c->char_start = char_at(d, a->block, a->start);
    c->char_end = char_at(d, z->block, z->end);
    c->page_start = rb_ingest_doc_page_at(d, a->start);
    c->page_end = rb_ingest_doc_page_at(d, z->end > a->start ? z->end - 1 : a->start);
    size_t body = z->end - a->start;
    bool header = a->kind == U_ROW && a->header.end > a->header.start;
    size_t hl = header ? a->header.end - a->header.start : 0;
    c->text_len = body + (header ? hl + 1 : 0);
    c->text = malloc(c->text_len + 1);
    if (!c->text)
        return RB_ERR_NOMEM;
    if (header) {
        memcpy(c->text, d->text + a->header.start, hl);
        c->text[hl] = '\n';
        memcpy(c->text + hl + 1, d->text + a->start, body);
    } else {
        memcpy(c->text, d->text + a->start, body);
    }
    c->text[c->text_len] = '\0';
    /* The section of a chunk is that of its last heading (a merged heading-only
     * chunk takes its child's path, which includes the parent). */
    const char *sec = z->section;
    c->section = sec ? rb_strdup(sec) : NULL;
    if (sec && !c->section) {
        free(c->text);
        return RB_ERR_NOMEM;
    }
    c->token_count = (int32_t)bd->o->count(bd->o->count_ctx, c->text, c->text_len);
    o->c->n++;
    return RB_OK;
}

void rb_ingest_chunks_free(struct rb_ingest_chunks *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].text);
        free(c->items[i].section);
    }
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

/* Heading stack -> "A > B > C". */
struct headings {
    int level[16];
    struct rb_ingest_span span[16];
    int n;
};

static char *section_path(const struct rb_ingest_doc *d, const struct headings *h)
{
    if (!h->n)
        return NULL;
    struct rb_buf b;
    rb_buf_init(&b, 1 << 16);
    for (int i = 0; i < h->n; i++) {
        size_t n = h->span[i].end - h->span[i].start;
        n = rb_utf8_truncate(d->text + h->span[i].start, n, 200);
        if ((i && rb_buf_append(&b, " > ", 3) != RB_OK) ||
            rb_buf_append(&b, d->text + h->span[i].start, n) != RB_OK) {
            rb_buf_free(&b);
            return NULL;
        }
    }
    return rb_buf_steal(&b);
}

enum rb_status rb_ingest_chunk(const struct rb_ingest_doc *doc,
                               const struct rb_ingest_chunk_options *opts,
                               struct rb_ingest_chunks *out, struct rb_errmsg *err)
{
    struct rb_ingest_chunk_options o;
    if (opts)
        o = *opts;
    else
        rb_ingest_chunk_options_default(&o);
    if (!o.count)
        o.count = rb_ingest_estimate_tokens;
    if (o.max_tokens < 8)
        o.max_tokens = 8;
    if (o.overlap_tokens < 0 || o.overlap_tokens >= o.max_tokens)
        o.overlap_tokens = 0;
    out->items = NULL;
    out->n = 0;
    struct builder bd = {.doc = doc, .o = &o};
    /* Sections are kept in an array of owned strings, one per heading. */
    char **sections = NULL;
    size_t n_sections = 0;
    struct headings hs = {.n = 0};
    enum rb_status st = RB_OK;
    if (doc->n_blocks)
        sections = rb_calloc_array(doc->n_blocks, sizeof *sections);
    if (doc->n_blocks && !sections)
        return err ? rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory") : RB_ERR_NOMEM;
    /* ---- 1. units */
    for (size_t i = 0; i < doc->n_blocks && !bd.oom; i++) {
        const struct rb_ingest_block *b = &doc->blocks[i];
        bd.block = i;
        if (b->byte_end <= b->byte_start)
            continue;
        if (b->kind == RB_INGEST_BLOCK_HEADING) {
            int lvl = b->level < 1 ? 1 : b->level;
            while (hs.n && hs.level[hs.n - 1] >= lvl)
                hs.n--;
            if (hs.n == 16)
                hs.n--;
            hs.level[hs.n] = lvl;
            hs.span[hs.n].start = b->byte_start;
            hs.span[hs.n].end = b->byte_end;
            hs.n++;
            sections[n_sections] = section_path(doc, &hs);
            bd.section = sections[n_sections++];
            struct unit u = {.start = b->byte_start, .end = b->byte_end, .block = i,
                             .kind = U_HEADING, .section = bd.section};
            u.tokens = count(&bd, u.start, u.end);
            if (u.tokens > (size_t)o.max_tokens / 2) { /* a "heading" that is really prose */
                u.kind = U_TEXT;
                if (!emit_text(&bd, u.start, u.end))
                    break;
            } else if (!push(&bd.us, u))
                bd.oom = true;
        } else if (b->kind == RB_INGEST_BLOCK_TABLE) {
            struct rb_ingest_span hdr = {0, 0};
            if (b->header_rows && b->n_rows)
                hdr = b->rows[0];
            for (size_t r = 0; r < b->n_rows && !bd.oom; r++) {
                bool is_hdr = r < b->header_rows;
                struct unit u = {.start = b->rows[r].start, .end = b->rows[r].end, .block = i,
                                 .kind = is_hdr ? U_HEADER_ROW : U_ROW, .header = hdr,
                                 .section = bd.section};
                u.tokens = count(&bd, u.start, u.end);
                if (u.tokens > (size_t)o.max_tokens) {
                    if (!emit_text(&bd, u.start, u.end))
                        break;
                } else if (!push(&bd.us, u))
                    bd.oom = true;
            }
        } else if (b->kind == RB_INGEST_BLOCK_CODE) {
            /* Code: lines, packed by the budget like sentences. */
            size_t s = b->byte_start;
            while (s < b->byte_end && !bd.oom) {
                const char *nl = memchr(doc->text + s, '\n', b->byte_end - s);
                size_t e = nl ? (size_t)(nl - doc->text) : b->byte_end;
                if (e > s && !emit_text(&bd, s, e))
                    break;
                s = e + 1;
            }
        } else {
            if (!sentences(doc->text, b->byte_start, b->byte_end, emit_text, &bd))
                break;
        }
    }
    if (bd.oom) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    /* ---- 2. packing */
    struct out oc = {.c = out};
    size_t first = 0, tokens = 0;
    bool open = false, has_body = false;
    for (size_t i = 0; i < bd.us.n && st == RB_OK; i++) {
        struct unit *u = &bd.us.u[i];
        if (u->kind == U_HEADING) {
            if (open && has_body) {
                st = make_chunk(&bd, &oc, first, i - 1);
                open = false;
            }
            if (!open) {
                first = i;
                tokens = 0;
                open = true;
                has_body = false;
            }
            tokens += u->tokens;
            continue;
        }
        if (open && has_body && tokens + u->tokens > (size_t)o.max_tokens) {
            size_t last = i - 1;
            st = make_chunk(&bd, &oc, first, last);
            if (st != RB_OK)
                break;
            /* overlap: trailing text units of the same section */
            size_t ov = i, ot = 0;
            if (u->kind == U_TEXT) {
                while (ov > first + 1) {
                    struct unit *p = &bd.us.u[ov - 1];
                    if (p->kind != U_TEXT || p->section != u->section ||
                        ot + p->tokens > (size_t)o.overlap_tokens ||
                        ot + p->tokens + u->tokens > (size_t)o.max_tokens)
                        break;
                    ot += p->tokens;
                    ov--;
                }
            }
            first = ov;
            tokens = ot;
            has_body = ov < i;
            if (u->kind == U_ROW && u->header.end > u->header.start)
                tokens += count(&bd, u->header.start, u->header.end);
        }
        if (!open) {
            first = i;
            tokens = 0;
            open = true;
            if (u->kind == U_ROW && u->header.end > u->header.start)
                tokens += count(&bd, u->header.start, u->header.end);
        }
        tokens += u->tokens;
        has_body = true;
    }
    if (st == RB_OK && open && bd.us.n)
        st = make_chunk(&bd, &oc, first, bd.us.n - 1);
done:
    free(bd.us.u);
    for (size_t i = 0; i < n_sections; i++)
        free(sections[i]);
    free(sections);
    if (st != RB_OK) {
        rb_ingest_chunks_free(out);
        if (err)
            rb_errmsg_set(err, st, "chunking failed: %s", rb_status_str(st));
    }
    return st;
}
