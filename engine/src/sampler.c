/* Token sampling and the streaming emitter. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ RNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro(uint64_t *s)
{
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in [0, 1) with 53 random bits */
static double uniform(uint64_t *s)
{
    return (double)(xoshiro(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ============================================================ sampler */

enum rb_status rb__sampler_init(struct rb__sampler *s, const struct rb_engine_gen_params *p,
                                int n_vocab, int n_ctx)
{
    memset(s, 0, sizeof *s);
    s->params = *p;
    s->params.stop = NULL;
    s->params.n_stop = 0;
    s->n_vocab = n_vocab;
    uint64_t seed = p->seed;
    for (int i = 0; i < 4; i++)
        s->s[i] = splitmix64(&seed);
    int cap = p->repeat_last_n < 0 ? n_ctx : p->repeat_last_n;
    if (cap < 0)
        cap = 0;
    s->hist_cap = cap;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->hist = cap ? malloc((size_t)cap * sizeof *s->hist) : NULL;
    if (!s->cand || !s->counts || (cap && !s->hist)) {
        rb__sampler_free(s);
        return RB_ERR_NOMEM;
    }
    return RB_OK;
}

void rb__sampler_free(struct rb__sampler *s)
{
    free(s->cand);
    free(s->counts);
    free(s->hist);
    s->cand = NULL;
    s->counts = NULL;
    s->hist = NULL;
}

void rb__sampler_accept(struct rb__sampler *s, int32_t tok)
{
    if (!s->hist_cap || tok < 0 || tok >= s->n_vocab)
        return;
    if (s->hist_n == s->hist_cap) { /* drop the oldest */
        const int32_t old = s->hist[s->hist_pos];
        if (s->counts[old])
            s->counts[old]--;
    } else {
        s->hist_n++;
    }
    s->hist[s->hist_pos] = tok;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->counts[tok] < UINT16_MAX)
        s->counts[tok]++;
}

static int cmp_cand_desc(const void *a, const void *b)
{
    const struct rb__cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id - y->id; /* deterministic order for ties */
}

/* min-heap on (logit, then higher id = smaller) for top-k selection */
static bool cand_less(const struct rb__cand *a, const struct rb__cand *b)
{
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static void sift_down(struct rb__cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_less(&h[l], &h[m]))
            m = l;
        if (r < n && cand_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        const struct rb__cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

int32_t rb__sampler_sample(struct rb__sampler *s, const float *logits)
{
    const struct rb_engine_gen_params *p = &s->params;
    const int nv = s->n_vocab;
    struct rb__cand *c = s->cand;
    const bool penalize = s->hist_n > 0 && (p->repeat_penalty != 1.0f ||
                                            p->presence_penalty != 0.0f ||
                                            p->frequency_penalty != 0.0f);
    for (int i = 0; i < nv; i++) {
        float l = logits[i];
        if (penalize && s->counts[i]) {
            if (p->repeat_penalty > 0 && p->repeat_penalty != 1.0f)
                l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            l -= (float)s->counts[i] * p->frequency_penalty + p->presence_penalty;
        }
        c[i].id = i;
        c[i].logit = isnan(l) ? -INFINITY : l;
    }
    if (p->temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < nv; i++)
            if (c[i].logit > c[best].logit)
                best = i;
        return c[best].id;
    }
    int n = nv;
    const int k = p->top_k > 0 && p->top_k < nv ? p->top_k : nv;
    if (k < nv) {
        /* top-k by a min-heap of size k over the vocabulary: O(nv log k) */
        for (int i = k / 2 - 1; i >= 0; i--)
            sift_down(c, k, i);
        for (int i = k; i < nv; i++) {
            if (c[i].logit > c[0].logit || (c[i].logit == c[0].logit && c[i].id < c[0].id)) {
                c[0] = c[i];
                sift_down(c, k, 0);
            }
        }
        n = k;
    } else if (p->temperature <= 1.0f) {
        /* candidates more than 30 nats below the best carry < 1e-13 of the mass each at
         * temperature <= 1: drop them before sorting (exact for every practical purpose) */
        float mxl = -INFINITY;
        for (int i = 0; i < nv; i++)
            mxl = c[i].logit > mxl ? c[i].logit : mxl;
        int m = 0;
        for (int i = 0; i < nv; i++)
            if (c[i].logit >= mxl - 30.0f)
                c[m++] = c[i];
        n = m;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_cand_desc);
    /* softmax over the survivors (at temperature 1 for top-p / min-p, as the reference) */
    const float mx = c[0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - mx);
        sum += c[i].p;
    }
    for (int i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / sum);
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        const float thr = c[0].p * p->min_p;
        int keep = 1;
        while (keep < n && c[keep].p >= thr)
            keep++;
        n = keep;
    }
    /* temperature, then draw */
    sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - mx) / p->temperature);
        sum += c[i].p;
    }
    double r = uniform(s->s) * sum;
    for (int i = 0; i < n; i++) {
        r -= c[i].p;
        if (r < 0)
            return c[i].id;
    }
    return c[n - 1].id;
}

/* ============================================================ emitter */

enum rb_status rb__emitter_init(struct rb__emitter *e, const char *const *stop, size_t n_stop,
                                rb_engine_token_fn cb, void *user, bool keep_all)
{
    memset(e, 0, sizeof *e);
    rb_buf_init(&e->pending, 0);
    rb_buf_init(&e->all, 0);
    e->keep_all = keep_all;
    e->cb = cb;
    e->user = user;
    if (n_stop) {
        e->stop = calloc(n_stop, sizeof *e->stop);
        if (!e->stop)
            return RB_ERR_NOMEM;
        for (size_t i = 0; i < n_stop; i++) {
            if (!stop[i] || !stop[i][0])
                continue; /* empty stop strings never match */
            e->stop[e->n_stop] = rb_strdup(stop[i]);
            if (!e->stop[e->n_stop])
                return RB_ERR_NOMEM;
            e->n_stop++;
        }
    }
    return RB_OK;
}

void rb__emitter_free(struct rb__emitter *e)
{
    for (size_t i = 0; i < e->n_stop; i++)
        free(e->stop[i]);
    free(e->stop);
    rb_buf_free(&e->pending);
    rb_buf_free(&e->all);
    memset(e, 0, sizeof *e);
}

static enum rb_status release(struct rb__emitter *e, size_t n)
{
    if (n == 0)
        return RB_OK;
    if (e->keep_all) {
        enum rb_status st = rb_buf_append(&e->all, e->pending.data, n);
        if (st != RB_OK)
            return st;
    }
    if (e->cb && !e->cancelled && !e->cb(e->user, e->pending.data, n))
        e->cancelled = true;
    memmove(e->pending.data, e->pending.data + n, e->pending.len - n);
    e->pending.len -= n;
    if (e->pending.data)
        e->pending.data[e->pending.len] = 0;
    return RB_OK;
}

/* Bytes at the end of s[0..len) that form an incomplete UTF-8 sequence. */
static size_t utf8_incomplete_tail(const char *s, size_t len)
{
    size_t i = len, back = 0;
    while (i > 0 && back < 4) {
        const unsigned char c = (unsigned char)s[i - 1];
        back++;
        i--;
        if ((c & 0xC0) != 0x80) { /* a lead byte (or ASCII) */
            size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                         : (c & 0xF8) == 0xF0 ? 4 : 1;
            return need > back ? back : 0;
        }
    }
    return 0; /* only continuation bytes: invalid, release them */
}

enum rb_status rb__emitter_push(struct rb__emitter *e, const char *bytes, size_t len)
{
    if (e->stopped || e->cancelled)
        return RB_OK;
    enum rb_status st = rb_buf_append(&e->pending, bytes, len);
    if (st != RB_OK)
        return st;
    const char *d = e->pending.data;
    const size_t n = e->pending.len;
    /* earliest complete stop string */
    size_t cut = SIZE_MAX;
    for (size_t i = 0; i < e->n_stop; i++) {
        const char *f = memmem(d, n, e->stop[i], strlen(e->stop[i]));
        if (f && (size_t)(f - d) < cut)
            cut = (size_t)(f - d);
    }
    if (cut != SIZE_MAX) {
        e->stopped = true;
        return release(e, cut);
    }
    /* hold back the longest suffix that could begin a stop string */
    size_t hold = 0;
    for (size_t i = 0; i < e->n_stop; i++) {
        const size_t sl = strlen(e->stop[i]);
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > hold; k--)
            if (memcmp(d + n - k, e->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    const size_t tail = utf8_incomplete_tail(d, n - hold);
    return release(e, n - hold - tail);
}

enum rb_status rb__emitter_flush(struct rb__emitter *e)
{
    if (e->stopped || e->cancelled || e->pending.len == 0)
        return RB_OK;
    const size_t tail = utf8_incomplete_tail(e->pending.data, e->pending.len);
    if (tail) {
        e->pending.len -= tail;
        enum rb_status st = rb_buf_append(&e->pending, "\xEF\xBF\xBD", 3);
        if (st != RB_OK)
            return st;
    }
    return release(e, e->pending.len);
}
