/* CPU kernels: scalar reference row operations, SIMD dispatch, thread pool, matmul. */
#include "kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "ggml-types.h"
#include "quant-block.h"

/* ============================================================ scalar row operations */

static void act_f32(const float *x, void *y, int64_t n)
{
    memcpy(y, x, (size_t)n * sizeof(float));
}
static void act_f16(const float *x, void *y, int64_t n)
{
    rb_half *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = rb_fp32_to_fp16(x[i]);
}
static void act_bf16(const float *x, void *y, int64_t n)
{
    rb_bf16 *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = rb_fp32_to_bf16(x[i]);
}
static void act_q8_0(const float *x, void *y, int64_t n)
{
    struct rb_block_q8_0 *b = y;
    for (int64_t i = 0; i < n / RB_QB; i++)
        rb_quant_q8_0(x + i * RB_QB, b + i);
}
static void act_q8_1(const float *x, void *y, int64_t n)
{
    struct rb_block_q8_1 *b = y;
    for (int64_t i = 0; i < n / RB_QB; i++)
        rb_quant_q8_1(x + i * RB_QB, b + i);
}
static void act_q8_k(const float *x, void *y, int64_t n)
{
    struct rb_block_q8_k *b = y;
    for (int64_t i = 0; i < n / RB_QBK; i++)
        rb_quant_q8_k(x + i * RB_QBK, b + i);
}

static float dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    double s = 0; /* scalar reference: accumulate in double */
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * y[i];
    return (float)s;
}
static float dot_f16(int64_t n, const void *w, const void *a)
{
    const rb_half *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(rb_fp16_to_fp32(x[i]) * rb_fp16_to_fp32(y[i]));
    return (float)s;
}
static float dot_bf16(int64_t n, const void *w, const void *a)
{
    const rb_bf16 *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(rb_bf16_to_fp32(x[i]) * rb_bf16_to_fp32(y[i]));
    return (float)s;
}

#define RB_DOT_BLOCKS(name, wt, at, fn, bs)                                                        \
    static float name(int64_t n, const void *w, const void *a)                                    \
    {                                                                                              \
        const wt *x = w;                                                                           \
        const at *y = a;                                                                           \
        float s = 0;                                                                               \
        for (int64_t i = 0; i < n / (bs); i++)                                                     \
            s += fn(x + i, y + i);                                                                 \
        return s;                                                                                  \
    }
RB_DOT_BLOCKS(dot_q8_0, struct rb_block_q8_0, struct rb_block_q8_0, rb_dot_q8_0_q8_0, RB_QB)
RB_DOT_BLOCKS(dot_q4_0, struct rb_block_q4_0, struct rb_block_q8_0, rb_dot_q4_0_q8_0, RB_QB)
RB_DOT_BLOCKS(dot_q4_1, struct rb_block_q4_1, struct rb_block_q8_1, rb_dot_q4_1_q8_1, RB_QB)
RB_DOT_BLOCKS(dot_q5_0, struct rb_block_q5_0, struct rb_block_q8_0, rb_dot_q5_0_q8_0, RB_QB)
RB_DOT_BLOCKS(dot_q4_k, struct rb_block_q4_k, struct rb_block_q8_k, rb_dot_q4_k_q8_k, RB_QBK)
RB_DOT_BLOCKS(dot_q5_k, struct rb_block_q5_k, struct rb_block_q8_k, rb_dot_q5_k_q8_k, RB_QBK)
RB_DOT_BLOCKS(dot_q6_k, struct rb_block_q6_k, struct rb_block_q8_k, rb_dot_q6_k_q8_k, RB_QBK)

static void deq_f32(const void *w, float *y, int64_t n)
{
    memcpy(y, w, (size_t)n * sizeof(float));
}
static void deq_f16(const void *w, float *y, int64_t n)
{
    const rb_half *x = w;
    for (int64_t i = 0; i < n; i++)
        y[i] = rb_fp16_to_fp32(x[i]);
}
static void deq_bf16(const void *w, float *y, int64_t n)
{
    const rb_bf16 *x = w;
    for (int64_t i = 0; i < n; i++)
        y[i] = rb_bf16_to_fp32(x[i]);
}
#define RB_DEQ_BLOCKS(name, wt, fn, bs)                                                            \
    static void name(const void *w, float *y, int64_t n)                                           \
    {                                                                                              \
        const wt *x = w;                                                                           \
        for (int64_t i = 0; i < n / (bs); i++)                                                     \
            fn(x + i, y + i * (bs));                                                               \
    }
RB_DEQ_BLOCKS(deq_q8_0, struct rb_block_q8_0, rb_dequant_q8_0, RB_QB)
RB_DEQ_BLOCKS(deq_q4_0, struct rb_block_q4_0, rb_dequant_q4_0, RB_QB)
RB_DEQ_BLOCKS(deq_q4_1, struct rb_block_q4_1, rb_dequant_q4_1, RB_QB)
RB_DEQ_BLOCKS(deq_q5_0, struct rb_block_q5_0, rb_dequant_q5_0, RB_QB)
RB_DEQ_BLOCKS(deq_q4_k, struct rb_block_q4_k, rb_dequant_q4_k, RB_QBK)
RB_DEQ_BLOCKS(deq_q5_k, struct rb_block_q5_k, rb_dequant_q5_k, RB_QBK)
RB_DEQ_BLOCKS(deq_q6_k, struct rb_block_q6_k, rb_dequant_q6_k, RB_QBK)

#define OPS(t, at, bl, wb, abl, ab, q, d, dq)                                                      \
    {RB_GGML_TYPE_##t, RB_GGML_TYPE_##at, bl, wb, abl, ab, q, d, dq, NULL, NULL}
static const struct rb_type_ops scalar_ops[] = {
    OPS(F32, F32, 1, 4, 1, 4, act_f32, dot_f32, deq_f32),
    OPS(F16, F16, 1, 2, 1, 2, act_f16, dot_f16, deq_f16),
    OPS(BF16, BF16, 1, 2, 1, 2, act_bf16, dot_bf16, deq_bf16),
    OPS(Q8_0, Q8_0, 32, 34, 32, 34, act_q8_0, dot_q8_0, deq_q8_0),
    OPS(Q4_0, Q8_0, 32, 18, 32, 34, act_q8_0, dot_q4_0, deq_q4_0),
    OPS(Q4_1, Q8_1, 32, 20, 32, 36, act_q8_1, dot_q4_1, deq_q4_1),
    OPS(Q5_0, Q8_0, 32, 22, 32, 34, act_q8_0, dot_q5_0, deq_q5_0),
    OPS(Q4_K, Q8_K, 256, 144, 256, 292, act_q8_k, dot_q4_k, deq_q4_k),
    OPS(Q5_K, Q8_K, 256, 176, 256, 292, act_q8_k, dot_q5_k, deq_q5_k),
    OPS(Q6_K, Q8_K, 256, 210, 256, 292, act_q8_k, dot_q6_k, deq_q6_k),
};
#define N_OPS (sizeof scalar_ops / sizeof scalar_ops[0])

static struct rb_type_ops level_ops[3][N_OPS];
static enum rb_simd g_level;
static enum rb_simd g_supported;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static rb_axpy_f16_fn g_axpy_f16_simd;

void rb__axpy_f16(float *y, float a, const uint16_t *x, int64_t n)
{
    if (g_axpy_f16_simd && g_level >= RB_SIMD_AVX2) {
        g_axpy_f16_simd(y, a, x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] += a * rb_fp16_to_fp32(x[i]);
}

static rb_attn_scores_fn g_attn_scores_simd;
static rb_attn_values_fn g_attn_values_simd;

void rb__attn_scores_f16(const float *q, const uint16_t *k, size_t stride, int n, int hd,
                         float scale, float *out)
{
    if (g_attn_scores_simd && g_level >= RB_SIMD_AVX512 && hd % 16 == 0 && hd <= 256) {
        g_attn_scores_simd(q, k, stride, n, hd, scale, out);
        return;
    }
    /* the row dot of the level in use, on the F16-rounded query */
    const struct rb_type_ops *f16 = rb__type_ops(RB_GGML_TYPE_F16);
    rb_half qh[1024];
    for (int i = 0; i < hd && i < 1024; i++)
        qh[i] = rb_fp32_to_fp16(q[i]);
    for (int p = 0; p < n; p++)
        out[p] = f16->vec_dot(hd, k + (size_t)p * stride, qh) * scale;
}

void rb__attn_values_f16(const float *w, const uint16_t *v, size_t stride, int n, int hd,
                         float *acc)
{
    if (g_attn_values_simd && g_level >= RB_SIMD_AVX512 && hd % 16 == 0) {
        g_attn_values_simd(w, v, stride, n, hd, acc);
        return;
    }
    memset(acc, 0, (size_t)hd * sizeof(float));
    for (int p = 0; p < n; p++)
        rb__axpy_f16(acc, w[p], v + (size_t)p * stride, hd);
}

static void init_ops(void)
{
    g_supported = RB_SIMD_SCALAR;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        g_supported = RB_SIMD_AVX2;
    if (g_supported == RB_SIMD_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        g_supported = RB_SIMD_AVX512;
#endif
    g_level = g_supported;
    if (g_supported >= RB_SIMD_AVX2)
        g_axpy_f16_simd = rb__avx2_axpy_f16();
    if (g_supported >= RB_SIMD_AVX512 && __builtin_cpu_supports("avx512dq")) {
        g_attn_scores_simd = rb__avx512_attn_scores();
        g_attn_values_simd = rb__avx512_attn_values();
    }
    const char *env = getenv("RAGBOX_SIMD");
    if (env) {
        enum rb_simd want = g_supported;
        if (strcmp(env, "scalar") == 0)
            want = RB_SIMD_SCALAR;
        else if (strcmp(env, "avx2") == 0)
            want = RB_SIMD_AVX2;
        else if (strcmp(env, "avx512") == 0)
            want = RB_SIMD_AVX512;
        g_level = want < g_supported ? want : g_supported;
    }
    for (size_t i = 0; i < N_OPS; i++) {
        level_ops[0][i] = scalar_ops[i];
        level_ops[1][i] = scalar_ops[i];
        level_ops[2][i] = scalar_ops[i];
        if (g_supported >= RB_SIMD_AVX2) {
            rb_vec_dot_fn f = rb__avx2_vec_dot(scalar_ops[i].type);
            if (f) {
                level_ops[1][i].vec_dot = f;
                level_ops[2][i].vec_dot = f;
            }
            rb_vec_dot4_fn f4 = rb__avx2_vec_dot4(scalar_ops[i].type);
            level_ops[1][i].vec_dot4 = f4;
            level_ops[2][i].vec_dot4 = f4;
        }
        if (g_supported >= RB_SIMD_AVX512) {
            rb_vec_dot_fn f = rb__avx512_vec_dot(scalar_ops[i].type);
            if (f)
                level_ops[2][i].vec_dot = f;
            level_ops[2][i].gemm = rb__avx512_gemm(scalar_ops[i].type);
        }
    }
}

enum rb_simd rb__simd_level(void)
{
    pthread_once(&g_once, init_ops);
    return g_level;
}

enum rb_simd rb__simd_supported(void)
{
    pthread_once(&g_once, init_ops);
    return g_supported;
}

const char *rb__simd_name(enum rb_simd s)
{
    return s == RB_SIMD_AVX512 ? "avx512" : s == RB_SIMD_AVX2 ? "avx2" : "scalar";
}

const struct rb_type_ops *rb__type_ops_at(uint32_t type, enum rb_simd level)
{
    pthread_once(&g_once, init_ops);
    if (level > g_supported)
        level = g_supported;
    for (size_t i = 0; i < N_OPS; i++)
        if (scalar_ops[i].type == type)
            return &level_ops[level][i];
    return NULL;
}

const struct rb_type_ops *rb__type_ops(uint32_t type)
{
    return rb__type_ops_at(type, rb__simd_level());
}

size_t rb__act_row_bytes(const struct rb_type_ops *ops, int64_t n)
{
    return (size_t)(n / ops->act_blck) * ops->act_bytes;
}

float rb__dot_f32(const float *a, const float *b, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void rb__axpy_f32(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

double rb__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ============================================================ thread pool
 * Workers spin briefly on a generation counter (a decode step issues hundreds of
 * small jobs; a condition-variable wake per job would cost more than the job), then
 * sleep on the condition variable.
 *
 * Jobs claim their work dynamically (atomic counters), so any thread may do any part
 * and the caller never waits for a worker that has not started: `state` holds the
 * number of workers inside the current job plus the CLOSED bit. A worker enters only
 * while the job is open (CAS increment); the caller, once its own loop runs dry, closes
 * the job and waits only for the workers inside. fn/ctx are written only while the
 * job is closed and empty, and published by the release store that reopens it. */
#define POOL_CLOSED (1 << 30)
struct rb_scratch {
    void *p;
    size_t cap;
    char pad[64 - sizeof(void *) - sizeof(size_t)]; /* one cache line per slot */
};
struct rb_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int state;
    atomic_bool stop;
    rb_pool_fn fn;
    void *ctx;
    struct rb_scratch *scratch; /* n + 1 slots */
};

struct rb_worker_arg {
    struct rb_pool *p;
    int ith;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

static void *worker_main(void *arg)
{
    struct rb_worker_arg *wa = arg;
    struct rb_pool *p = wa->p;
    const int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load(&p->stop))
                return NULL;
            if (++spins < 20000) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        int v = atomic_load_explicit(&p->state, memory_order_acquire);
        bool entered = false;
        while (!(v & POOL_CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&p->state, &v, v + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                entered = true;
                break;
            }
        }
        if (!entered)
            continue; /* that job is over: its work was done by others */
        p->fn(p->ctx, ith, p->n);
        atomic_fetch_sub_explicit(&p->state, 1, memory_order_acq_rel);
    }
}

enum rb_status rb__pool_create(int n_threads, struct rb_pool **out)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > 256)
        n_threads = 256;
    struct rb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return RB_ERR_NOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->state, POOL_CLOSED);
    atomic_init(&p->stop, false);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->scratch = calloc((size_t)n_threads + 1, sizeof *p->scratch);
    if (!p->threads || !p->scratch) {
        free(p->threads);
        free(p->scratch);
        free(p);
        return RB_ERR_NOMEM;
    }
    for (int i = 1; i < n_threads; i++) {
        struct rb_worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->ith = i;
        }
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i; /* only i-1 workers exist */
            rb__pool_free(p);
            return RB_ERR_NOMEM;
        }
    }
    *out = p;
    return RB_OK;
}

void rb__pool_free(struct rb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    for (int i = 0; i <= p->n; i++)
        free(p->scratch[i].p);
    free(p->scratch);
    free(p->threads);
    free(p);
}

void *rb__pool_scratch(struct rb_pool *p, int ith, size_t bytes)
{
    if (!p || ith < 0 || ith > p->n)
        return NULL;
    struct rb_scratch *s = &p->scratch[ith];
    if (s->cap < bytes) {
        free(s->p);
        s->cap = 0;
        const size_t want = (bytes + 4095) & ~(size_t)4095;
        s->p = aligned_alloc(64, want);
        if (!s->p)
            return NULL;
        s->cap = want;
    }
    return s->p;
}

int rb__pool_size(const struct rb_pool *p)
{
    return p ? p->n : 1;
}

void rb__pool_run(struct rb_pool *p, rb_pool_fn fn, void *ctx)
{
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    /* the job is closed and empty here (see the invariant above) */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->state, 0, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    atomic_fetch_or_explicit(&p->state, POOL_CLOSED, memory_order_acq_rel);
    /* wait for the workers inside (they are finishing claimed work) */
    for (int spins = 0;
         (atomic_load_explicit(&p->state, memory_order_acquire) & ~POOL_CLOSED) != 0; spins++) {
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
}

/* ============================================================ matmul */

struct matmul_job {
    const struct rb_type_ops *ops;
    const uint8_t *W;
    size_t w_row_bytes;
    int64_t n_rows, n_cols;
    const uint8_t *act;
    size_t act_stride;
    int n_tok;
    float *out;
    int64_t out_stride;
    int64_t chunk;       /* rows per claim */
    atomic_llong next;   /* next unclaimed row */
};

static void matmul_rows(const struct matmul_job *j, int64_t r0, int64_t r1)
{
    const rb_vec_dot_fn dot = j->ops->vec_dot;
    const rb_vec_dot4_fn dot4 = j->ops->vec_dot4;
    /* blocks of rows x all tokens: the weight rows stay in cache while every token of a
     * prefill batch uses them (one pass over W per batch, as in matrix-matrix) */
    const int64_t RB = 16;
    for (int64_t rb = r0; rb < r1; rb += RB) {
        const int64_t re = rb + RB < r1 ? rb + RB : r1;
        int t = 0;
        if (dot4)
            for (; t + 4 <= j->n_tok; t += 4) {
                const void *a = j->act + (size_t)t * j->act_stride;
                float o4[4];
                for (int64_t r = rb; r < re; r++) {
                    dot4(j->n_cols, j->W + (size_t)r * j->w_row_bytes, a, j->act_stride, o4);
                    for (int k = 0; k < 4; k++)
                        j->out[(int64_t)(t + k) * j->out_stride + r] = o4[k];
                }
            }
        for (; t < j->n_tok; t++) {
            const void *a = j->act + (size_t)t * j->act_stride;
            float *o = j->out + (int64_t)t * j->out_stride;
            for (int64_t r = rb; r < re; r++)
                o[r] = dot(j->n_cols, j->W + (size_t)r * j->w_row_bytes, a);
        }
    }
}

/* Several matmuls in one pool job (one wake-up and one barrier instead of one each):
 * the units (tiled panels or row chunks) of all of them are numbered in one sequence
 * and claimed dynamically. */
#define MM_MAX 4
struct multi_job {
    struct rb_pool *pool;
    int n;
    struct matmul_job rows[MM_MAX]; /* row path (and the fallback of the tiled one) */
    struct rb_gemm_args ga[MM_MAX];
    const void *aux[MM_MAX];        /* NULL: row path */
    int64_t unit_rows[MM_MAX];
    int64_t first[MM_MAX + 1];      /* index of each matmul's first unit */
    size_t panel_bytes;             /* largest tiled panel */
    atomic_llong next;
};

static void multi_worker(void *ctx, int ith, int nth)
{
    (void)nth;
    struct multi_job *j = ctx;
    void *scratch = j->panel_bytes ? rb__pool_scratch(j->pool, ith, j->panel_bytes) : NULL;
    for (;;) {
        const int64_t u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (u >= j->first[j->n])
            return;
        int m = 0;
        while (u >= j->first[m + 1])
            m++;
        const struct matmul_job *rj = &j->rows[m];
        const int64_t r0 = (u - j->first[m]) * j->unit_rows[m];
        const int64_t r1 = r0 + j->unit_rows[m] < rj->n_rows ? r0 + j->unit_rows[m] : rj->n_rows;
        if (j->aux[m] && scratch)
            rj->ops->gemm->panel(rj->ops->type, &j->ga[m], j->aux[m], r0, scratch);
        else
            matmul_rows(rj, r0, r1);
    }
}

void rb__matmul_multi(struct rb_pool *pool, int n, const struct rb_matmul_desc *d)
{
    if (n > MM_MAX) {
        for (int i = 0; i < n; i += MM_MAX)
            rb__matmul_multi(pool, n - i < MM_MAX ? n - i : MM_MAX, d + i);
        return;
    }
    struct multi_job j;
    memset(&j, 0, sizeof j);
    j.pool = pool;
    j.n = n;
    const int nth = rb__pool_size(pool);
    double work = 0;
    size_t aux_total = 0;
    bool tiled[MM_MAX] = {false};
    for (int i = 0; i < n; i++) {
        const struct rb_matmul_desc *x = &d[i];
        const struct matmul_job rj = {x->ops, x->W, x->w_row_bytes, x->n_rows, x->n_cols,
                                      x->act, x->act_stride, x->n_tok, x->out, x->out_stride,
                                      x->n_rows, 0};
        j.rows[i] = rj;
        work += (double)x->n_tok * (double)x->n_rows * (double)x->n_cols;
        const struct rb_gemm_ops *g = x->ops->gemm;
        tiled[i] = g && pool && x->n_tok >= RB_GEMM_MIN_TOK &&
                   g->fits(x->ops->type, x->n_cols, x->w_row_bytes);
        if (tiled[i])
            aux_total += (g->aux_bytes(x->ops->type, x->n_cols, x->n_tok) + 63) & ~(size_t)63;
    }
    uint8_t *aux = aux_total ? rb__pool_scratch(pool, nth, aux_total) : NULL;
    if (!pool || (work < 16384 && !aux)) {
        for (int i = 0; i < n; i++)
            matmul_rows(&j.rows[i], 0, j.rows[i].n_rows);
        return;
    }
    size_t aoff = 0;
    for (int i = 0; i < n; i++) {
        const struct rb_matmul_desc *x = &d[i];
        const struct rb_gemm_ops *g = x->ops->gemm;
        if (tiled[i] && aux) {
            const struct rb_gemm_args ga = {x->W, x->w_row_bytes, x->n_rows, x->n_cols,
                                            x->act, x->act_stride, x->n_tok, x->out,
                                            x->out_stride};
            j.ga[i] = ga;
            j.aux[i] = aux + aoff;
            g->prep(x->ops->type, &j.ga[i], aux + aoff);
            aoff += (g->aux_bytes(x->ops->type, x->n_cols, x->n_tok) + 63) & ~(size_t)63;
            j.unit_rows[i] = g->rows;
            const size_t pb = g->panel_bytes(x->ops->type, x->n_cols);
            j.panel_bytes = pb > j.panel_bytes ? pb : j.panel_bytes;
        } else {
            /* about 8 chunks per thread over all the matmuls, multiples of 16 rows */
            const int64_t per = x->n_rows / (8 * nth);
            j.unit_rows[i] = nth == 1 ? x->n_rows : per < 16 ? 16 : (per + 15) / 16 * 16;
        }
        j.first[i + 1] = j.first[i] + (x->n_rows + j.unit_rows[i] - 1) / j.unit_rows[i];
    }
    atomic_init(&j.next, 0);
    rb__pool_run(pool, multi_worker, &j);
}

void rb__matmul(struct rb_pool *pool, const struct rb_type_ops *ops, const void *W,
                size_t w_row_bytes, int64_t n_rows, int64_t n_cols, const void *act,
                size_t act_stride, int n_tok, float *out, int64_t out_stride)
{
    const struct rb_matmul_desc d = {ops, W, w_row_bytes, n_rows, n_cols, act, act_stride,
                                     n_tok, out, out_stride};
    rb__matmul_multi(pool, 1, &d);
}
