/* Durability of the vector side: a crash between the SQLite commit and the
 * FAISS write recovers on reopen; missing, corrupt and truncated FAISS files
 * are rebuilt from SQLite; HNSW and IVF deletes never resurface. */
#include <sys/wait.h>

#include "helpers.h"

#define DIM 16

static void random_vec(float *v)
{
    for (int i = 0; i < DIM; i++)
        v[i] = rng_uniform();
}

static int64_t top1(struct rb_index *idx, int64_t cid, const float *q)
{
    struct rb_index_query vq = {.vector = q, .vector_dim = DIM, .mode = RB_INDEX_MODE_VECTOR,
                                .k = 1, .collection_ids = &cid, .n_collections = 1};
    struct rb_index_results r;
    if (rb_index_search(idx, &vq, &r) != RB_OK) {
        fprintf(stderr, "search: %s\n", rb_index_errmsg(idx));
        return -1;
    }
    int64_t id = r.n ? r.hits[0].chunk_id : 0;
    rb_index_results_free(&r);
    return id;
}

static size_t verify_problems(struct rb_index *idx)
{
    char **p;
    size_t n;
    if (rb_index_verify(idx, &p, &n) != RB_OK) {
        fprintf(stderr, "verify: %s\n", rb_index_errmsg(idx));
        return 999;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  verify: %s\n", p[i]);
    rb_index_problems_free(p, n);
    return n;
}

static int64_t faiss_ntotal(struct rb_index *idx, const char *name)
{
    struct rb_index_collection *c;
    if (rb_index_collection_get(idx, name, &c) != RB_OK)
        return -1;
    int64_t n = c->faiss_ntotal;
    rb_index_collection_free(c);
    return n;
}

static void test_crash(const char *dir)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "crash", NULL, &cid) == RB_OK);
    float v[DIM * 8];
    for (int i = 0; i < 8; i++)
        random_vec(v + i * DIM);
    const char *t[] = {"one", "two", "three", "four"};
    int64_t ids[8];
    REQUIRE(put_doc(idx, cid, "first", t, 4, v, DIM, ids) > 0);
    rb_index_close(idx); /* flushes: file written */
    char path[4300];
    snprintf(path, sizeof path, "%s/faiss/%lld.faiss", dir, (long long)cid);
    CHECK(file_exists(path));

    /* The child commits a document to SQLite and dies before writing FAISS. */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rb_index *c = open_dir(dir);
        if (!c)
            _exit(2);
        int64_t cids[8];
        if (put_doc(c, cid, "second", t, 4, v + 4 * DIM, DIM, cids) <= 0)
            _exit(3);
        _exit(0); /* no close, no flush: the FAISS file is now stale */
    }
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    idx = open_dir(dir); /* notices the stale file and rebuilds it */
    REQUIRE(idx);
    CHECK_EQ_INT(faiss_ntotal(idx, "crash"), 8);
    struct rb_index_document *d;
    REQUIRE(rb_index_document_find(idx, cid, "second", &d) == RB_OK);
    struct rb_index_chunk **chunks;
    size_t n;
    REQUIRE(rb_index_document_chunks(idx, d->id, &chunks, &n) == RB_OK && n == 4);
    CHECK_EQ_INT(top1(idx, cid, v + 5 * DIM), chunks[1]->id);
    rb_index_chunk_list_free(chunks, n);
    rb_index_document_free(d);
    CHECK_EQ_INT(top1(idx, cid, v + 0 * DIM), ids[0]);
    CHECK_EQ_INT(verify_problems(idx), 0);
    rb_index_close(idx);

    /* A crash after a delete: the deleted vectors must not come back. */
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rb_index *c = open_dir(dir);
        struct rb_index_document *dd;
        if (!c || rb_index_document_find(c, cid, "first", &dd) != RB_OK)
            _exit(2);
        if (rb_index_document_delete(c, dd->id) != RB_OK)
            _exit(3);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    idx = open_dir(dir);
    REQUIRE(idx);
    CHECK_EQ_INT(faiss_ntotal(idx, "crash"), 4);
    int64_t got = top1(idx, cid, v);
    CHECK(got != ids[0] && got > 0);
    CHECK_EQ_INT(verify_problems(idx), 0);
    rb_index_close(idx);
}

static void corrupt_file(const char *path, int how)
{
    if (how == 0) {
        FILE *f = fopen(path, "r+b");
        REQUIRE(f);
        fseek(f, 60, SEEK_SET);
        for (int i = 0; i < 64; i++)
            fputc(0x5A, f);
        fclose(f);
    } else if (how == 1) {
        REQUIRE(truncate(path, 10) == 0);
    } else {
        REQUIRE(unlink(path) == 0);
    }
}

static void test_corrupt(const char *dir)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "cor", NULL, &cid) == RB_OK);
    float v[DIM * 32];
    const char *t[32];
    for (int i = 0; i < 32; i++) {
        random_vec(v + i * DIM);
        t[i] = "chunk text";
    }
    int64_t ids[32];
    REQUIRE(put_doc(idx, cid, "doc", t, 32, v, DIM, ids) > 0);
    rb_index_close(idx);
    char path[4300];
    snprintf(path, sizeof path, "%s/faiss/%lld.faiss", dir, (long long)cid);
    for (int how = 0; how < 3; how++) {
        corrupt_file(path, how);
        idx = open_dir(dir);
        REQUIRE(idx);
        if (how == 0) {
            /* Same size, same generation: only the checksum tells. verify says so. */
            CHECK_EQ_INT(verify_problems(idx), 1);
        }
        CHECK_EQ_INT(top1(idx, cid, v + 17 * DIM), ids[17]); /* rebuilt from SQLite */
        rb_index_close(idx);
        idx = open_dir(dir);
        REQUIRE(idx);
        CHECK_MSG(verify_problems(idx) == 0, "after corruption %d", how);
        CHECK_EQ_INT(top1(idx, cid, v + 3 * DIM), ids[3]);
        rb_index_close(idx);
    }
    /* A garbage file that is not FAISS at all. */
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs("this is not a faiss index", f);
    fclose(f);
    idx = open_dir(dir);
    REQUIRE(idx);
    CHECK_EQ_INT(top1(idx, cid, v + 9 * DIM), ids[9]);
    rb_index_close(idx);
}

/* HNSW cannot remove ids: deleted chunks are filtered, and the flushed file is clean. */
static void test_deletes(const char *dir, const char *factory)
{
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    int64_t cid;
    struct rb_index_collection_options o = {.factory = factory};
    char name[64];
    snprintf(name, sizeof name, "del-%c", factory[0]);
    REQUIRE(rb_index_collection_create(idx, name, &o, &cid) == RB_OK);
    enum { NDOC = 60, PER = 20 };
    static float v[NDOC * PER * DIM];
    static int64_t ids[NDOC * PER];
    int64_t docs[NDOC];
    const char *t[PER];
    for (int i = 0; i < PER; i++)
        t[i] = "text";
    for (int d = 0; d < NDOC; d++) {
        for (int i = 0; i < PER; i++)
            random_vec(v + ((size_t)d * PER + i) * DIM);
        char src[32];
        snprintf(src, sizeof src, "d%d", d);
        docs[d] = put_doc(idx, cid, src, t, PER, v + (size_t)d * PER * DIM, DIM, ids + d * PER);
        REQUIRE(docs[d] > 0);
    }
    struct rb_index_collection *c;
    REQUIRE(rb_index_collection_get(idx, name, &c) == RB_OK);
    CHECK_STR(c->index_type, factory[0] == 'H' ? "hnsw" : "ivf");
    rb_index_collection_free(c);
    for (int d = 0; d < NDOC; d += 3)
        CHECK_EQ_INT(rb_index_document_delete(idx, docs[d]), RB_OK);
    int bad = 0, good = 0;
    for (int d = 0; d < NDOC; d++) {
        int64_t got = top1(idx, cid, v + (size_t)d * PER * DIM);
        if (d % 3 == 0)
            bad += got == ids[d * PER];
        else
            good += got == ids[d * PER];
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_MSG(good >= (NDOC - NDOC / 3) * 9 / 10, "%s: %d of %d found", factory, good, NDOC - NDOC / 3);
    CHECK_EQ_INT(verify_problems(idx), 0); /* flushes: HNSW rebuilt without the deleted */
    CHECK_EQ_INT(faiss_ntotal(idx, name), (NDOC - NDOC / 3) * PER);
    rb_index_close(idx);
    idx = open_dir(dir);
    REQUIRE(idx);
    bad = 0;
    for (int d = 0; d < NDOC; d += 3)
        bad += top1(idx, cid, v + (size_t)d * PER * DIM) == ids[d * PER];
    CHECK_EQ_INT(bad, 0);
    rb_index_close(idx);
}

int main(void)
{
    const char *dir = check_tmpdir("durability");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/crash", dir);
    test_crash(sub);
    snprintf(sub, sizeof sub, "%s/corrupt", dir);
    test_corrupt(sub);
    snprintf(sub, sizeof sub, "%s/deletes", dir);
    test_deletes(sub, "HNSW16,Flat");
    test_deletes(sub, "IVF8,Flat");
    return check_finish();
}
