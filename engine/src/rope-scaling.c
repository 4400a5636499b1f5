/* RoPE scaling metadata (see rope-scaling.h). */
#include "rope-scaling.h"

#include <stdio.h>
#include <string.h>

static bool get_f32(const struct rb_gguf *g, const char *suffix, float *v)
{
    return rb_gguf_get_arch_f32(g, suffix, v) == RB_OK;
}

enum rb_status rb__rope_scaling_load(const struct rb_gguf *g, int n_rot, float freq_base,
                                     int n_ctx_train, struct rb_rope_scaling *out,
                                     struct rb_errmsg *err)
{
    *out = (struct rb_rope_scaling){.type = RB_ROPE_SCALING_NONE,
                                    .freq_scale = 1.0f,
                                    .ext_factor = 0.0f,
                                    .attn_factor = 1.0f,
                                    .beta_fast = 32.0f,
                                    .beta_slow = 1.0f,
                                    .n_ctx_orig = n_ctx_train};
    const char *arch = rb_gguf_arch(g);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch ? arch : "");
    struct rb_gguf_str stype = {0};
    enum rb_status st = rb_gguf_get_str(g, key, &stype);
    bool has_type = st == RB_OK;
    if (st != RB_OK && st != RB_ERR_NOT_FOUND)
        return rb_errmsg_set(err, RB_ERR_MODEL, "metadata %s is not a string", key);
    float factor = 1.0f;
    bool has_factor = get_f32(g, "rope.scaling.factor", &factor);
    if (has_factor && !(factor > 0.0f && factor <= 1024.0f))
        return rb_errmsg_set(err, RB_ERR_MODEL, "rope.scaling.factor %g is out of range",
                             (double)factor);
#define TYPE_IS(s) (stype.len == strlen(s) && memcmp(stype.ptr, s, strlen(s)) == 0)
    if (!has_type) {
        /* older files: a factor alone means linear interpolation */
        out->type = has_factor && factor != 1.0f ? RB_ROPE_SCALING_LINEAR : RB_ROPE_SCALING_NONE;
    } else if (TYPE_IS("none")) {
        out->type = RB_ROPE_SCALING_NONE;
    } else if (TYPE_IS("linear")) {
        out->type = RB_ROPE_SCALING_LINEAR;
    } else if (TYPE_IS("yarn")) {
        out->type = RB_ROPE_SCALING_YARN;
    } else {
        return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                             "rope scaling type '%.*s' is not supported (none, linear, yarn are)",
                             (int)(stype.len > 64 ? 64 : stype.len), stype.ptr ? stype.ptr : "");
    }
#undef TYPE_IS
    if (out->type == RB_ROPE_SCALING_NONE)
        return RB_OK;
    out->freq_scale = 1.0f / factor;
    float v;
    if (get_f32(g, "rope.scaling.attn_factor", &v)) {
        if (!(v > 0.0f && v < 100.0f))
            return rb_errmsg_set(err, RB_ERR_MODEL, "rope.scaling.attn_factor %g out of range",
                                 (double)v);
        out->attn_factor = v;
    }
    if (out->type != RB_ROPE_SCALING_YARN)
        return RB_OK;
    out->ext_factor = 1.0f;
    if (get_f32(g, "rope.scaling.yarn_ext_factor", &v) && v >= 0.0f && v <= 1.0f)
        out->ext_factor = v;
    if (get_f32(g, "rope.scaling.yarn_attn_factor", &v)) {
        if (!(v > 0.0f && v < 100.0f))
            return rb_errmsg_set(err, RB_ERR_MODEL, "rope.scaling.yarn_attn_factor %g out of range",
                                 (double)v);
        out->attn_factor = v;
    }
    if (get_f32(g, "rope.scaling.yarn_beta_fast", &v))
        out->beta_fast = v;
    if (get_f32(g, "rope.scaling.yarn_beta_slow", &v))
        out->beta_slow = v;
    if (!(out->beta_fast > 0.0f && out->beta_slow > 0.0f && out->beta_fast < 1e6f &&
          out->beta_slow < 1e6f))
        return rb_errmsg_set(err, RB_ERR_MODEL, "YaRN beta_fast %g / beta_slow %g out of range",
                             (double)out->beta_fast, (double)out->beta_slow);
    uint32_t orig;
    st = rb_gguf_get_arch_u32(g, "rope.scaling.original_context_length", &orig);
    if (st == RB_OK) {
        if (orig == 0 || orig > (1u << 24))
            return rb_errmsg_set(err, RB_ERR_MODEL,
                                 "rope.scaling.original_context_length %u out of range", orig);
        out->n_ctx_orig = (int)orig;
    } else if (st != RB_ERR_NOT_FOUND) {
        return rb_errmsg_set(err, RB_ERR_MODEL,
                             "rope.scaling.original_context_length has the wrong type");
    }
    if (!(freq_base > 1.0f))
        return rb_errmsg_set(err, RB_ERR_MODEL, "rope.freq_base %g is invalid for YaRN",
                             (double)freq_base);
    rb__rope_yarn_corr_dims(n_rot, out->n_ctx_orig, freq_base, out->beta_fast, out->beta_slow,
                            out->corr_dims);
    return RB_OK;
}
