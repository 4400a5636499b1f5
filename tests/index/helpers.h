/* Shared helpers for the index tests. */
#ifndef RAGBOX_TESTS_INDEX_HELPERS_H
#define RAGBOX_TESTS_INDEX_HELPERS_H

#include <stdint.h>

#include "check.h"
#include "ragbox/index.h"

static inline struct rb_index *open_dir(const char *dir)
{
    struct rb_index_options o = {.data_dir = dir};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    if (rb_index_open(&o, &idx, &err) != RB_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err.text);
        return NULL;
    }
    return idx;
}

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static inline uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static inline float rng_uniform(void) /* [-1, 1) */
{
    return (float)((double)(rng_next() >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* Puts one document with one chunk per text; vectors (dim each) optional. */
static inline int64_t put_doc(struct rb_index *idx, int64_t cid, const char *source, const char **texts,
                       size_t n, const float *vecs, int dim, int64_t *chunk_ids)
{
    struct rb_index_chunk ch[64];
    memset(ch, 0, sizeof ch);
    for (size_t i = 0; i < n; i++) {
        ch[i].ordinal = (int32_t)i;
        ch[i].text = texts[i];
        ch[i].page_start = (int32_t)i + 1;
        if (vecs) {
            ch[i].embedding = vecs + i * (size_t)dim;
            ch[i].embedding_dim = dim;
        }
    }
    struct rb_index_document d = {.collection_id = cid, .source = source,
                                  .state = RB_INDEX_DOC_INDEXED, .sha256 = "00"};
    int64_t id = 0;
    enum rb_status st = rb_index_document_put(idx, &d, ch, n, &id, chunk_ids);
    if (st != RB_OK)
        fprintf(stderr, "put %s: %s\n", source, rb_index_errmsg(idx));
    return st == RB_OK ? id : 0;
}

static inline bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

#endif
