/* Private helpers shared by the answer module's sources. */
#ifndef RAGBOX_ANSWER_IMPL_H
#define RAGBOX_ANSWER_IMPL_H

#include "ragbox/answer.h"

/* A set of terms with counts (open addressing). Keys are borrowed from the
 * struct rb_answer_terms it was built from, which must outlive it. */
struct rb__termset {
    const char **slot;
    size_t *count;
    size_t cap;   /* power of two */
    size_t n;     /* distinct terms */
    size_t total; /* terms counted */
};
RB_NODISCARD enum rb_status rb__termset_init(struct rb__termset *s, const struct rb_answer_terms *t);
size_t rb__termset_count(const struct rb__termset *s, const char *term);
void rb__termset_free(struct rb__termset *s);

/* Token estimate when the backend cannot count: one per CJK character, one per 4 other bytes. */
size_t rb__estimate_tokens(const char *text, size_t len);

/* Version of the built-in answer prompt (respond.c), recorded in the audit trail. */
#define RB__BUILTIN_TEMPLATE_VERSION "2026.11-1"

#endif
