/* The engine's embedding model as an ingest embedder. */
#include <string.h>

#include "ingest-impl.h"
#include "ragbox/engine.h"

static enum rb_status embed(void *ctx, const char *const *texts, size_t n, float *out,
                            struct rb_errmsg *err)
{
    struct rb_engine_model *m = ctx;
    enum rb_status st = rb_engine_embed(m, texts, n, out);
    if (st != RB_OK && err)
        rb_errmsg_set(err, st, "embedding: %s", rb_engine_model_errmsg(m));
    return st;
}

static size_t count_tokens(void *ctx, const char *text, size_t len)
{
    size_t n = 0;
    if (rb_engine_model_count_tokens(ctx, text, len, &n) != RB_OK)
        return rb_ingest_estimate_tokens(NULL, text, len);
    return n;
}

enum rb_status rb_ingest_embedder_from_engine(struct rb_engine_model *model,
                                              struct rb_ingest_embedder *out,
                                              struct rb_errmsg *err)
{
    memset(out, 0, sizeof *out);
    if (!model || rb_engine_model_kind(model) != RB_ENGINE_MODEL_EMBED)
        return err ? rb_errmsg_set(err, RB_ERR_INVALID, "not an embedding model") : RB_ERR_INVALID;
    out->ctx = model;
    out->dim = rb_engine_model_dim(model);
    out->max_batch = 16;
    out->embed = embed;
    out->count_tokens = count_tokens;
    return RB_OK;
}
