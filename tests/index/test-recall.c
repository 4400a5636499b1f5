/* Vector recall against exact search on clustered synthetic data: Flat must be
 * exact; HNSW and IVF (through the same API, factory strings) must reach
 * recall@10 >= 0.95, also after a flush and reopen (parameters restored). */
#include <math.h>

#include "helpers.h"

#define DIM 64
#define N 20000
#define PER_DOC 500
#define CLUSTERS 100
#define QUERIES 100
#define K 10

static float data[(size_t)N * DIM];
static float queries[(size_t)QUERIES * DIM];
static int64_t truth[QUERIES][K]; /* row numbers 0..N-1 */

static float gauss(void)
{
    double u = (double)(rng_next() >> 11) / (double)(1ull << 53) + 1e-12;
    double v = (double)(rng_next() >> 11) / (double)(1ull << 53);
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void normalize(float *v)
{
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)v[i] * v[i];
    for (int i = 0; i < DIM; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

static void make_data(void)
{
    static float centers[CLUSTERS * DIM];
    for (int i = 0; i < CLUSTERS * DIM; i++)
        centers[i] = gauss();
    for (int n = 0; n < N; n++) {
        int c = (int)(rng_next() % CLUSTERS);
        for (int i = 0; i < DIM; i++)
            data[(size_t)n * DIM + i] = centers[c * DIM + i] + 0.9f * gauss();
        normalize(data + (size_t)n * DIM);
    }
    for (int q = 0; q < QUERIES; q++) {
        int c = (int)(rng_next() % CLUSTERS);
        for (int i = 0; i < DIM; i++)
            queries[(size_t)q * DIM + i] = centers[c * DIM + i] + 0.9f * gauss();
        normalize(queries + (size_t)q * DIM);
        /* Exact top K by inner product. */
        float best[K];
        for (int k = 0; k < K; k++) {
            best[k] = -INFINITY;
            truth[q][k] = -1;
        }
        for (int n = 0; n < N; n++) {
            float s = 0;
            for (int i = 0; i < DIM; i++)
                s += queries[(size_t)q * DIM + i] * data[(size_t)n * DIM + i];
            if (s <= best[K - 1])
                continue;
            int k = K - 1;
            while (k > 0 && best[k - 1] < s) {
                best[k] = best[k - 1];
                truth[q][k] = truth[q][k - 1];
                k--;
            }
            best[k] = s;
            truth[q][k] = n;
        }
    }
}

static int64_t chunk_ids[N]; /* chunk id of each row, per collection */

static int64_t fill(struct rb_index *idx, const char *name, const char *factory)
{
    int64_t cid;
    struct rb_index_collection_options o = {.factory = factory};
    REQUIRE(rb_index_collection_create(idx, name, &o, &cid) == RB_OK);
    static struct rb_index_chunk ch[PER_DOC];
    for (int d = 0; d < N / PER_DOC; d++) {
        for (int i = 0; i < PER_DOC; i++) {
            size_t row = (size_t)d * PER_DOC + (size_t)i;
            memset(&ch[i], 0, sizeof ch[i]);
            ch[i].text = "synthetic";
            ch[i].ordinal = i;
            ch[i].embedding = data + row * DIM;
            ch[i].embedding_dim = DIM;
        }
        char src[32];
        snprintf(src, sizeof src, "doc-%d", d);
        struct rb_index_document doc = {.collection_id = cid, .source = src};
        REQUIRE(rb_index_document_put(idx, &doc, ch, PER_DOC, NULL,
                                      chunk_ids + (size_t)d * PER_DOC) == RB_OK);
    }
    return cid;
}

/* Chunk ids are assigned in row order per collection: id = first + row. */
static double recall(struct rb_index *idx, int64_t cid, int64_t first_id)
{
    int found = 0;
    for (int q = 0; q < QUERIES; q++) {
        struct rb_index_query qq = {.vector = queries + (size_t)q * DIM, .vector_dim = DIM,
                                    .mode = RB_INDEX_MODE_VECTOR, .k = K, .collection_ids = &cid,
                                    .n_collections = 1};
        struct rb_index_results r;
        if (rb_index_search(idx, &qq, &r) != RB_OK) {
            CHECK_MSG(0, "search: %s", rb_index_errmsg(idx));
            return 0;
        }
        for (size_t h = 0; h < r.n; h++)
            for (int k = 0; k < K; k++)
                found += r.hits[h].chunk_id == first_id + truth[q][k];
        rb_index_results_free(&r);
    }
    return (double)found / (QUERIES * K);
}

int main(void)
{
    const char *dir = check_tmpdir("recall");
    make_data();
    struct rb_index *idx = open_dir(dir);
    REQUIRE(idx);
    const char *names[] = {"flat", "hnsw", "ivf"};
    const char *factories[] = {"Flat", "HNSW32,Flat", "IVF128,Flat"};
    const char *types[] = {"flat", "hnsw", "ivf"};
    int64_t cids[3], first[3];
    for (int i = 0; i < 3; i++) {
        cids[i] = fill(idx, names[i], factories[i]);
        first[i] = chunk_ids[0];
        CHECK_EQ_INT(chunk_ids[N - 1], first[i] + N - 1);
        struct rb_index_collection *c;
        REQUIRE(rb_index_collection_get(idx, names[i], &c) == RB_OK);
        CHECK_STR(c->index_type, types[i]);
        CHECK_EQ_INT(c->faiss_ntotal, N);
        rb_index_collection_free(c);
    }
    double r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = recall(idx, cids[i], first[i]);
        fprintf(stderr, "%s: recall@10 %.4f\n", names[i], r[i]);
    }
    CHECK(r[0] >= 0.999);
    CHECK(r[1] >= 0.95);
    CHECK(r[2] >= 0.95);
    rb_index_close(idx);
    idx = open_dir(dir);
    REQUIRE(idx);
    for (int i = 1; i < 3; i++) {
        double again = recall(idx, cids[i], first[i]);
        fprintf(stderr, "%s after reopen: recall@10 %.4f\n", names[i], again);
        CHECK(again >= 0.95);
    }
    char **p;
    size_t n;
    REQUIRE(rb_index_verify(idx, &p, &n) == RB_OK);
    CHECK_EQ_INT(n, 0);
    rb_index_problems_free(p, n);
    rb_index_close(idx);
    return check_finish();
}
