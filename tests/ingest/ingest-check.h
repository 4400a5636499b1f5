/* Helpers shared by the ingest tests. */
#ifndef RAGBOX_TESTS_INGEST_CHECK_H
#define RAGBOX_TESTS_INGEST_CHECK_H

#include "check.h"
#include "ragbox/ingest.h"

/* Index of the first block of `kind` whose text contains `needle`, or -1. */
static inline long find_block(const struct rb_ingest_doc *d, int kind, const char *needle)
{
    for (size_t i = 0; d && i < d->n_blocks; i++) {
        const struct rb_ingest_block *b = &d->blocks[i];
        if (kind >= 0 && (int)b->kind != kind)
            continue;
        size_t n = b->byte_end - b->byte_start;
        if (memmem(d->text + b->byte_start, n, needle, strlen(needle)))
            return (long)i;
    }
    return -1;
}

/* Index of the first block of `kind` whose whole text is `text`, or -1. */
static inline long find_exact(const struct rb_ingest_doc *d, int kind, const char *text)
{
    for (size_t i = 0; d && i < d->n_blocks; i++) {
        const struct rb_ingest_block *b = &d->blocks[i];
        if ((kind < 0 || (int)b->kind == kind) && b->byte_end - b->byte_start == strlen(text) &&
            memcmp(d->text + b->byte_start, text, strlen(text)) == 0)
            return (long)i;
    }
    return -1;
}

/* Parses a shared document in the sandbox; NULL (and a failed check) on error. */
static inline struct rb_ingest_doc *parse_shared(const char *rel,
                                                 const struct rb_ingest_limits *lim)
{
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    enum rb_status st = rb_ingest_parse_file(check_shared(rel), lim, &d, &e);
    CHECK_MSG(st == RB_OK, "%s: %s: %s", rel, rb_status_name(st), e.text);
    return d;
}

/* Parses expecting a failure with `want`; returns the message's first bytes. */
static inline void parse_fails(const char *rel, enum rb_status want, const char *msg_part)
{
    struct rb_ingest_doc *d = NULL;
    struct rb_errmsg e = {{0}};
    enum rb_status st = rb_ingest_parse_file(check_shared(rel), NULL, &d, &e);
    CHECK_MSG(st == want, "%s: got %s (%s), want %s", rel, rb_status_name(st), e.text,
              rb_status_name(want));
    CHECK(d == NULL);
    if (msg_part)
        CHECK_MSG(strstr(e.text, msg_part) != NULL, "%s: message '%s' lacks '%s'", rel, e.text,
                  msg_part);
    rb_ingest_doc_free(d);
}

#endif
