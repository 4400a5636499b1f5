/* SentencePiece unigram ("UGM", GGUF tokenizer.ggml.model = "t5") segmentation
 * (engine-private): used by T5-family and XLM-RoBERTa / bge-m3 embedding models.
 *
 * Normalisation follows SentencePiece: user-defined pieces pass through untouched,
 * otherwise the longest input prefix found in the precompiled charsmap (a darts-clone
 * double array followed by NUL-terminated replacement strings) is replaced, other
 * valid UTF-8 is copied and each invalid byte becomes U+FFFD; then spaces become
 * U+2581 with add_dummy_prefix / remove_extra_whitespaces. Segmentation is the
 * Viterbi best path over the token scores (double sums; user-defined pieces score 0;
 * a code point with no single-code-point piece can be the unknown token at
 * min(normal scores) - 10). Consecutive unknowns collapse into one, unless the
 * vocabulary has all 256 <0xXX> byte pieces (SentencePiece byte fallback), in which
 * case an unknown code point becomes its UTF-8 bytes.
 *
 * Thread-safety: a struct rb__ugm is immutable after rb__ugm_create; encode calls may
 * run concurrently (each allocates its own scratch).
 */
#ifndef RAGBOX_ENGINE_TOKENIZER_UGM_H
#define RAGBOX_ENGINE_TOKENIZER_UGM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* A growable array of token ids (free v with free()). */
struct rb__ivec {
    int32_t *v;
    size_t n, cap;
};
bool rb__ivec_push(struct rb__ivec *a, int32_t x);

/* One vocabulary entry as the tokenizer holds it (attr: RB_ENGINE_TOKEN_ATTR_* bits). */
struct rb__ugm_token {
    const char *text; /* borrowed during rb__ugm_create only */
    uint32_t len;
    float score;
    uint8_t attr;
};

struct rb__ugm_options {
    int32_t unk;                   /* unknown token id (required unless byte fallback) */
    bool add_dummy_prefix;         /* tokenizer.ggml.add_space_prefix */
    bool remove_extra_whitespaces; /* tokenizer.ggml.remove_extra_whitespaces */
    const uint8_t *charsmap;       /* tokenizer.ggml.precompiled_charsmap; borrowed; may be NULL */
    size_t charsmap_len;
};

struct rb__ugm;

/* Builds the matcher. tokens: caller-owned array of n. Errors (a charsmap whose
 * header or leaves point outside it, no unknown token) get a message in err. */
RB_NODISCARD enum rb_status rb__ugm_create(const struct rb__ugm_token *tokens, uint32_t n,
                                           const struct rb__ugm_options *opt, struct rb__ugm **out,
                                           struct rb_errmsg *err);
void rb__ugm_free(struct rb__ugm *u);

/* Appends the tokens of one raw text fragment (no special-token handling) to out. */
RB_NODISCARD enum rb_status rb__ugm_encode(const struct rb__ugm *u, const char *text, size_t len,
                                           struct rb__ivec *out);

/* The normalised form of text (charsmap + whitespace rules, spaces as U+2581), for tests
 * and diagnostics. *norm: caller frees with free(); NUL-terminated. */
RB_NODISCARD enum rb_status rb__ugm_normalize(const struct rb__ugm *u, const char *text, size_t len,
                                              char **norm, size_t *norm_len);

/* The best segmentation's total score for text (normalised first), for tests. */
RB_NODISCARD enum rb_status rb__ugm_best_score(const struct rb__ugm *u, const char *text,
                                               size_t len, double *score);

#endif
