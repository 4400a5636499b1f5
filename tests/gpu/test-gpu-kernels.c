/* GPU suite, kernel by kernel: each CUDA kernel against its CPU twin (the same
 * quant-block.h / ops-block.h functions run on the host) on the shared fixture
 * models' real tensors, within the tolerances stated at each check. Exits 77
 * (skipped) when no GPU is usable, saying why — ready for the first machine with one. */
#include <dirent.h>

#include "backend-cuda.h"
#include "check.h"
#include "ggml-types.h"
#include "gguf.h"
#include "kernels.h"
#include "ops-block.h"

static const struct rb_cuda_api *api;
static struct rb_cuda_ctx *ctx;

static unsigned rng = 4242;
static float frand(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((float)((rng >> 8) & 0xFFFF) / 65535.0f) * 2.0f - 1.0f;
}

static void *dev_copy(const void *host, size_t bytes)
{
    void *d = NULL;
    REQUIRE(api->alloc(ctx, bytes, &d) == 0);
    REQUIRE(api->upload(ctx, d, host, bytes) == 0);
    return d;
}

static void *dev_alloc(size_t bytes)
{
    void *d = NULL;
    REQUIRE(api->alloc(ctx, bytes, &d) == 0);
    return d;
}

static void fetch(void *host, const void *dev, size_t bytes)
{
    REQUIRE(api->synchronize(ctx) == 0);
    REQUIRE(api->download(ctx, host, dev, bytes) == 0);
}

/* matvec and gemm of one weight tensor vs the CPU engine's kernels: the GPU's
 * quantized dot products must match the engine within 1e-4 of the row's magnitude
 * (same integer sums, different float order); GEMM uses fp16 tiles: 3e-3. */
static void check_tensor(const struct rb_gguf_tensor *t)
{
    const struct rb_type_ops *ops = rb__type_ops(t->type);
    const struct rb_ggml_type_traits *tr = rb_ggml_type_get(t->type);
    if (!ops || !tr || t->n_dims != 2)
        return;
    int64_t cols = (int64_t)t->ne[0], rows = (int64_t)t->ne[1];
    if (rows > 4096)
        rows = 4096; /* keep it quick; rows are independent */
    size_t row_bytes = (size_t)(cols / tr->block_size) * tr->type_size;
    enum { NT = 3 };
    float *x = malloc(sizeof(float) * cols * NT);
    for (int64_t i = 0; i < cols * NT; i++)
        x[i] = frand();
    void *dw = dev_copy(t->data, row_bytes * rows);
    float *dx = dev_copy(x, sizeof(float) * cols * NT);
    float *dy = dev_alloc(sizeof(float) * rows * NT);
    float *y = malloc(sizeof(float) * rows * NT), *ref = malloc(sizeof(float) * rows * NT);
    double *mag = malloc(sizeof(double) * rows * NT);
    void *act = malloc(rb__act_row_bytes(ops, cols));
    float *deq = malloc(sizeof(float) * cols);
    for (int tk = 0; tk < NT; tk++) {
        ops->quantize_act(x + tk * cols, act, cols);
        for (int64_t r = 0; r < rows; r++) {
            const uint8_t *wr = (const uint8_t *)t->data + r * row_bytes;
            ref[tk * rows + r] = ops->vec_dot(cols, wr, act);
            ops->dequant_row(wr, deq, cols);
            double m = 0;
            for (int64_t i = 0; i < cols; i++)
                m += fabs((double)deq[i] * x[tk * cols + i]);
            mag[tk * rows + r] = m;
        }
    }
    CHECK_MSG(api->matvec(ctx, t->type, dw, rows, cols, dx, NT, dy) == 0, "%s: %s", t->name,
              api->last_error(ctx));
    fetch(y, dy, sizeof(float) * rows * NT);
    int bad = 0;
    for (int64_t i = 0; i < rows * NT; i++)
        bad += fabs(y[i] - ref[i]) > 1e-4 * mag[i] + 1e-5;
    CHECK_MSG(bad == 0, "matvec %s (%s): %d of %lld outputs off", t->name, tr->name, bad,
              (long long)(rows * NT));
    CHECK_MSG(api->gemm(ctx, t->type, dw, rows, cols, dx, NT, dy) == 0, "%s: %s", t->name,
              api->last_error(ctx));
    fetch(y, dy, sizeof(float) * rows * NT);
    bad = 0;
    for (int64_t i = 0; i < rows * NT; i++)
        bad += fabs(y[i] - ref[i]) > 3e-3 * mag[i] + 1e-4;
    CHECK_MSG(bad == 0, "gemm %s (%s): %d outputs off", t->name, tr->name, bad);
    /* get_rows: exact dequantisation */
    int32_t ids[2] = {0, (int32_t)(rows - 1)};
    int32_t *dids = dev_copy(ids, sizeof ids);
    float *drows = dev_alloc(sizeof(float) * cols * 2), *grows = malloc(sizeof(float) * cols * 2);
    CHECK(api->get_rows(ctx, t->type, dw, cols, dids, 2, drows) == 0);
    fetch(grows, drows, sizeof(float) * cols * 2);
    ops->dequant_row((const uint8_t *)t->data + (size_t)ids[1] * row_bytes, deq, cols);
    CHECK_MSG(memcmp(grows + cols, deq, sizeof(float) * cols) == 0, "get_rows %s", t->name);
    api->free(ctx, dw);
    api->free(ctx, dx);
    api->free(ctx, dy);
    api->free(ctx, dids);
    api->free(ctx, drows);
    free(x);
    free(y);
    free(ref);
    free(mag);
    free(act);
    free(deq);
    free(grows);
}

static void check_models(void)
{
    const char *dir = check_shared("models/fixtures");
    DIR *d = opendir(dir);
    REQUIRE(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".gguf") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct rb_gguf *g;
        struct rb_errmsg err;
        REQUIRE(rb_gguf_open(path, &g, &err) == RB_OK);
        for (size_t i = 0; i < rb_gguf_tensor_count(g); i++)
            check_tensor(rb_gguf_tensor_at(g, i));
        rb_gguf_close(g);
    }
    closedir(d);
}

/* Norms, RoPE, softmax, activations vs their host twins (1e-5 relative). */
static void check_ops(void)
{
    enum { R = 7, N = 896, H = 14, HD = 64 };
    static float x[R * N], w[N], b[N], y[R * N], ref[R * N];
    for (int i = 0; i < R * N; i++)
        x[i] = frand() * 4;
    for (int i = 0; i < N; i++) {
        w[i] = 1 + frand() * 0.2f;
        b[i] = frand() * 0.2f;
    }
    float *dx = dev_copy(x, sizeof x), *dw = dev_copy(w, sizeof w), *db = dev_copy(b, sizeof b);
    float *dy = dev_alloc(sizeof y);
    double worst;

    REQUIRE(api->rmsnorm(ctx, dx, dw, dy, R, N, 1e-6f) == 0);
    fetch(y, dy, sizeof y);
    for (int r = 0; r < R; r++)
        rb_op_rmsnorm_row(x + r * N, w, ref + r * N, N, 1e-6f);
    worst = 0;
    for (int i = 0; i < R * N; i++)
        worst = fmax(worst, fabs(y[i] - ref[i]));
    CHECK_MSG(worst < 1e-4, "rmsnorm: %g", worst);

    REQUIRE(api->layernorm(ctx, dx, dw, db, dy, R, N, 1e-12f) == 0);
    fetch(y, dy, sizeof y);
    for (int r = 0; r < R; r++)
        rb_op_layernorm_row(x + r * N, w, b, ref + r * N, N, 1e-12f);
    worst = 0;
    for (int i = 0; i < R * N; i++)
        worst = fmax(worst, fabs(y[i] - ref[i]));
    CHECK_MSG(worst < 1e-4, "layernorm: %g", worst);

    /* RoPE on (R rows, H heads, HD) with positions 0..R-1, both modes */
    int32_t pos[R];
    for (int r = 0; r < R; r++)
        pos[r] = 3 * r + 1;
    int32_t *dpos = dev_copy(pos, sizeof pos);
    for (int mode = 0; mode <= RB_ROPE_NEOX; mode += RB_ROPE_NEOX) {
        float *dr = dev_copy(x, sizeof(float) * R * H * HD);
        REQUIRE(api->rope(ctx, dr, dpos, R, H, HD, HD, mode, 1e6f, 1.0f, NULL) == 0);
        fetch(y, dr, sizeof(float) * R * H * HD);
        memcpy(ref, x, sizeof(float) * R * H * HD);
        for (int r = 0; r < R; r++)
            for (int h = 0; h < H; h++)
                rb_op_rope_head(ref + (r * H + h) * HD, HD, mode, pos[r], 1e6f, 1.0f, NULL);
        worst = 0;
        for (int i = 0; i < R * H * HD; i++)
            worst = fmax(worst, fabs(y[i] - ref[i]));
        CHECK_MSG(worst < 1e-4, "rope mode %d: %g", mode, worst);
        api->free(ctx, dr);
    }

    float *ds = dev_copy(x, sizeof x);
    REQUIRE(api->softmax(ctx, ds, R, N) == 0);
    fetch(y, ds, sizeof y);
    memcpy(ref, x, sizeof x);
    for (int r = 0; r < R; r++)
        rb_op_softmax_row(ref + r * N, N);
    worst = 0;
    for (int i = 0; i < R * N; i++)
        worst = fmax(worst, fabs(y[i] - ref[i]) / (ref[i] + 1e-7));
    CHECK_MSG(worst < 1e-4, "softmax relative: %g", worst);

    REQUIRE(api->swiglu(ctx, dx, dx + N, dy, N) == 0);
    fetch(y, dy, sizeof(float) * N);
    worst = 0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(y[i] - rb_op_swiglu(x[i], x[N + i])));
    CHECK_MSG(worst < 1e-5, "swiglu: %g", worst);
    api->free(ctx, dx);
    api->free(ctx, dw);
    api->free(ctx, db);
    api->free(ctx, dy);
    api->free(ctx, dpos);
    api->free(ctx, ds);
}

/* kv_store + paged attention vs the host's lane-by-lane twin (identical functions:
 * 1e-5), several queries with different lengths and shuffled page tables. */
static void check_attention(void)
{
    enum { NH = 8, NKV = 2, HD = 64, NPAGES = 20, NQ = 3, MAXP = 8 };
    int kv_row = NKV * HD, ntok = NPAGES * RB_CUDA_PAGE_TOKENS;
    float *k = malloc(sizeof(float) * ntok * kv_row), *v = malloc(sizeof(float) * ntok * kv_row);
    for (int i = 0; i < ntok * kv_row; i++) {
        k[i] = frand();
        v[i] = frand();
    }
    int32_t *slot = malloc(sizeof(int32_t) * ntok);
    for (int t = 0; t < ntok; t++)
        slot[t] = t;
    uint16_t *dk = dev_alloc(2 * (size_t)ntok * kv_row), *dv = dev_alloc(2 * (size_t)ntok * kv_row);
    float *dkf = dev_copy(k, sizeof(float) * ntok * kv_row), *dvf = dev_copy(v, sizeof(float) * ntok * kv_row);
    int32_t *dslot = dev_copy(slot, sizeof(int32_t) * ntok);
    REQUIRE(api->kv_store(ctx, dk, dv, dkf, dvf, dslot, ntok, kv_row) == 0);
    rb_half *hk = malloc(2 * (size_t)ntok * kv_row), *hv = malloc(2 * (size_t)ntok * kv_row);
    fetch(hk, dk, 2 * (size_t)ntok * kv_row);
    fetch(hv, dv, 2 * (size_t)ntok * kv_row);
    int fp16_ok = 1;
    for (int i = 0; i < ntok * kv_row; i++)
        fp16_ok &= hk[i] == rb_fp32_to_fp16(k[i]) && hv[i] == rb_fp32_to_fp16(v[i]);
    CHECK_MSG(fp16_ok, "kv_store fp16 conversion");

    float q[NQ * NH * HD];
    for (int i = 0; i < NQ * NH * HD; i++)
        q[i] = frand();
    int32_t table[NQ * MAXP], nkeys[NQ] = {1, 77, MAXP * RB_CUDA_PAGE_TOKENS};
    for (int i = 0; i < NQ * MAXP; i++)
        table[i] = (i * 7 + 5) % NPAGES;
    float *dq = dev_copy(q, sizeof q), *dout = dev_alloc(sizeof q);
    int32_t *dtable = dev_copy(table, sizeof table), *dn = dev_copy(nkeys, sizeof nkeys);
    struct rb_cuda_attn_args a = {dq, dout, dk, dv, dtable, dn, NQ, NH, NKV, HD, MAXP,
                                  1.0f / sqrtf(HD)};
    REQUIRE(api->attention(ctx, &a) == 0);
    float out[NQ * NH * HD];
    fetch(out, dout, sizeof out);
    double worst = 0;
    static float records[RB_WARP * (2 + HD)];
    for (int qi = 0; qi < NQ; qi++)
        for (int h = 0; h < NH; h++) {
            for (int lane = 0; lane < RB_WARP; lane++) {
                float *rec = records + lane * (2 + HD);
                struct rb_op_softmax_state st = rb_op_softmax_init();
                memset(rec + 2, 0, HD * sizeof(float));
                rb_op_attn_lane(q + (qi * NH + h) * HD, hk, hv, table + qi * MAXP, nkeys[qi],
                                RB_CUDA_PAGE_TOKENS, kv_row, (h / (NH / NKV)) * HD, HD,
                                a.scale, lane, RB_WARP, &st, rec + 2);
                rec[0] = st.m;
                rec[1] = st.l;
            }
            float ref[HD], tmp[HD];
            rb_op_attn_merge_lanes(records, RB_WARP, HD, tmp, ref);
            for (int d = 0; d < HD; d++)
                worst = fmax(worst, fabs(out[(qi * NH + h) * HD + d] - ref[d]));
        }
    CHECK_MSG(worst < 1e-5, "attention vs twin: %g", worst);

    /* a CUDA graph of the same call replays to the same result */
    REQUIRE(api->graph_begin(ctx) == 0);
    REQUIRE(api->attention(ctx, &a) == 0);
    REQUIRE(api->graph_end(ctx) == 0);
    float out2[NQ * NH * HD];
    REQUIRE(api->graph_launch(ctx) == 0);
    fetch(out2, dout, sizeof out2);
    CHECK(memcmp(out, out2, sizeof out) == 0);
    free(k);
    free(v);
    free(slot);
    free(hk);
    free(hv);
}

/* Out-of-memory is a clear error, not a crash. */
static void check_oom(void)
{
    void *p = NULL;
    int st = api->alloc(ctx, (size_t)1 << 50, &p);
    CHECK_EQ_INT(st, RB_ERR_NOMEM);
    CHECK(p == NULL);
    CHECK_MSG(strstr(api->last_error(ctx), "out of memory") != NULL, "%s", api->last_error(ctx));
}

int main(void)
{
    int n = 0;
    const char *why = NULL;
    api = rb__cuda_backend(&n, &why);
    if (!api || n == 0)
        CHECK_SKIP("no GPU: %s", why && *why ? why : "unknown reason");
    char err[512] = "";
    REQUIRE(api->ctx_create(0, &ctx, err, sizeof err) == 0);
    struct rb_cuda_device_info info;
    if (api->device_info(0, &info) == 0)
        fprintf(stderr, "GPU: %s (cc %d.%d, %zu MiB)\n", info.name, info.cc_major, info.cc_minor,
                info.total_bytes >> 20);
    check_models();
    check_ops();
    check_attention();
    check_oom();
    api->ctx_free(ctx);
    return check_finish();
}
