/* RoPE context scaling (engine-private): linear position interpolation and YaRN, read
 * from the GGUF metadata and applied per rotation pair as the reference (ggml's
 * rope_yarn) computes them.
 *
 *   theta_extrap = pos * base^(-2i/n_rot) / freq_factor[i]
 *   theta_interp = freq_scale * theta_extrap            (freq_scale = 1 / factor)
 *   YaRN: ramp_i = 1 - clamp((i - low) / max(0.001, high - low), 0, 1)
 *         theta  = theta_interp * (1 - ramp_i * ext) + theta_extrap * ramp_i * ext
 *         mscale = attn_factor * (1 + 0.1 * ln(1 / freq_scale))
 *         low/high = floor/ceil of n_rot * ln(n_ctx_orig / (beta * 2 pi)) / (2 ln base)
 *                    for beta_fast / beta_slow, clamped to [0, n_rot - 1]
 *   cos/sin(theta) * mscale rotate the pair (so q.k is scaled by mscale^2).
 *
 * Keys: <arch>.rope.scaling.type ("none", "linear", "yarn"), .factor, .attn_factor,
 * .original_context_length, .yarn_ext_factor, .yarn_attn_factor, .yarn_beta_fast,
 * .yarn_beta_slow. Other types ("longrope" ...) are refused with a message.
 */
#ifndef RAGBOX_ENGINE_ROPE_SCALING_H
#define RAGBOX_ENGINE_ROPE_SCALING_H

#include <math.h>
#include <stdbool.h>

#include "gguf.h"

enum rb_rope_scaling_type {
    RB_ROPE_SCALING_NONE = 0,
    RB_ROPE_SCALING_LINEAR = 1,
    RB_ROPE_SCALING_YARN = 2,
};

struct rb_rope_scaling {
    enum rb_rope_scaling_type type;
    float freq_scale;  /* 1 / factor (1: none) */
    float ext_factor;  /* YaRN extrapolation mix (0: off) */
    float attn_factor; /* magnitude scale before YaRN's own correction */
    float beta_fast, beta_slow;
    int n_ctx_orig;
    float corr_dims[2];
};

/* Reads the scaling of model g (n_rot rotated dims, base, trained context). */
RB_NODISCARD enum rb_status rb__rope_scaling_load(const struct rb_gguf *g, int n_rot,
                                                  float freq_base, int n_ctx_train,
                                                  struct rb_rope_scaling *out,
                                                  struct rb_errmsg *err);

/* YaRN's correction dimension for `n_rot_target` rotations over n_ctx_orig. */
static inline float rb__rope_yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_target,
                                           float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot_target * 2.0f * 3.14159265358979f)) /
           (2.0f * logf(base));
}

static inline void rb__rope_yarn_corr_dims(int n_dims, int n_ctx_orig, float base, float beta_fast,
                                           float beta_slow, float dims[2])
{
    const float start = floorf(rb__rope_yarn_corr_dim(n_dims, n_ctx_orig, beta_fast, base));
    const float end = ceilf(rb__rope_yarn_corr_dim(n_dims, n_ctx_orig, beta_slow, base));
    dims[0] = start > 0.0f ? start : 0.0f;
    dims[1] = end < (float)(n_dims - 1) ? end : (float)(n_dims - 1);
}

/* cos and sin (times the magnitude scale) of rotation pair `pair` whose unscaled
 * angle is theta_extrap. With ext_factor 0 and attn_factor 1 this is exactly
 * cos/sin(freq_scale * theta_extrap). */
static inline void rb__rope_yarn(float theta_extrap, float freq_scale, const float corr_dims[2],
                                 int pair, float ext_factor, float attn_factor, float *c, float *s)
{
    const float theta_interp = freq_scale * theta_extrap;
    float theta = theta_interp, mscale = attn_factor;
    if (ext_factor != 0.0f) {
        const float span = corr_dims[1] - corr_dims[0];
        float y = ((float)pair - corr_dims[0]) / (span > 0.001f ? span : 0.001f);
        y = y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
        const float mix = (1.0f - y) * ext_factor;
        theta = theta_interp * (1.0f - mix) + theta_extrap * mix;
        mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
    }
    *c = cosf(theta) * mscale;
    *s = sinf(theta) * mscale;
}

#endif
