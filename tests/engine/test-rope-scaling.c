/* RoPE scaling: the engine's YaRN / linear rotation (rope-scaling.h) against a
 * double-precision scalar implementation of the published formulas (YaRN paper,
 * Peng et al. 2023, as in its reference LlamaYaRNScaledRotaryEmbedding), and the
 * metadata reader: yarn / linear / none accepted, other types and bad values refused
 * with a message. */
#include "check.h"
#include "gguf.h"
#include "rope-scaling.h"

/* the published YaRN recipe, in double precision, for one pair */
static void yarn_reference(int n_rot, double base, double factor, int n_ctx_orig, double beta_fast,
                           double beta_slow, int pos, int pair, double *c, double *s)
{
    const double pi = 3.14159265358979323846;
    const double inv_freq_extra = pow(base, -2.0 * pair / n_rot);
    const double inv_freq_inter = inv_freq_extra / factor;
    double low = floor(n_rot * log(n_ctx_orig / (beta_fast * 2 * pi)) / (2 * log(base)));
    double high = ceil(n_rot * log(n_ctx_orig / (beta_slow * 2 * pi)) / (2 * log(base)));
    low = low < 0 ? 0 : low;
    high = high > n_rot - 1 ? n_rot - 1 : high;
    if (low == high)
        high += 0.001;
    double ramp = (pair - low) / (high - low);
    ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
    const double extra_mix = 1.0 - ramp; /* inv_freq_mask */
    const double inv_freq = inv_freq_inter * (1 - extra_mix) + inv_freq_extra * extra_mix;
    const double mscale = 0.1 * log(factor) + 1.0;
    *c = cos(pos * inv_freq) * mscale;
    *s = sin(pos * inv_freq) * mscale;
}

/* the engine's path: angle by repeated float multiplication as model.c does */
static void engine_rope(int n_rot, float base, float freq_scale, const float dims[2], float ext,
                        float attn, int pos, int pair, float *c, float *s)
{
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < pair; i++)
        theta *= theta_scale;
    rb__rope_yarn(theta, freq_scale, dims, pair, ext, attn, c, s);
}

static void test_math(void)
{
    static const struct {
        int n_rot;
        float base, factor;
        int orig;
    } cfg[] = {
        {128, 1000000.0f, 4.0f, 32768}, /* Qwen2.5-7B-Instruct 128k */
        {64, 1000000.0f, 4.0f, 32768},  /* Qwen2.5-0.5B / 1.5B */
        {128, 10000.0f, 16.0f, 4096},   /* llama-2 YaRN 64k */
        {64, 10000.0f, 2.0f, 2048},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        float dims[2];
        rb__rope_yarn_corr_dims(cfg[k].n_rot, cfg[k].orig, cfg[k].base, 32.0f, 1.0f, dims);
        CHECK(dims[0] >= 0 && dims[1] <= cfg[k].n_rot - 1 && dims[0] <= dims[1]);
        double worst_small = 0, worst_big = 0;
        int n = 0;
        for (int pos = 0; pos < 131072; pos = pos < 64 ? pos + 1 : pos * 3 + 7) {
            for (int p = 0; p < cfg[k].n_rot / 2; p++) {
                double rc, rs;
                yarn_reference(cfg[k].n_rot, cfg[k].base, cfg[k].factor, cfg[k].orig, 32.0, 1.0,
                               pos, p, &rc, &rs);
                float c, s;
                engine_rope(cfg[k].n_rot, cfg[k].base, 1.0f / cfg[k].factor, dims, 1.0f, 1.0f, pos,
                            p, &c, &s);
                const double d = fmax(fabs(c - rc), fabs(s - rs));
                /* float angles lose ~pos * 2^-24 rad; the rest must be exact math */
                if (pos <= 64)
                    worst_small = fmax(worst_small, d);
                else
                    worst_big = fmax(worst_big, d / (pos * 1.2e-7 * (p + 1) + 1e-5));
                n++;
            }
        }
        CHECK_MSG(worst_small < 2e-5, "cfg %zu: worst |cos/sin diff| %.3g at small positions", k,
                  worst_small);
        CHECK_MSG(worst_big < 1.0, "cfg %zu: worst diff / float bound %.3g at large positions", k,
                  worst_big);
        CHECK(n > 1000);
    }
    /* ext_factor 0, attn 1 is plain linear interpolation, bit for bit */
    const float dims[2] = {3, 20};
    for (int pair = 0; pair < 32; pair++) {
        float c, s;
        const float th = 123.456f * (float)(pair + 1);
        rb__rope_yarn(th, 0.25f, dims, pair, 0.0f, 1.0f, &c, &s);
        CHECK(c == cosf(0.25f * th) && s == sinf(0.25f * th));
    }
    /* pairs below the correction range extrapolate (unscaled), above interpolate */
    {
        float c, s;
        rb__rope_yarn(2.0f, 0.25f, dims, 1, 1.0f, 1.0f, &c, &s);
        const float m = 1.0f + 0.1f * logf(4.0f);
        CHECK_NEAR(c, cosf(2.0f) * m, 1e-6);
        rb__rope_yarn(2.0f, 0.25f, dims, 25, 1.0f, 1.0f, &c, &s);
        CHECK_NEAR(c, cosf(0.5f) * m, 1e-6);
    }
}

/* ---- metadata */
static const char *dir;
static int file_no;

struct meta {
    const char *type; /* NULL: absent */
    float factor;     /* 0: absent */
    uint32_t orig;    /* 0: absent */
    float attn;       /* 0: absent */
    float beta_fast;  /* 0: absent */
};

static enum rb_status load(const struct meta *mt, struct rb_rope_scaling *rs, struct rb_errmsg *err)
{
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "general.architecture", "qwen2", 5) == RB_OK);
    if (mt->type)
        REQUIRE(rb_gguf_writer_set_str(w, "qwen2.rope.scaling.type", mt->type, strlen(mt->type)) ==
                RB_OK);
    if (mt->factor)
        REQUIRE(rb_gguf_writer_set_f32(w, "qwen2.rope.scaling.factor", mt->factor) == RB_OK);
    if (mt->orig)
        REQUIRE(rb_gguf_writer_set_u32(w, "qwen2.rope.scaling.original_context_length", mt->orig) ==
                RB_OK);
    if (mt->attn)
        REQUIRE(rb_gguf_writer_set_f32(w, "qwen2.rope.scaling.attn_factor", mt->attn) == RB_OK);
    if (mt->beta_fast)
        REQUIRE(rb_gguf_writer_set_f32(w, "qwen2.rope.scaling.yarn_beta_fast", mt->beta_fast) ==
                RB_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/r%d.gguf", dir, file_no++);
    REQUIRE(rb_gguf_writer_write(w, path) == RB_OK);
    rb_gguf_writer_free(w);
    struct rb_gguf *g = NULL;
    REQUIRE(rb_gguf_open(path, &g, err) == RB_OK);
    enum rb_status st = rb__rope_scaling_load(g, 64, 1000000.0f, 131072, rs, err);
    rb_gguf_close(g);
    return st;
}

static void test_metadata(void)
{
    struct rb_rope_scaling rs;
    struct rb_errmsg err = {{0}};
    struct meta m = {0};
    CHECK(load(&m, &rs, &err) == RB_OK && rs.type == RB_ROPE_SCALING_NONE &&
          rs.freq_scale == 1.0f && rs.ext_factor == 0.0f && rs.attn_factor == 1.0f);
    m = (struct meta){.type = "yarn", .factor = 4.0f, .orig = 32768};
    CHECK(load(&m, &rs, &err) == RB_OK);
    CHECK(rs.type == RB_ROPE_SCALING_YARN && rs.freq_scale == 0.25f && rs.ext_factor == 1.0f &&
          rs.attn_factor == 1.0f && rs.n_ctx_orig == 32768 && rs.beta_fast == 32.0f &&
          rs.beta_slow == 1.0f);
    float dims[2];
    rb__rope_yarn_corr_dims(64, 32768, 1000000.0f, 32.0f, 1.0f, dims);
    CHECK(rs.corr_dims[0] == dims[0] && rs.corr_dims[1] == dims[1]);
    /* the published formula for these numbers: low = floor(64 ln(32768/(64 pi))/(2 ln 1e6)) */
    CHECK_EQ_INT((int)dims[0], (int)floor(64 * log(32768 / (32 * 2 * M_PI)) / (2 * log(1e6))));
    CHECK_EQ_INT((int)dims[1], (int)ceil(64 * log(32768 / (1 * 2 * M_PI)) / (2 * log(1e6))));
    /* yarn without the original length falls back to the trained context */
    m = (struct meta){.type = "yarn", .factor = 4.0f, .beta_fast = 16.0f, .attn = 1.5f};
    CHECK(load(&m, &rs, &err) == RB_OK && rs.n_ctx_orig == 131072 && rs.beta_fast == 16.0f &&
          rs.attn_factor == 1.5f);
    m = (struct meta){.type = "linear", .factor = 2.0f};
    CHECK(load(&m, &rs, &err) == RB_OK && rs.type == RB_ROPE_SCALING_LINEAR &&
          rs.freq_scale == 0.5f && rs.ext_factor == 0.0f);
    m = (struct meta){.factor = 8.0f}; /* old files: factor without type = linear */
    CHECK(load(&m, &rs, &err) == RB_OK && rs.type == RB_ROPE_SCALING_LINEAR &&
          rs.freq_scale == 0.125f);
    m = (struct meta){.type = "none", .factor = 8.0f};
    CHECK(load(&m, &rs, &err) == RB_OK && rs.freq_scale == 1.0f);
    m = (struct meta){.type = "longrope", .factor = 8.0f};
    CHECK(load(&m, &rs, &err) == RB_ERR_UNSUPPORTED && strstr(err.text, "'longrope'"));
    m = (struct meta){.type = "yarn", .factor = -1.0f};
    CHECK(load(&m, &rs, &err) == RB_ERR_MODEL && strstr(err.text, "factor"));
    m = (struct meta){.type = "yarn", .factor = 4.0f, .beta_fast = -3.0f};
    CHECK(load(&m, &rs, &err) == RB_ERR_MODEL && strstr(err.text, "beta"));
    m = (struct meta){.type = "yarn", .factor = 4.0f, .attn = 1e9f};
    CHECK(load(&m, &rs, &err) == RB_ERR_MODEL);
}

int main(void)
{
    dir = check_tmpdir("engine-rope-scaling");
    test_math();
    test_metadata();
    return check_finish();
}
