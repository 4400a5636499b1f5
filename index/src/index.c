/* Skeleton: the API compiles; the implementation follows in the next commits. */
#include <stdlib.h>
#include <string.h>

#include "ragbox/index.h"

#define NI RB_ERR_UNSUPPORTED
enum rb_status rb_index_open(const struct rb_index_options *o, struct rb_index **out, struct rb_errmsg *e) { *out = NULL; return e ? rb_errmsg_set(e, NI, "index: not implemented yet") : NI; }
void rb_index_close(struct rb_index *idx) { (void)idx; }
const char *rb_index_errmsg(struct rb_index *idx) { return ""; }
const char *rb_index_db_path(const struct rb_index *idx) { return NULL; }
enum rb_status rb_index_flush(struct rb_index *idx) { return NI; }
void rb_index_collection_free(struct rb_index_collection *c) { (void)c; }
void rb_index_collection_list_free(struct rb_index_collection *l, size_t n) { (void)l; (void)n; }
enum rb_status rb_index_collection_create(struct rb_index *idx, const char *name, const struct rb_index_collection_options *o, int64_t *id) { return NI; }
enum rb_status rb_index_collection_get(struct rb_index *idx, const char *name, struct rb_index_collection **out) { *out = NULL; return NI; }
enum rb_status rb_index_collection_get_by_id(struct rb_index *idx, int64_t id, struct rb_index_collection **out) { *out = NULL; return NI; }
enum rb_status rb_index_collection_list(struct rb_index *idx, struct rb_index_collection **out, size_t *n) { *out = NULL; *n = 0; return NI; }
enum rb_status rb_index_collection_delete(struct rb_index *idx, int64_t id) { return NI; }
enum rb_status rb_index_collection_set_policy(struct rb_index *idx, int64_t id, const char *p) { return NI; }
const char *rb_index_doc_state_name(enum rb_index_doc_state s) { return "pending"; }
void rb_index_document_free(struct rb_index_document *d) { (void)d; }
void rb_index_document_list_free(struct rb_index_document **l, size_t n) { (void)l; }
void rb_index_chunk_free(struct rb_index_chunk *c) { (void)c; }
void rb_index_chunk_list_free(struct rb_index_chunk **l, size_t n) { (void)l; }
enum rb_status rb_index_document_put(struct rb_index *idx, const struct rb_index_document *d, const struct rb_index_chunk *c, size_t n, int64_t *id, int64_t *cids) { return NI; }
enum rb_status rb_index_document_set_state(struct rb_index *idx, int64_t id, enum rb_index_doc_state s, const char *e) { return NI; }
enum rb_status rb_index_document_get(struct rb_index *idx, int64_t id, struct rb_index_document **out) { *out = NULL; return NI; }
enum rb_status rb_index_document_find(struct rb_index *idx, int64_t cid, const char *s, struct rb_index_document **out) { *out = NULL; return NI; }
enum rb_status rb_index_document_find_sha256(struct rb_index *idx, int64_t cid, const char *s, struct rb_index_document ***out, size_t *n) { *out = NULL; *n = 0; return NI; }
enum rb_status rb_index_document_rename(struct rb_index *idx, int64_t id, const char *s) { return NI; }
enum rb_status rb_index_document_delete(struct rb_index *idx, int64_t id) { return NI; }
enum rb_status rb_index_document_list(struct rb_index *idx, int64_t cid, int64_t off, int64_t lim, struct rb_index_document ***out, size_t *n) { *out = NULL; *n = 0; return NI; }
enum rb_status rb_index_chunk_get(struct rb_index *idx, int64_t id, struct rb_index_chunk **out) { *out = NULL; return NI; }
enum rb_status rb_index_document_chunks(struct rb_index *idx, int64_t id, struct rb_index_chunk ***out, size_t *n) { *out = NULL; *n = 0; return NI; }
const char *rb_index_mode_name(enum rb_index_mode m) { return "auto"; }
enum rb_status rb_index_mode_parse(const char *t, enum rb_index_mode *out) { return NI; }
void rb_index_results_free(struct rb_index_results *r) { (void)r; }
enum rb_status rb_index_search(struct rb_index *idx, const struct rb_index_query *q, struct rb_index_results *out) { memset(out, 0, sizeof *out); return NI; }
enum rb_status rb_index_verify(struct rb_index *idx, char ***p, size_t *n) { *p = NULL; *n = 0; return NI; }
void rb_index_problems_free(char **p, size_t n) { (void)p; }
enum rb_status rb_index_rebuild(struct rb_index *idx, int64_t cid, unsigned w) { return NI; }
size_t rb_index_tokenize(const char *t, size_t l, void (*emit)(void *, const char *, size_t, size_t, size_t), void *ctx) { return 0; }
