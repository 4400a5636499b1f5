/* SentencePiece unigram segmentation: precompiled-charsmap normalisation and the
 * Viterbi best path over a byte trie of the vocabulary (see tokenizer-ugm.h).
 *
 * The behaviour follows SentencePiece's unigram model as the reference
 * implementation (llama.cpp's UGM tokenizer) reproduces it; the code is our own.
 */
#include "tokenizer-ugm.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/engine.h"

#define UGM_UNKNOWN_PENALTY 10.0f

bool rb__ivec_push(struct rb__ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->v, cap * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

/* A trie node: the children of a node are contiguous and sorted by label, so a
 * child is found by binary search. Built breadth-first from the sorted pieces. */
struct trie_node {
    int32_t value; /* token id ending here, or -1 */
    uint32_t first_child;
    uint16_t n_child;
    uint8_t label; /* byte on the edge into this node */
};

struct rb__ugm {
    struct trie_node *nodes;
    size_t n_nodes;
    uint32_t n_vocab;
    float *score;
    uint8_t *attr;
    bool has_user_defined;
    int32_t unk;
    double unk_score;
    bool byte_fallback;
    int32_t byte_id[256];
    bool add_dummy_prefix, remove_extra_ws;
    uint32_t *xcda; /* darts-clone units */
    size_t xcda_n;
    char *repl; /* NUL-terminated replacement strings */
    size_t repl_len;
};

/* ------------------------------------------------------------------ trie */

static const struct trie_node *trie_child(const struct rb__ugm *u, const struct trie_node *n,
                                          unsigned char c)
{
    size_t lo = n->first_child, hi = (size_t)n->first_child + n->n_child;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->nodes[mid].label < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < (size_t)n->first_child + n->n_child && u->nodes[lo].label == c)
        return &u->nodes[lo];
    return NULL;
}

struct sort_ctx {
    const struct rb__ugm_token *t;
};

static int cmp_piece(const void *a, const void *b, void *ctx)
{
    const struct rb__ugm_token *t = ((const struct sort_ctx *)ctx)->t;
    const struct rb__ugm_token *x = &t[*(const uint32_t *)a], *y = &t[*(const uint32_t *)b];
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, m);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x < y ? -1 : x > y; /* equal pieces: by id */
}

struct trie_task {
    uint32_t lo, hi; /* range of sorted pieces sharing this node's prefix */
    uint32_t depth;
};

static enum rb_status trie_build(struct rb__ugm *u, const struct rb__ugm_token *tok, uint32_t n)
{
    uint32_t *ids = rb_malloc_array(n ? n : 1, sizeof *ids);
    if (!ids)
        return RB_ERR_NOMEM;
    uint32_t m = 0;
    size_t bytes = 1;
    for (uint32_t i = 0; i < n; i++)
        if (tok[i].len &&
            (tok[i].attr & (RB_ENGINE_TOKEN_ATTR_NORMAL | RB_ENGINE_TOKEN_ATTR_USER_DEFINED |
                            RB_ENGINE_TOKEN_ATTR_UNUSED))) {
            ids[m++] = i;
            bytes += tok[i].len;
        }
    struct sort_ctx sc = {tok};
    qsort_r(ids, m, sizeof *ids, cmp_piece, &sc);
    if (bytes > UINT32_MAX) {
        free(ids);
        return RB_ERR_TOO_LARGE;
    }
    /* at most one node per piece byte, plus the root */
    u->nodes = rb_malloc_array(bytes, sizeof *u->nodes);
    struct trie_task *task = rb_malloc_array(bytes, sizeof *task);
    if (!u->nodes || !task) {
        free(ids);
        free(task);
        return RB_ERR_NOMEM;
    }
    u->nodes[0] = (struct trie_node){.value = -1};
    task[0] = (struct trie_task){0, m, 0};
    size_t count = 1;
    for (size_t i = 0; i < count; i++) {
        uint32_t lo = task[i].lo, hi = task[i].hi, d = task[i].depth;
        struct trie_node *nd = &u->nodes[i];
        if (lo < hi && tok[ids[lo]].len == d) /* sorted: the exact piece comes first */
            nd->value = (int32_t)ids[lo++];
        while (lo < hi && tok[ids[lo]].len == d) /* duplicates: the lowest id wins */
            lo++;
        nd->first_child = (uint32_t)count;
        nd->n_child = 0;
        while (lo < hi) {
            const unsigned char c = (unsigned char)tok[ids[lo]].text[d];
            uint32_t k = lo + 1;
            while (k < hi && (unsigned char)tok[ids[k]].text[d] == c)
                k++;
            u->nodes[count] = (struct trie_node){.value = -1, .label = c};
            task[count] = (struct trie_task){lo, k, d + 1};
            count++;
            nd->n_child++;
            lo = k;
        }
    }
    u->n_nodes = count;
    free(task);
    free(ids);
    return RB_OK;
}

/* ---------------------------------------------------------------- charsmap */

/* darts-clone unit fields */
static bool xcda_unit(const struct rb__ugm *u, size_t i, uint32_t *unit)
{
    if (i >= u->xcda_n)
        return false;
    *unit = u->xcda[i];
    return true;
}
static uint32_t unit_offset(uint32_t x)
{
    return (x >> 10) << ((x & (1u << 9)) >> 6);
}
static uint32_t unit_label(uint32_t x)
{
    return x & ((1u << 31) | 0xFFu);
}
static bool unit_has_leaf(uint32_t x)
{
    return (x >> 8) & 1u;
}
static uint32_t unit_value(uint32_t x)
{
    return x & ((1u << 31) - 1);
}

static enum rb_status charsmap_load(struct rb__ugm *u, const uint8_t *blob, size_t len,
                                    struct rb_errmsg *err)
{
    if (!blob || len == 0)
        return RB_OK;
    if (len < 4)
        return rb_errmsg_set(err, RB_ERR_CORRUPT, "precompiled charsmap is %zu bytes: too short",
                             len);
    const uint32_t trie_bytes = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 |
                                (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    if ((size_t)trie_bytes >= len - 4 || trie_bytes % 4)
        return rb_errmsg_set(err, RB_ERR_CORRUPT,
                             "precompiled charsmap: trie of %u bytes does not fit its %zu bytes "
                             "with replacement strings after it",
                             trie_bytes, len);
    u->xcda_n = trie_bytes / 4;
    u->repl_len = len - 4 - trie_bytes;
    u->xcda = rb_malloc_array(u->xcda_n ? u->xcda_n : 1, sizeof *u->xcda);
    u->repl = malloc(u->repl_len + 1);
    if (!u->xcda || !u->repl)
        return RB_ERR_NOMEM;
    for (size_t i = 0; i < u->xcda_n; i++) {
        const uint8_t *p = blob + 4 + 4 * i;
        u->xcda[i] =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    memcpy(u->repl, blob + 4 + trie_bytes, u->repl_len);
    u->repl[u->repl_len] = '\0'; /* bounds every replacement string */
    /* value units (bit 31) must point into the replacement strings */
    for (size_t i = 0; i < u->xcda_n; i++)
        if ((u->xcda[i] >> 31) && unit_value(u->xcda[i]) >= u->repl_len)
            return rb_errmsg_set(err, RB_ERR_CORRUPT,
                                 "precompiled charsmap: entry %zu points to offset %u outside its "
                                 "%zu bytes of replacement strings",
                                 i, unit_value(u->xcda[i]), u->repl_len);
    return RB_OK;
}

/* ---------------------------------------------------------------- create */

void rb__ugm_free(struct rb__ugm *u)
{
    if (!u)
        return;
    free(u->nodes);
    free(u->score);
    free(u->attr);
    free(u->xcda);
    free(u->repl);
    free(u);
}

enum rb_status rb__ugm_create(const struct rb__ugm_token *tokens, uint32_t n,
                              const struct rb__ugm_options *opt, struct rb__ugm **out,
                              struct rb_errmsg *err)
{
    *out = NULL;
    struct rb__ugm *u = calloc(1, sizeof *u);
    if (!u)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st;
    u->n_vocab = n;
    u->add_dummy_prefix = opt->add_dummy_prefix;
    u->remove_extra_ws = opt->remove_extra_whitespaces;
    u->score = rb_malloc_array(n ? n : 1, sizeof *u->score);
    u->attr = rb_malloc_array(n ? n : 1, 1);
    if (!u->score || !u->attr) {
        st = rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    float min_score = FLT_MAX;
    for (int b = 0; b < 256; b++)
        u->byte_id[b] = -1;
    for (uint32_t i = 0; i < n; i++) {
        u->score[i] = tokens[i].score;
        u->attr[i] = tokens[i].attr;
        if ((tokens[i].attr & RB_ENGINE_TOKEN_ATTR_NORMAL) && tokens[i].score < min_score)
            min_score = tokens[i].score;
        if (tokens[i].attr & RB_ENGINE_TOKEN_ATTR_USER_DEFINED)
            u->has_user_defined = true;
        unsigned v;
        char tail;
        if ((tokens[i].attr & RB_ENGINE_TOKEN_ATTR_BYTE) && tokens[i].len == 6 &&
            memcmp(tokens[i].text, "<0x", 3) == 0 && tokens[i].text[5] == '>') {
            char hex[3] = {tokens[i].text[3], tokens[i].text[4], 0};
            if (sscanf(hex, "%2x%c", &v, &tail) == 1 && v < 256 && u->byte_id[v] < 0)
                u->byte_id[v] = (int32_t)i;
        }
    }
    u->byte_fallback = true;
    for (int b = 0; b < 256; b++)
        u->byte_fallback = u->byte_fallback && u->byte_id[b] >= 0;
    u->unk_score = (double)min_score - UGM_UNKNOWN_PENALTY;
    u->unk = opt->unk >= 0 && (uint32_t)opt->unk < n ? opt->unk : -1;
    if (u->unk < 0 && !u->byte_fallback) {
        st = rb_errmsg_set(err, RB_ERR_CORRUPT,
                           "unigram vocabulary has neither an unknown token nor byte pieces");
        goto fail;
    }
    if ((st = trie_build(u, tokens, n)) != RB_OK) {
        rb_errmsg_set(err, st, "unigram vocabulary: %s", rb_status_str(st));
        goto fail;
    }
    if ((st = charsmap_load(u, opt->charsmap, opt->charsmap_len, err)) != RB_OK) {
        if (st == RB_ERR_NOMEM)
            rb_errmsg_set(err, st, "out of memory");
        goto fail;
    }
    *out = u;
    return RB_OK;
fail:
    rb__ugm_free(u);
    return st;
}

/* ------------------------------------------------------------- normalise */

/* Length of the valid UTF-8 sequence at s (the reference's lenient check: lead byte
 * and continuation bytes only), or 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    const unsigned char c = s[0];
    size_t l;
    if (!(c & 0x80))
        return 1;
    if ((c & 0xE0) == 0xC0)
        l = 2;
    else if ((c & 0xF0) == 0xE0)
        l = 3;
    else if ((c & 0xF8) == 0xF0)
        l = 4;
    else
        return 0;
    if (l > n)
        return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return l;
}

/* The normalisation of the input prefix at text[off]: replacement (rep, rep_len) for
 * `consumed` input bytes. */
static void normalize_prefix(const struct rb__ugm *u, const char *text, size_t len, size_t off,
                             const char **rep, size_t *rep_len, size_t *consumed)
{
    const unsigned char *s = (const unsigned char *)text;
    if (u->has_user_defined) {
        size_t best = 0;
        const struct trie_node *nd = &u->nodes[0];
        for (size_t p = off; p < len && nd; p++) {
            nd = trie_child(u, nd, s[p]);
            if (nd && nd->value >= 0 && (u->attr[nd->value] & RB_ENGINE_TOKEN_ATTR_USER_DEFINED))
                best = p - off + 1;
        }
        if (best) {
            *rep = text + off;
            *rep_len = *consumed = best;
            return;
        }
    }
    size_t best_len = 0;
    uint32_t best_val = 0;
    uint32_t unit;
    if (u->xcda_n && xcda_unit(u, 0, &unit)) {
        size_t node = unit_offset(unit);
        for (size_t p = off; p < len; p++) {
            const unsigned char c = s[p];
            if (c == 0)
                break;
            node ^= c;
            if (!xcda_unit(u, node, &unit) || unit_label(unit) != c)
                break;
            const bool leaf = unit_has_leaf(unit);
            node ^= unit_offset(unit);
            if (leaf) {
                uint32_t vu;
                if (!xcda_unit(u, node, &vu))
                    break;
                if (unit_value(vu) < u->repl_len) {
                    best_len = p - off + 1;
                    best_val = unit_value(vu);
                }
            }
        }
    }
    if (best_len) {
        *rep = u->repl + best_val;
        *rep_len = strlen(*rep); /* repl is NUL-terminated at repl_len */
        *consumed = best_len;
        return;
    }
    size_t l = utf8_valid_len(s + off, len - off);
    if (l) {
        *rep = text + off;
        *rep_len = *consumed = l;
    } else {
        *rep = "\xEF\xBF\xBD";
        *rep_len = 3;
        *consumed = 1;
    }
}

static enum rb_status normalize(const struct rb__ugm *u, const char *text, size_t len,
                                struct rb_buf *out)
{
    static const char space[] = "\xE2\x96\x81";
    bool space_prepended = false, in_word = false;
    for (size_t off = 0; off < len;) {
        const char *rep;
        size_t rep_len, consumed;
        normalize_prefix(u, text, len, off, &rep, &rep_len, &consumed);
        for (size_t i = 0; i < rep_len; i++) {
            enum rb_status st = RB_OK;
            if (rep[i] != ' ') {
                if (!in_word) {
                    in_word = true;
                    if ((u->add_dummy_prefix && !space_prepended) || u->remove_extra_ws) {
                        st = rb_buf_append(out, space, 3);
                        space_prepended = true;
                    }
                }
                if (st == RB_OK)
                    st = rb_buf_append(out, &rep[i], 1);
            } else {
                in_word = false;
                if (!u->remove_extra_ws)
                    st = rb_buf_append(out, space, 3);
            }
            if (st != RB_OK)
                return st;
        }
        off += consumed;
    }
    return RB_OK;
}

enum rb_status rb__ugm_normalize(const struct rb__ugm *u, const char *text, size_t len, char **norm,
                                 size_t *norm_len)
{
    *norm = NULL;
    *norm_len = 0;
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = normalize(u, text, len, &b);
    if (st == RB_OK)
        st = rb_buf_append(&b, "", 0);
    if (st != RB_OK) {
        rb_buf_free(&b);
        return st;
    }
    *norm_len = b.len;
    *norm = rb_buf_steal(&b);
    return RB_OK;
}

/* ----------------------------------------------------------------- Viterbi */

struct best {
    double score;
    size_t start; /* where the last piece of the best path to here begins */
    int32_t id;   /* that piece; -1: the unknown code point */
};

static size_t lead_len(unsigned char c)
{
    static const uint8_t l[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return l[c >> 4];
}

/* Fills best[0..n] for the normalised string s. */
static void viterbi(const struct rb__ugm *u, const unsigned char *s, size_t n, struct best *best)
{
    best[0] = (struct best){0.0, 0, -1};
    for (size_t i = 1; i <= n; i++)
        best[i] = (struct best){-DBL_MAX, 0, -1};
    for (size_t off = 0; off < n;) {
        size_t cl = lead_len(s[off]);
        if (cl > n - off)
            cl = n - off;
        const double base = best[off].score;
        bool single = false;
        const struct trie_node *nd = &u->nodes[0];
        for (size_t p = off; p < n; p++) {
            nd = trie_child(u, nd, s[p]);
            if (!nd)
                break;
            if (nd->value < 0)
                continue;
            const size_t end = p + 1;
            if (end - off == cl)
                single = true;
            const double sc = (u->attr[nd->value] & RB_ENGINE_TOKEN_ATTR_USER_DEFINED)
                                  ? 0.0
                                  : (double)u->score[nd->value];
            if (base + sc > best[end].score)
                best[end] = (struct best){base + sc, off, nd->value};
        }
        if (!single && base + u->unk_score > best[off + cl].score)
            best[off + cl] = (struct best){base + u->unk_score, off, -1};
        off += cl;
    }
}

enum rb_status rb__ugm_best_score(const struct rb__ugm *u, const char *text, size_t len,
                                  double *score)
{
    *score = 0;
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = normalize(u, text, len, &b);
    if (st != RB_OK || b.len == 0) {
        rb_buf_free(&b);
        return st;
    }
    struct best *best = rb_malloc_array(b.len + 1, sizeof *best);
    if (!best) {
        rb_buf_free(&b);
        return RB_ERR_NOMEM;
    }
    viterbi(u, (const unsigned char *)b.data, b.len, best);
    *score = best[b.len].score;
    free(best);
    rb_buf_free(&b);
    return RB_OK;
}

enum rb_status rb__ugm_encode(const struct rb__ugm *u, const char *text, size_t len,
                              struct rb__ivec *out)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = normalize(u, text, len, &b);
    const size_t n = b.len;
    if (st != RB_OK || n == 0) {
        rb_buf_free(&b);
        return st;
    }
    const unsigned char *s = (const unsigned char *)b.data;
    struct best *best = rb_malloc_array(n + 1, sizeof *best);
    /* ends of the path's pieces, collected backwards */
    size_t *ends = rb_malloc_array(n + 1, sizeof *ends);
    if (!best || !ends) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    viterbi(u, s, n, best);
    size_t k = 0;
    for (size_t end = n; end > 0; end = best[end].start)
        ends[k++] = end;
    bool prev_unknown = false;
    while (k-- > 0 && st == RB_OK) {
        const struct best *bt = &best[ends[k]];
        if (bt->id >= 0) {
            prev_unknown = false;
            if (!rb__ivec_push(out, bt->id))
                st = RB_ERR_NOMEM;
        } else if (u->byte_fallback) {
            for (size_t i = bt->start; i < ends[k] && st == RB_OK; i++)
                if (!rb__ivec_push(out, u->byte_id[s[i]]))
                    st = RB_ERR_NOMEM;
        } else {
            if (!prev_unknown && !rb__ivec_push(out, u->unk))
                st = RB_ERR_NOMEM;
            prev_unknown = true;
        }
    }
done:
    free(best);
    free(ends);
    rb_buf_free(&b);
    return st;
}
