/* The non-matmul per-block functions shared with the CUDA backend (ops-block.h),
 * against straightforward double-precision references, including the GPU's
 * decompositions: strided partial sums, split-and-merge softmax, paged attention
 * folded lane by lane and merged. */
#include "check.h"
#include "ops-block.h"

static unsigned rng = 12345;
static float frand(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((float)((rng >> 8) & 0xFFFF) / 65535.0f) * 2.0f - 1.0f;
}

static void test_norms(void)
{
    enum { N = 896 };
    float x[N], w[N], b[N], y[N], y2[N];
    for (int i = 0; i < N; i++) {
        x[i] = frand() * 3;
        w[i] = 1 + frand() * 0.1f;
        b[i] = frand() * 0.1f;
    }
    double ss = 0;
    for (int i = 0; i < N; i++)
        ss += (double)x[i] * x[i];
    double scale = 1 / sqrt(ss / N + 1e-6);
    rb_op_rmsnorm_row(x, w, y, N, 1e-6f);
    double maxerr = 0;
    for (int i = 0; i < N; i++)
        maxerr = fmax(maxerr, fabs(y[i] - x[i] * scale * w[i]));
    CHECK_MSG(maxerr < 1e-5, "rmsnorm max err %g", maxerr);
    /* 256 strided partial sums (the kernel's geometry) give the same result */
    float part = 0;
    for (int t = 0; t < 256; t++)
        part += rb_op_sumsq(x, t, N, 256);
    float sc = rb_op_rms_scale(part, N, 1e-6f);
    for (int t = 0; t < 256; t++)
        rb_op_rmsnorm_apply(x, w, sc, y2, t, N, 256);
    maxerr = 0;
    for (int i = 0; i < N; i++)
        maxerr = fmax(maxerr, fabs(y2[i] - y[i]));
    CHECK_MSG(maxerr < 1e-5, "strided rmsnorm differs by %g", maxerr);

    double mean = 0, var = 0;
    for (int i = 0; i < N; i++)
        mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= N;
    rb_op_layernorm_row(x, w, b, y, N, 1e-12f);
    maxerr = 0;
    for (int i = 0; i < N; i++)
        maxerr = fmax(maxerr, fabs(y[i] - ((x[i] - mean) / sqrt(var + 1e-12) * w[i] + b[i])));
    CHECK_MSG(maxerr < 1e-4, "layernorm max err %g", maxerr);
}

static void test_rope(void)
{
    enum { D = 64 };
    float h[D], h2[D], orig[D];
    for (int i = 0; i < D; i++)
        orig[i] = h[i] = h2[i] = frand();
    int pos = 37;
    float base = 10000.0f;
    rb_op_rope_head(h, D, RB_ROPE_NORMAL, pos, base, 1.0f, NULL);
    rb_op_rope_head(h2, D, RB_ROPE_NEOX, pos, base, 1.0f, NULL);
    double err1 = 0, err2 = 0;
    for (int p = 0; p < D / 2; p++) {
        double th = pos * pow(base, -2.0 * p / D);
        double c = cos(th), s = sin(th);
        /* normal: adjacent pairs */
        double a = orig[2 * p], bb = orig[2 * p + 1];
        err1 = fmax(err1, fabs(h[2 * p] - (a * c - bb * s)));
        err1 = fmax(err1, fabs(h[2 * p + 1] - (a * s + bb * c)));
        /* neox: halves */
        a = orig[p];
        bb = orig[p + D / 2];
        err2 = fmax(err2, fabs(h2[p] - (a * c - bb * s)));
        err2 = fmax(err2, fabs(h2[p + D / 2] - (a * s + bb * c)));
    }
    CHECK_MSG(err1 < 1e-4, "rope normal err %g", err1);
    CHECK_MSG(err2 < 1e-4, "rope neox err %g", err2);
    /* rotation keeps the norm; position 0 is the identity */
    double n0 = 0, n1 = 0;
    for (int i = 0; i < D; i++) {
        n0 += (double)orig[i] * orig[i];
        n1 += (double)h[i] * h[i];
    }
    CHECK_NEAR(n0, n1, 1e-4);
    float id[D];
    memcpy(id, orig, sizeof id);
    rb_op_rope_head(id, D, RB_ROPE_NEOX, 0, base, 1.0f, NULL);
    CHECK(memcmp(id, orig, sizeof id) == 0);
    /* partial rotary: dims >= n_rot untouched */
    memcpy(id, orig, sizeof id);
    rb_op_rope_head(id, 32, RB_ROPE_NEOX, 5, base, 1.0f, NULL);
    CHECK(memcmp(id + 32, orig + 32, 32 * sizeof(float)) == 0);
}

static void test_softmax(void)
{
    enum { N = 1000 };
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = y[i] = frand() * 20;
    double mx = -1e30, sum = 0;
    for (int i = 0; i < N; i++)
        mx = fmax(mx, x[i]);
    for (int i = 0; i < N; i++)
        sum += exp(x[i] - mx);
    rb_op_softmax_row(y, N);
    double err = 0, tot = 0;
    for (int i = 0; i < N; i++) {
        err = fmax(err, fabs(y[i] - exp(x[i] - mx) / sum));
        tot += y[i];
    }
    CHECK_MSG(err < 1e-6, "softmax err %g", err);
    CHECK_NEAR(tot, 1.0, 1e-4);
    /* 256 strided states merged in order (the kernel) == one state */
    struct rb_op_softmax_state all = rb_op_softmax_init(), merged = rb_op_softmax_init();
    for (int i = 0; i < N; i++)
        rb_op_softmax_push(&all, x[i]);
    for (int t = 0; t < 256; t++) {
        struct rb_op_softmax_state s = rb_op_softmax_init();
        for (int i = t; i < N; i += 256)
            rb_op_softmax_push(&s, x[i]);
        merged = rb_op_softmax_merge(merged, s);
    }
    CHECK_NEAR(all.m, merged.m, 0);
    CHECK_NEAR(all.l, merged.l, 1e-3 * all.l);
    /* -inf scores (masked) contribute nothing; an empty state merges as identity */
    struct rb_op_softmax_state e = rb_op_softmax_init();
    struct rb_op_softmax_state m2 = rb_op_softmax_merge(all, e);
    CHECK(m2.m == all.m && m2.l == all.l);
}

/* Paged attention: a random KV sequence in shuffled pages, folded per lane with
 * rb_op_attn_lane and merged with rb_op_attn_merge_lanes, vs softmax(qK^T)V. */
static void test_attention(void)
{
    enum { HD = 64, NKV = 2, NH = 4, PAGE = 16, NPAGES = 12, NKEYS = 181 };
    int kv_stride = NKV * HD;
    static rb_half kp[NPAGES * PAGE * NKV * HD], vp[NPAGES * PAGE * NKV * HD];
    static float kf[NKEYS][NKV][HD], vf[NKEYS][NKV][HD];
    int32_t table[NPAGES];
    for (int p = 0; p < NPAGES; p++)
        table[p] = (p * 7 + 3) % NPAGES; /* a permutation: pages are not contiguous */
    for (int t = 0; t < NKEYS; t++) {
        int page = table[t / PAGE], off = t % PAGE;
        for (int h = 0; h < NKV; h++)
            for (int d = 0; d < HD; d++) {
                rb_half k = rb_fp32_to_fp16(frand()), v = rb_fp32_to_fp16(frand());
                kf[t][h][d] = rb_fp16_to_fp32(k);
                vf[t][h][d] = rb_fp16_to_fp32(v);
                size_t at = ((size_t)page * PAGE + off) * kv_stride + h * HD + d;
                kp[at] = k;
                vp[at] = v;
            }
    }
    float scale = 1.0f / sqrtf(HD);
    double worst = 0;
    for (int h = 0; h < NH; h++) {
        int kvh = h / (NH / NKV);
        float q[HD];
        for (int d = 0; d < HD; d++)
            q[d] = frand() * 2;
        for (int nk = 1; nk <= NKEYS; nk += 45) { /* causal lengths, incl. partial pages */
            double s[NKEYS], mx = -1e30, sum = 0, ref[HD] = {0};
            for (int t = 0; t < nk; t++) {
                s[t] = 0;
                for (int d = 0; d < HD; d++)
                    s[t] += (double)q[d] * kf[t][kvh][d];
                s[t] *= scale;
                mx = fmax(mx, s[t]);
            }
            for (int t = 0; t < nk; t++)
                sum += exp(s[t] - mx);
            for (int t = 0; t < nk; t++)
                for (int d = 0; d < HD; d++)
                    ref[d] += exp(s[t] - mx) / sum * vf[t][kvh][d];
            static float records[RB_WARP * (2 + HD)];
            for (int lane = 0; lane < RB_WARP; lane++) {
                float *rec = records + lane * (2 + HD);
                struct rb_op_softmax_state st = rb_op_softmax_init();
                memset(rec + 2, 0, HD * sizeof(float));
                rb_op_attn_lane(q, kp, vp, table, nk, PAGE, kv_stride, kvh * HD, HD, scale, lane,
                                RB_WARP, &st, rec + 2);
                rec[0] = st.m;
                rec[1] = st.l;
            }
            float out[HD], tmp[HD];
            rb_op_attn_merge_lanes(records, RB_WARP, HD, tmp, out);
            for (int d = 0; d < HD; d++)
                worst = fmax(worst, fabs(out[d] - ref[d]));
        }
    }
    CHECK_MSG(worst < 2e-5, "paged attention vs reference: max err %g", worst);
}

static void test_activations(void)
{
    CHECK_NEAR(rb_op_swiglu(0.0f, 5.0f), 0.0, 1e-7);
    CHECK_NEAR(rb_op_swiglu(2.0f, 3.0f), 2.0 / (1 + exp(-2.0)) * 3.0, 1e-5);
    CHECK_NEAR(rb_gelu(1.0f), 0.8413, 2e-3);
    CHECK_NEAR(rb_gelu(-3.0f), -0.004, 2e-3);
}

int main(void)
{
    test_norms();
    test_rope();
    test_softmax();
    test_attention();
    test_activations();
    return check_finish();
}
