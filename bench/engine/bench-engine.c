/* bench-engine: engine speed on models of real shapes with random weights.
 *
 * Speed does not depend on the weights' values, so this writes GGUF files of the real
 * shapes (SmolLM2-135M Q8_0, Qwen2.5-0.5B Q4_K_M and Q8_0, Qwen2.5-1.5B Q4_K_M,
 * bge-small F16) into a scratch directory with the engine's GGUF writer, then measures
 * per model and thread count: prefill tok/s (128 and 512 tokens), decode tok/s (64
 * tokens), embedding chunks/s (bge-small, 256-token chunks), peak RSS (each model runs
 * in its own child process), and the decode rate as a fraction of the memory-bandwidth
 * bound (weight bytes read per token vs a STREAM-like read bandwidth measured in the
 * same run with the same thread count).
 *
 * Usage: bench-engine [--dir DIR] [--reps N] [--threads 1,2] [MODEL-NAME ...]
 * names: smollm2-135m-q8_0 qwen2.5-0.5b-q4_k_m qwen2.5-0.5b-q8_0 qwen2.5-1.5b-q4_k_m
 *        bge-small-f16 (default: all) */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ggml-types.h"
#include "gguf.h"
#include "kernels.h"
#include "model.h"
#include "quant-block.h"

struct shape {
    const char *name, *arch;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    bool qkv_bias, tied;
    const char *qtype; /* Q8_0, Q4_K_M, F16 */
};

static const struct shape shapes[] = {
    {"smollm2-135m-q8_0", "llama", 576, 30, 9, 3, 1536, 49152, false, true, "Q8_0"},
    {"qwen2.5-0.5b-q4_k_m", "qwen2", 896, 24, 14, 2, 4864, 151936, true, true, "Q4_K_M"},
    {"qwen2.5-0.5b-q8_0", "qwen2", 896, 24, 14, 2, 4864, 151936, true, true, "Q8_0"},
    {"qwen2.5-1.5b-q4_k_m", "qwen2", 1536, 28, 12, 2, 8960, 151936, true, true, "Q4_K_M"},
    {"bge-small-f16", "bert", 384, 12, 12, 12, 1536, 30522, true, false, "F16"},
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random block data with sane scales (small positive fp16), so the model computes
 * finite numbers. */
static enum rb_status fill(void *user, const char *name, void *buf, uint64_t size)
{
    const uint32_t type = (uint32_t)(uintptr_t)user;
    uint8_t *b = buf;
    for (uint64_t i = 0; i + 8 <= size; i += 8) {
        uint64_t r = rnd();
        memcpy(b + i, &r, 8);
    }
    for (uint64_t i = size & ~7ULL; i < size; i++)
        b[i] = (uint8_t)rnd();
    const rb_half small = rb_fp32_to_fp16(0.002f);
    switch (type) {
    case RB_GGML_TYPE_F32: {
        float *f = buf;
        const bool ones = strstr(name, "norm") != NULL;
        for (uint64_t i = 0; i < size / 4; i++)
            f[i] = ones ? 1.0f : 0.0f;
        break;
    }
    case RB_GGML_TYPE_F16: {
        rb_half *h = buf;
        for (uint64_t i = 0; i < size / 2; i++)
            h[i] = rb_fp32_to_fp16(((int)(rnd() % 2001) - 1000) * 0.00005f);
        break;
    }
    case RB_GGML_TYPE_Q8_0:
        for (uint64_t i = 0; i < size / 34; i++)
            memcpy(b + i * 34, &small, 2);
        break;
    case RB_GGML_TYPE_Q5_0:
        for (uint64_t i = 0; i < size / 22; i++)
            memcpy(b + i * 22, &small, 2);
        break;
    case RB_GGML_TYPE_Q4_K:
        for (uint64_t i = 0; i < size / 144; i++) {
            memcpy(b + i * 144, &small, 2);
            memcpy(b + i * 144 + 2, &small, 2);
        }
        break;
    case RB_GGML_TYPE_Q6_K:
        for (uint64_t i = 0; i < size / 210; i++)
            memcpy(b + i * 210 + 208, &small, 2);
        break;
    default: return RB_ERR_UNSUPPORTED;
    }
    return RB_OK;
}

static bool more_bits(int il, int n)
{
    return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2;
}

static enum rb_status add(struct rb_gguf_writer *w, const char *name, uint32_t type, int64_t ne0,
                          int64_t ne1)
{
    /* rows that do not split into 256-blocks: the reference quantizer's fallbacks */
    if (ne0 % 256 && type == RB_GGML_TYPE_Q4_K)
        type = RB_GGML_TYPE_Q5_0;
    if (ne0 % 256 && type == RB_GGML_TYPE_Q6_K)
        type = RB_GGML_TYPE_Q8_0;
    uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
    return rb_gguf_writer_add_tensor_cb(w, name, type, ne1 > 0 ? 2 : 1, ne, fill,
                                        (void *)(uintptr_t)type);
}

static enum rb_status write_model(const struct shape *s, const char *path)
{
    struct rb_gguf_writer *w = NULL;
    enum rb_status st = rb_gguf_writer_create(&w);
    if (st != RB_OK)
        return st;
    char k[128];
#define SETU(key, v)                                                                               \
    do {                                                                                           \
        snprintf(k, sizeof k, "%s." key, s->arch);                                                 \
        if (st == RB_OK)                                                                           \
            st = rb_gguf_writer_set_u32(w, k, (uint32_t)(v));                                      \
    } while (0)
    st = rb_gguf_writer_set_str(w, "general.architecture", s->arch, strlen(s->arch));
    SETU("embedding_length", s->n_embd);
    SETU("block_count", s->n_layer);
    SETU("feed_forward_length", s->n_ff);
    SETU("attention.head_count", s->n_head);
    SETU("attention.head_count_kv", s->n_head_kv);
    SETU("context_length", strcmp(s->arch, "bert") ? 4096 : 512);
    const bool bert = strcmp(s->arch, "bert") == 0;
    if (bert)
        SETU("pooling_type", 2);
    const bool kq = strcmp(s->qtype, "Q4_K_M") == 0;
    const uint32_t base = kq ? RB_GGML_TYPE_Q4_K
                             : strcmp(s->qtype, "Q8_0") == 0 ? RB_GGML_TYPE_Q8_0
                                                             : RB_GGML_TYPE_F16;
    const int E = s->n_embd, hd = E / s->n_head, KV = s->n_head_kv * hd;
    if (st == RB_OK)
        st = add(w, "token_embd.weight", kq ? RB_GGML_TYPE_Q6_K : base, E, s->n_vocab);
    if (bert) {
        if (st == RB_OK)
            st = add(w, "position_embd.weight", RB_GGML_TYPE_F32, E, 512);
        if (st == RB_OK)
            st = add(w, "token_types.weight", RB_GGML_TYPE_F32, E, 2);
        if (st == RB_OK)
            st = add(w, "token_embd_norm.weight", RB_GGML_TYPE_F32, E, 0);
        if (st == RB_OK)
            st = add(w, "token_embd_norm.bias", RB_GGML_TYPE_F32, E, 0);
    } else if (st == RB_OK) {
        st = add(w, "output_norm.weight", RB_GGML_TYPE_F32, E, 0);
    }
    for (int il = 0; il < s->n_layer && st == RB_OK; il++) {
        char n[96];
        const uint32_t hi = kq && more_bits(il, s->n_layer) ? RB_GGML_TYPE_Q6_K : base;
#define T(suffix, type, a, b)                                                                      \
    do {                                                                                           \
        snprintf(n, sizeof n, "blk.%d." suffix, il);                                               \
        if (st == RB_OK)                                                                           \
            st = add(w, n, type, a, b);                                                            \
    } while (0)
        T("attn_q.weight", base, E, E);
        T("attn_k.weight", base, E, KV);
        T("attn_v.weight", hi, E, KV);
        T("attn_output.weight", base, E, E);
        T("ffn_up.weight", base, E, s->n_ff);
        T("ffn_down.weight", hi == RB_GGML_TYPE_Q6_K ? hi : base, s->n_ff, E);
        if (s->qkv_bias) {
            T("attn_q.bias", RB_GGML_TYPE_F32, E, 0);
            T("attn_k.bias", RB_GGML_TYPE_F32, KV, 0);
            T("attn_v.bias", RB_GGML_TYPE_F32, KV, 0);
        }
        if (bert) {
            T("attn_output.bias", RB_GGML_TYPE_F32, E, 0);
            T("ffn_up.bias", RB_GGML_TYPE_F32, s->n_ff, 0);
            T("ffn_down.bias", RB_GGML_TYPE_F32, E, 0);
            T("attn_output_norm.weight", RB_GGML_TYPE_F32, E, 0);
            T("attn_output_norm.bias", RB_GGML_TYPE_F32, E, 0);
            T("layer_output_norm.weight", RB_GGML_TYPE_F32, E, 0);
            T("layer_output_norm.bias", RB_GGML_TYPE_F32, E, 0);
        } else {
            T("ffn_gate.weight", base, E, s->n_ff);
            T("attn_norm.weight", RB_GGML_TYPE_F32, E, 0);
            T("ffn_norm.weight", RB_GGML_TYPE_F32, E, 0);
        }
#undef T
    }
    if (st == RB_OK)
        st = rb_gguf_writer_write(w, path);
    if (st != RB_OK)
        fprintf(stderr, "write %s: %s\n", path, rb_gguf_writer_errmsg(w));
    rb_gguf_writer_free(w);
    return st;
}

/* CPU seconds of the whole process (all threads): with wall time it tells how much of
 * the machine the run actually got. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- STREAM-like read bandwidth */
struct bw_job {
    const double *a;
    size_t n;
    double sum;
    atomic_size_t next; /* chunks claimed dynamically, as the pool requires */
};

static void bw_worker(void *ctx, int ith, int nth)
{
    (void)nth;
    struct bw_job *j = ctx;
    const size_t chunk = (size_t)1 << 20; /* doubles */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (;;) {
        const size_t lo = atomic_fetch_add(&j->next, chunk);
        if (lo >= j->n)
            break;
        const size_t hi = lo + chunk < j->n ? lo + chunk : j->n;
        for (size_t i = lo; i + 4 <= hi; i += 4) {
            s0 += j->a[i];
            s1 += j->a[i + 1];
            s2 += j->a[i + 2];
            s3 += j->a[i + 3];
        }
    }
    if (ith == 0)
        j->sum = s0 + s1 + s2 + s3;
}

static double g_bw_cpu; /* the same, per CPU-second x threads */
static double read_bandwidth(int threads)
{
    const size_t bytes = (size_t)512 << 20;
    double *a = malloc(bytes);
    if (!a)
        return 0;
    for (size_t i = 0; i < bytes / 8; i++)
        a[i] = (double)(i & 1023);
    struct rb_pool *pool = NULL;
    if (rb__pool_create(threads, &pool) != RB_OK) {
        free(a);
        return 0;
    }
    double best = 0;
    g_bw_cpu = 0;
    for (int r = 0; r < 5; r++) {
        struct bw_job j = {a, bytes / 8, 0, 0};
        const double t0 = rb__now(), c0 = cpu_now();
        rb__pool_run(pool, bw_worker, &j);
        const double gbs = bytes / (rb__now() - t0) / 1e9;
        const double gbc = bytes / ((cpu_now() - c0) / threads) / 1e9;
        if (gbs > best && j.sum >= 0)
            best = gbs;
        if (gbc > g_bw_cpu && j.sum >= 0)
            g_bw_cpu = gbc;
    }
    rb__pool_free(pool);
    free(a);
    return best;
}

static double weight_bytes_per_token(const struct rb__model *m)
{
    double b = (double)m->output.row_bytes * m->output.ne1;
    for (int il = 0; il < m->n_layer; il++) {
        const struct rb_layer *L = &m->layers[il];
        const struct rb_wt *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->data)
                b += (double)ws[i]->row_bytes * ws[i]->ne1;
    }
    return b;
}

static void stats(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int run_model(const struct shape *s, const char *path, int threads, int reps, double bw,
                     double bw_cpu)
{
    struct rb_errmsg err = {{0}};
    struct rb_gguf *g = NULL;
    struct rb__model *m = NULL;
    if (rb_gguf_open(path, &g, &err) != RB_OK || rb__model_load(g, threads, &m, &err) != RB_OK) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        return 1;
    }
    int32_t toks[512];
    for (int i = 0; i < 512; i++)
        toks[i] = (int32_t)(rnd() % (uint64_t)m->n_vocab);
    if (m->arch == RB_ARCH_BERT) {
        float v[1024];
        double sp[64];
        for (int r = -1; r < reps; r++) {
            const int chunks = 8;
            const double t0 = rb__now();
            for (int c = 0; c < chunks; c++)
                if (rb__encode(m, toks + c * 8, 256, v) != RB_OK)
                    return 1;
            if (r >= 0)
                sp[r] = chunks / (rb__now() - t0);
        }
        double mean, sd;
        stats(sp, reps, &mean, &sd);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("| %-22s | %2d | embed 256-token chunks/s %8.2f ± %6.2f (%7.1f tok/s) | peak RSS "
               "%6.1f MiB |\n",
               s->name, threads, mean, sd, mean * 256, ru.ru_maxrss / 1024.0);
        fflush(stdout); /* the child leaves with _exit */
        rb__model_free(m);
        rb_gguf_close(g);
        return 0;
    }
    float *logits = malloc((size_t)m->n_vocab * sizeof(float));
    int pos[512];
    struct rb__kv *kvp[512];
    double pp[2][64], tg[64], ppc[2][64], tgc[64];
    const int plen[2] = {128, 512};
    for (int r = -1; r < reps; r++) {
        for (int pi = 0; pi < 2; pi++) {
            struct rb__kv *kv = NULL;
            if (rb__kv_create(m, 600, &kv) != RB_OK)
                return 1;
            for (int i = 0; i < 512; i++) {
                pos[i] = i;
                kvp[i] = kv;
            }
            const double t0 = rb__now(), c0 = cpu_now();
            struct rb__batch b = {plen[pi], toks, pos, kvp, NULL, logits};
            if (rb__forward(m, &b) != RB_OK)
                return 1;
            if (r >= 0) {
                pp[pi][r] = plen[pi] / (rb__now() - t0);
                ppc[pi][r] = plen[pi] / ((cpu_now() - c0) / threads);
            }
            rb__kv_free(kv);
        }
        struct rb__kv *kv = NULL;
        if (rb__kv_create(m, 600, &kv) != RB_OK)
            return 1;
        const double t0 = rb__now(), c0 = cpu_now();
        for (int i = 0; i < 64; i++) {
            int p = i;
            struct rb__kv *k1 = kv;
            struct rb__batch b = {1, toks + i, &p, &k1, NULL, logits};
            if (rb__forward(m, &b) != RB_OK)
                return 1;
        }
        if (r >= 0) {
            tg[r] = 64 / (rb__now() - t0);
            tgc[r] = 64 / ((cpu_now() - c0) / threads);
        }
        rb__kv_free(kv);
    }
    double m128, s128, m512, s512, mtg, stg;
    stats(pp[0], reps, &m128, &s128);
    stats(pp[1], reps, &m512, &s512);
    stats(tg, reps, &mtg, &stg);
    double c128, c512, ctg, sd_unused;
    stats(ppc[0], reps, &c128, &sd_unused);
    stats(ppc[1], reps, &c512, &sd_unused);
    stats(tgc, reps, &ctg, &sd_unused);
    const double wb = weight_bytes_per_token(m);
    const double bound = bw * 1e9 / wb;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("| %-22s | %2d | pp128 %8.2f ± %6.2f | pp512 %8.2f ± %6.2f | tg64 %7.2f ± %5.2f | "
           "bound %7.2f tok/s (%.0f MiB/token), tg = %4.1f%% | peak RSS %6.1f MiB |\n",
           s->name, threads, m128, s128, m512, s512, mtg, stg, bound, wb / 1048576.0,
           100.0 * mtg / bound, ru.ru_maxrss / 1024.0);
    /* per CPU-second: the rates if each thread had had its core to itself (spinning
     * threads count as busy, so pool overhead is not hidden) */
    const double bound_c = bw_cpu * 1e9 / wb;
    printf("| %-22s | %2d | cpu-normalised: pp128 %8.2f | pp512 %8.2f | tg64 %7.2f | bound %7.2f "
           "tok/s, tg = %4.1f%% | wall/cpu share %3.0f%% |\n",
           s->name, threads, c128, c512, ctg, bound_c, 100.0 * ctg / bound_c,
           100.0 * mtg / ctg);
    fflush(stdout);
    free(logits);
    rb__model_free(m);
    rb_gguf_close(g);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/ragbox-bench-engine";
    int reps = 3, threads[8] = {1, 2}, n_threads = 2;
    const char *only[8];
    int n_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]) > 0 && atoi(argv[i]) <= 64 ? atoi(argv[i]) : 3;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            n_threads = 0;
            char buf[64];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t && n_threads < 8;
                 t = strtok_r(NULL, ",", &save))
                threads[n_threads++] = atoi(t) > 0 ? atoi(t) : 1;
        } else if (n_only < 8)
            only[n_only++] = argv[i];
    }
    mkdir(dir, 0755);
    printf("engine bench: SIMD %s, %ld CPUs online, %d repetitions (+1 warm-up)\n",
           rb__simd_name(rb__simd_level()), sysconf(_SC_NPROCESSORS_ONLN), reps);
    double la[3] = {0, 0, 0};
    if (getloadavg(la, 3) > 0)
        printf("load average at start: %.2f %.2f %.2f (figures are wall-clock; the "
               "cpu-normalised rows divide by the CPU time the run actually got)\n",
               la[0], la[1], la[2]);
    double bw[8], bwc[8];
    for (int t = 0; t < n_threads; t++) {
        bw[t] = read_bandwidth(threads[t]);
        bwc[t] = g_bw_cpu;
        printf("memory read bandwidth, %d thread(s): %.2f GB/s (cpu-normalised %.2f GB/s)\n",
               threads[t], bw[t], bwc[t]);
    }
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *s = &shapes[i];
        bool want = n_only == 0;
        for (int k = 0; k < n_only; k++)
            want |= strcmp(only[k], s->name) == 0;
        if (!want)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, s->name);
        struct stat sb;
        if (stat(path, &sb) != 0 && write_model(s, path) != RB_OK)
            return 1;
        for (int t = 0; t < n_threads; t++) {
            fflush(stdout);
            pid_t pid = fork(); /* own process: peak RSS per model */
            if (pid == 0)
                _exit(run_model(s, path, threads[t], reps, bw[t], bwc[t]));
            int ws = 0;
            if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
                fprintf(stderr, "%s: run failed\n", s->name);
        }
    }
    return 0;
}
