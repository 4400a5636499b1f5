/* Extractive answers: the sentences of the retrieved passages that best
 * support the question, scored with BM25 over sentences (idf from the
 * retrieved pool, CJK bigrams), plus a prior on the passage's retrieval rank.
 * Also the evidence measure used by cite-or-refuse (rb_answer_coverage). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"

/* ------------------------------------------------------- small string set */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

enum rb_status rb__termset_init(struct rb__termset *s, const struct rb_answer_terms *t)
{
    size_t cap = 16;
    while (cap < t->n * 2 + 1)
        cap *= 2;
    s->slot = calloc(cap, sizeof *s->slot);
    s->count = calloc(cap, sizeof *s->count);
    if (!s->slot || !s->count) {
        free(s->slot);
        free(s->count);
        return RB_ERR_NOMEM;
    }
    s->cap = cap;
    s->n = 0;
    s->total = t->n;
    for (size_t i = 0; i < t->n; i++) {
        size_t h = (size_t)hash_str(t->term[i]) & (cap - 1);
        while (s->slot[h] && strcmp(s->slot[h], t->term[i]) != 0)
            h = (h + 1) & (cap - 1);
        if (!s->slot[h]) {
            s->slot[h] = t->term[i]; /* borrowed from t */
            s->n++;
        }
        s->count[h]++;
    }
    return RB_OK;
}

size_t rb__termset_count(const struct rb__termset *s, const char *term)
{
    if (!s->cap)
        return 0;
    size_t h = (size_t)hash_str(term) & (s->cap - 1);
    while (s->slot[h]) {
        if (strcmp(s->slot[h], term) == 0)
            return s->count[h];
        h = (h + 1) & (s->cap - 1);
    }
    return 0;
}

void rb__termset_free(struct rb__termset *s)
{
    free(s->slot);
    free(s->count);
    memset(s, 0, sizeof *s);
}

/* Unique question terms (borrowed from t), in first-occurrence order. */
static size_t unique_terms(const struct rb_answer_terms *t, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(out[k], t->term[i]) == 0;
        if (!seen)
            out[n++] = t->term[i];
    }
    return n;
}

static double bm25_idf(size_t n_docs, size_t df)
{
    return log(1.0 + ((double)n_docs - (double)df + 0.5) / ((double)df + 0.5));
}

/* ----------------------------------------------------------------- coverage */

/* Coverage of question terms q (n_q) by one text's term set, weighted by idf
 * over the pool (df[k] of n_docs). */
static double coverage_of(const char **q, size_t n_q, const size_t *df, size_t n_docs,
                          const struct rb__termset *text)
{
    double have = 0, all = 0;
    for (size_t k = 0; k < n_q; k++) {
        /* +1 doc: a term no pool document has gets the highest weight */
        double w = bm25_idf(n_docs + 1, df[k]);
        all += w;
        if (rb__termset_count(text, q[k]))
            have += w;
    }
    return all > 0 ? have / all : 0;
}

double rb_answer_coverage(const char *question, const char *text,
                          const struct rb_answer_passage *pool, size_t n_pool)
{
    struct rb_answer_terms qt, tt;
    if (rb_answer_terms_extract(question, strlen(question), &qt) != RB_OK)
        return 0;
    if (rb_answer_terms_extract(text, strlen(text), &tt) != RB_OK) {
        rb_answer_terms_free(&qt);
        return 0;
    }
    double cov = 0;
    const char **q = rb_malloc_array(qt.n ? qt.n : 1, sizeof *q);
    size_t *df = rb_calloc_array(qt.n ? qt.n : 1, sizeof *df);
    struct rb__termset ts = {0};
    if (q && df && rb__termset_init(&ts, &tt) == RB_OK) {
        size_t n_q = unique_terms(&qt, q);
        for (size_t p = 0; p < n_pool; p++) {
            struct rb_answer_terms pt;
            struct rb__termset ps = {0};
            if (!pool[p].text ||
                rb_answer_terms_extract(pool[p].text, strlen(pool[p].text), &pt) != RB_OK)
                continue;
            if (rb__termset_init(&ps, &pt) == RB_OK) {
                for (size_t k = 0; k < n_q; k++)
                    df[k] += rb__termset_count(&ps, q[k]) > 0;
                rb__termset_free(&ps);
            }
            rb_answer_terms_free(&pt);
        }
        cov = coverage_of(q, n_q, df, n_pool, &ts);
    }
    rb__termset_free(&ts);
    free(q);
    free(df);
    rb_answer_terms_free(&qt);
    rb_answer_terms_free(&tt);
    return cov;
}

/* --------------------------------------------------------------- extraction */

struct cand {
    size_t passage;
    size_t start, end; /* byte span in the passage text */
    size_t hstart, hend; /* a table row's header row (hstart == hend: none) */
    bool is_header;      /* the first row of a table */
    struct rb_answer_terms terms;
    struct rb__termset set;
    double bm25;
    double score;
    double coverage;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = *(const struct cand *const *)a, *y = *(const struct cand *const *)b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    if (x->passage != y->passage)
        return x->passage < y->passage ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Jaccard overlap of two term sets. */
static double overlap(const struct cand *a, const struct cand *b)
{
    if (!a->set.n || !b->set.n)
        return 0;
    size_t inter = 0;
    for (size_t h = 0; h < a->set.cap; h++)
        if (a->set.slot[h] && rb__termset_count(&b->set, a->set.slot[h]))
            inter++;
    return (double)inter / (double)(a->set.n + b->set.n - inter);
}

/* "row (columns: a | b)" with the header row's non-empty cells. */
static char *with_header(const char *text, const struct cand *x, size_t len)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = rb_buf_append(&b, text + x->start, len);
    size_t n_cells = 0;
    const char *p = text + x->hstart, *end = text + x->hend;
    while (p < end && st == RB_OK) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        const char *ce = bar ? bar : end;
        const char *a = p, *z = ce;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if (z > a)
            st = rb_buf_printf(&b, "%s%.*s", n_cells++ ? " | " : " (columns: ", (int)(z - a), a);
        p = bar ? bar + 1 : end;
    }
    if (st == RB_OK && n_cells)
        st = rb_buf_append_str(&b, ")");
    if (st != RB_OK) {
        rb_buf_free(&b);
        return NULL;
    }
    return rb_buf_steal(&b);
}

enum rb_status rb_answer_extract(const char *question, const struct rb_answer_passage *passages,
                                 size_t n_passages, const struct rb_answer_extract_options *opts,
                                 struct rb_answer_extract *out)
{
    memset(out, 0, sizeof *out);
    if (!question)
        return RB_ERR_INVALID;
    struct rb_answer_extract_options o = {3, 800, 0.15, 0.55};
    if (opts) {
        if (opts->max_sentences)
            o.max_sentences = opts->max_sentences;
        if (opts->max_chars)
            o.max_chars = opts->max_chars;
        if (opts->rank_weight > 0)
            o.rank_weight = opts->rank_weight;
        if (opts->min_relative > 0)
            o.min_relative = opts->min_relative;
    }
    struct rb_answer_terms qt;
    enum rb_status st = rb_answer_terms_extract(question, strlen(question), &qt);
    if (st != RB_OK)
        return st;
    const char **q = rb_malloc_array(qt.n ? qt.n : 1, sizeof *q);
    size_t *df_sent = rb_calloc_array(qt.n ? qt.n : 1, sizeof *df_sent);
    size_t *df_pass = rb_calloc_array(qt.n ? qt.n : 1, sizeof *df_pass);
    struct cand *c = NULL;
    struct cand **order = NULL;
    struct rb__termset *pset = rb_calloc_array(n_passages ? n_passages : 1, sizeof *pset);
    struct rb_answer_terms *pterm = rb_calloc_array(n_passages ? n_passages : 1, sizeof *pterm);
    size_t n_c = 0, cap_c = 0;
    if (!q || !df_sent || !df_pass || !pset || !pterm) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    size_t n_q = unique_terms(&qt, q);

    /* Sentences of every passage, with their terms. */
    for (size_t p = 0; p < n_passages && st == RB_OK; p++) {
        const char *text = passages[p].text;
        if (!text)
            continue;
        size_t tl = strlen(text);
        if ((st = rb_answer_terms_extract(text, tl, &pterm[p])) != RB_OK ||
            (st = rb__termset_init(&pset[p], &pterm[p])) != RB_OK)
            break;
        for (size_t k = 0; k < n_q; k++)
            df_pass[k] += rb__termset_count(&pset[p], q[k]) > 0;
        size_t *spans = NULL, ns = 0;
        if ((st = rb_answer_split_sentences(text, tl, &spans, &ns)) != RB_OK)
            break;
        for (size_t s = 0; s < ns && st == RB_OK; s++) {
            if (n_c == cap_c) {
                size_t cap = cap_c ? cap_c * 2 : 64;
                struct cand *nc = realloc(c, cap * sizeof *nc);
                if (!nc) {
                    st = RB_ERR_NOMEM;
                    break;
                }
                c = nc;
                cap_c = cap;
            }
            struct cand *x = &c[n_c];
            memset(x, 0, sizeof *x);
            x->passage = p;
            x->start = spans[2 * s];
            x->end = spans[2 * s + 1];
            /* A table row ("Total | 24.9 | 25.4") means little without its
             * column headings: remember the first row of its table. */
            if (memchr(text + x->start, '|', x->end - x->start)) {
                size_t h = s;
                while (h > 0 && memchr(text + spans[2 * (h - 1)], '|',
                                       spans[2 * (h - 1) + 1] - spans[2 * (h - 1)]))
                    h--;
                if (h != s) {
                    x->hstart = spans[2 * h];
                    x->hend = spans[2 * h + 1];
                } else if (s + 1 < ns && memchr(text + spans[2 * (s + 1)], '|',
                                                spans[2 * (s + 1) + 1] - spans[2 * (s + 1)])) {
                    x->is_header = true; /* column headings: shown with the rows instead */
                }
            }
            if ((st = rb_answer_terms_extract(text + x->start, x->end - x->start, &x->terms)) !=
                RB_OK)
                break;
            if ((st = rb__termset_init(&x->set, &x->terms)) != RB_OK) {
                rb_answer_terms_free(&x->terms);
                break;
            }
            n_c++;
        }
        free(spans);
    }
    if (st != RB_OK)
        goto done;

    /* Passage-level coverage: the evidence measure for cite-or-refuse. */
    for (size_t p = 0; p < n_passages; p++) {
        if (!passages[p].text)
            continue;
        double cov = coverage_of(q, n_q, df_pass, n_passages, &pset[p]);
        if (cov > out->best_coverage)
            out->best_coverage = cov;
    }

    /* BM25 over sentences. */
    double avg_len = 0;
    for (size_t i = 0; i < n_c; i++) {
        avg_len += (double)c[i].terms.n;
        for (size_t k = 0; k < n_q; k++)
            df_sent[k] += rb__termset_count(&c[i].set, q[k]) > 0;
    }
    avg_len = n_c ? avg_len / (double)n_c : 1;
    if (avg_len < 1)
        avg_len = 1;
    const double k1 = 1.2, b = 0.75;
    double best_bm25 = 0;
    for (size_t i = 0; i < n_c; i++) {
        double s = 0;
        for (size_t k = 0; k < n_q; k++) {
            double tf = (double)rb__termset_count(&c[i].set, q[k]);
            if (tf == 0)
                continue;
            s += bm25_idf(n_c, df_sent[k]) * tf * (k1 + 1) /
                 (tf + k1 * (1 - b + b * (double)c[i].terms.n / avg_len));
        }
        c[i].bm25 = s;
        c[i].coverage = coverage_of(q, n_q, df_sent, n_c, &c[i].set);
        if (s > best_bm25)
            best_bm25 = s;
    }
    if (best_bm25 <= 0)
        goto done; /* no sentence shares a term with the question */
    for (size_t i = 0; i < n_c; i++) {
        double norm = c[i].bm25 / best_bm25;
        /* A fragment of one or two terms ("Total", a page number) supports nothing. */
        double brevity = c[i].terms.n < 3 ? 0.5 : 1.0;
        c[i].score = c[i].bm25 > 0 && !c[i].is_header
                         ? brevity * (norm + o.rank_weight / (1.0 + (double)c[i].passage))
                         : 0;
    }
    order = rb_malloc_array(n_c, sizeof *order);
    if (!order) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_c; i++)
        order[i] = &c[i];
    qsort(order, n_c, sizeof *order, cmp_cand);
    out->sentence = rb_calloc_array(o.max_sentences, sizeof *out->sentence);
    if (!out->sentence) {
        st = RB_ERR_NOMEM;
        goto done;
    }
    double top = order[0]->score;
    size_t chars = 0;
    struct cand *picked[64];
    size_t n_picked = 0;
    for (size_t i = 0; i < n_c && out->n < o.max_sentences && n_picked < 64; i++) {
        struct cand *x = order[i];
        if (x->score <= 0 || x->score < o.min_relative * top)
            break;
        bool dup = false;
        for (size_t k = 0; k < n_picked && !dup; k++)
            dup = overlap(x, picked[k]) > 0.6;
        if (dup)
            continue;
        size_t len = x->end - x->start;
        if (out->n > 0 && chars + len > o.max_chars)
            continue;
        const char *text = passages[x->passage].text;
        if (len > o.max_chars)
            len = rb_utf8_truncate(text + x->start, len, o.max_chars);
        struct rb_answer_sentence *s = &out->sentence[out->n];
        s->text = x->hend > x->hstart ? with_header(text, x, len) : rb_strndup(text + x->start, len);
        if (!s->text) {
            st = RB_ERR_NOMEM;
            goto done;
        }
        s->passage = x->passage;
        s->score = x->score;
        s->coverage = x->coverage;
        out->n++;
        chars += len;
        picked[n_picked++] = x;
    }

done:
    for (size_t i = 0; i < n_c; i++) {
        rb__termset_free(&c[i].set);
        rb_answer_terms_free(&c[i].terms);
    }
    for (size_t p = 0; pset && pterm && p < n_passages; p++) {
        rb__termset_free(&pset[p]);
        rb_answer_terms_free(&pterm[p]);
    }
    free(pset);
    free(pterm);
    free(c);
    free(order);
    free(q);
    free(df_sent);
    free(df_pass);
    rb_answer_terms_free(&qt);
    if (st != RB_OK)
        rb_answer_extract_free(out);
    return st;
}

void rb_answer_extract_free(struct rb_answer_extract *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->sentence[i].text);
    free(e->sentence);
    memset(e, 0, sizeof *e);
}
