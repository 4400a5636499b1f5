/* Compute backends (engine-private): the CPU implementation here, CUDA (issue 8) in
 * engine/src/cuda/ behind the same table of function pointers.
 *
 * Granularity: a backend runs whole forward passes over a batch (decoder) or a
 * sequence (encoder); the model graph code in model.c is the CPU implementation, and
 * its building blocks (quant-block.h per-block math, norms, rope, attention of one
 * query) are what a device backend reuses as __host__ __device__ functions. Weights
 * are uploaded once by init (the CPU backend uses the GGUF mapping in place); KV
 * caches are created by the backend so they live in its memory.
 *
 * Thread-safety: the table is immutable; calls on one model are serialised by the
 * caller (the model's compute lock). */
#ifndef RAGBOX_ENGINE_BACKEND_H
#define RAGBOX_ENGINE_BACKEND_H

#include "model.h"

struct rb_backend_i {
    const char *name;
    /* Prepares a loaded model for this backend (uploads weights). */
    enum rb_status (*init)(struct rb__model *m);
    void (*release)(struct rb__model *m);
    enum rb_status (*kv_create)(const struct rb__model *m, int n_ctx, struct rb__kv **out);
    void (*kv_free)(struct rb__kv *kv);
    /* Decoder forward over a batch (see struct rb__batch). */
    enum rb_status (*forward)(struct rb__model *m, const struct rb__batch *b);
    /* Encoder: one sequence -> pooled, normalised vector. */
    enum rb_status (*encode)(struct rb__model *m, const int32_t *tokens, int n, float *out);
    /* out (n_tok x rows) = act (n_tok x cols) . W^T for one weight matrix. */
    void (*matmul)(struct rb__model *m, const struct rb_wt *w, const float *act, int n_tok,
                   float *out);
};

/* The CPU backend (always available). */
const struct rb_backend_i *rb__backend_cpu(void);
/* The CUDA backend (backend-cuda-model.c): usable when rb__cuda_backend() finds a
 * device; its init() fails (and the caller stays on the CPU) otherwise. */
const struct rb_backend_i *rb__backend_cuda(void);

#endif
