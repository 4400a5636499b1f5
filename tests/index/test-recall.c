/* Vector recall against exact search on clustered synthetic data: Flat must be
 * exact; HNSW and IVF (through the same API, factory strings) must reach
 * recall@10 >= 0.95, also after a flush and reopen (parameters restored).
 * "auto": Flat below [index] auto_ivf_threshold, IVF (nlist from the size) from
 * it at flush, recall >= 0.95, the same results after reopen, retrained with
 * more lists when it grows, deletes removed at once, a crash between the
 * SQLite commit and the FAISS write recovered, back to Flat when the threshold
 * rises above twice its size (and the old key name still read). */
#include <math.h>
#include <sys/wait.h>

#include "helpers.h"

#define DIM 64
#define N 6000
#define N_ALL 12000 /* the auto collection grows to this */
#define PER_DOC 500
#define CLUSTERS 100
#define QUERIES 100
#define K 10

static float data[(size_t)N_ALL * DIM];
static float queries[(size_t)QUERIES * DIM];
static int64_t truth[QUERIES][K];     /* row numbers 0..N-1 */
static int64_t truth_all[QUERIES][K]; /* over all N_ALL rows */

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

static void exact(int rows, int64_t (*tr)[K]);

static void make_data(void)
{
    static float centers[CLUSTERS * DIM];
    for (int i = 0; i < CLUSTERS * DIM; i++)
        centers[i] = gauss();
    for (int n = 0; n < N_ALL; n++) {
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
    }
    exact(N, truth);
    exact(N_ALL, truth_all);
}

/* Exact top K by inner product over the first rows. */
static void exact(int rows, int64_t (*tr)[K])
{
    for (int q = 0; q < QUERIES; q++) {
        float best[K];
        for (int k = 0; k < K; k++) {
            best[k] = -INFINITY;
            tr[q][k] = -1;
        }
        for (int n = 0; n < rows; n++) {
            float s = 0;
            for (int i = 0; i < DIM; i++)
                s += queries[(size_t)q * DIM + i] * data[(size_t)n * DIM + i];
            if (s <= best[K - 1])
                continue;
            int k = K - 1;
            while (k > 0 && best[k - 1] < s) {
                best[k] = best[k - 1];
                tr[q][k] = tr[q][k - 1];
                k--;
            }
            best[k] = s;
            tr[q][k] = n;
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

/* ------------------------------------------------------------------ auto */

static struct rb_config *cfgs[8]; /* must outlive the handles: freed at the end */
static int n_cfgs;

static struct rb_index *open_cfg(const char *dir, const char *key, const char *value)
{
    struct rb_config *cfg;
    if (n_cfgs == 8 || rb_config_create(&cfg) != RB_OK)
        return NULL;
    cfgs[n_cfgs++] = cfg;
    if (rb_config_set(cfg, "index", key, value) != RB_OK)
        return NULL;
    struct rb_index_options o = {.data_dir = dir, .config = cfg};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    if (rb_index_open(&o, &idx, &err) != RB_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err.text);
        return NULL;
    }
    return idx;
}

static int64_t row_id[N_ALL]; /* chunk id of each row in the auto collection */

/* Rows [row0, row0 + rows) as documents of PER_DOC chunks named row-<first row>. */
static bool put_rows(struct rb_index *idx, int64_t cid, int row0, int rows, const char *prefix)
{
    static struct rb_index_chunk ch[PER_DOC];
    for (int d = row0; d < row0 + rows; d += PER_DOC) {
        for (int i = 0; i < PER_DOC; i++) {
            memset(&ch[i], 0, sizeof ch[i]);
            ch[i].text = "synthetic";
            ch[i].ordinal = i;
            ch[i].embedding = data + (size_t)(d + i) * DIM;
            ch[i].embedding_dim = DIM;
        }
        char src[32];
        snprintf(src, sizeof src, "%s-%d", prefix, d);
        struct rb_index_document doc = {.collection_id = cid, .source = src};
        if (rb_index_document_put(idx, &doc, ch, PER_DOC, NULL, row_id + d) != RB_OK) {
            fprintf(stderr, "put: %s\n", rb_index_errmsg(idx));
            return false;
        }
    }
    return true;
}

/* recall@10 of the auto collection against tr; top receives the hit ids. */
static double recall_rows(struct rb_index *idx, int64_t cid, int64_t (*tr)[K],
                          int64_t (*top)[K])
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
        for (int k = 0; k < K; k++)
            top[q][k] = k < (int)r.n ? r.hits[k].chunk_id : -1;
        for (size_t h = 0; h < r.n; h++)
            for (int k = 0; k < K; k++)
                found += r.hits[h].chunk_id == row_id[tr[q][k]];
        rb_index_results_free(&r);
    }
    return (double)found / (QUERIES * K);
}

static void expect_index(struct rb_index *idx, const char *type, const char *desc,
                         int64_t ntotal)
{
    struct rb_index_collection *c;
    REQUIRE(rb_index_collection_get(idx, "auto", &c) == RB_OK);
    CHECK_STR(c->index_type, type);
    if (desc)
        CHECK_STR(c->index_desc, desc);
    CHECK_EQ_INT(c->faiss_ntotal, ntotal);
    CHECK_EQ_INT(c->vectors, ntotal);
    rb_index_collection_free(c);
}

static size_t problems(struct rb_index *idx)
{
    char **p;
    size_t n;
    if (rb_index_verify(idx, &p, &n) != RB_OK)
        return 999;
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  verify: %s\n", p[i]);
    rb_index_problems_free(p, n);
    return n;
}

static int64_t top1(struct rb_index *idx, int64_t cid, const float *v)
{
    struct rb_index_query qq = {.vector = v, .vector_dim = DIM, .mode = RB_INDEX_MODE_VECTOR,
                                .k = 1, .collection_ids = &cid, .n_collections = 1};
    struct rb_index_results r;
    if (rb_index_search(idx, &qq, &r) != RB_OK)
        return -1;
    int64_t id = r.n ? r.hits[0].chunk_id : 0;
    rb_index_results_free(&r);
    return id;
}

static int64_t top_a[QUERIES][K], top_b[QUERIES][K];

static void test_auto(const char *parent)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/auto", parent);
    struct rb_index *idx = open_cfg(dir, "auto_ivf_threshold", "1000");
    REQUIRE(idx);
    int64_t cid;
    REQUIRE(rb_index_collection_create(idx, "auto", NULL, &cid) == RB_OK);
    REQUIRE(put_rows(idx, cid, 0, N, "row"));
    /* Flat while it fills; IVF from the flush: nlist = 4*sqrt(6000) ~ 310 -> 256,
     * halved to 128 for 39 training points per list; nprobe max(16, 128/64). */
    expect_index(idx, "flat", "Flat", N);
    REQUIRE(rb_index_flush(idx) == RB_OK);
    expect_index(idx, "ivf", "IVF128 nprobe=16", N);
    double r = recall_rows(idx, cid, truth, top_a);
    fprintf(stderr, "auto at %d vectors (IVF128): recall@10 %.4f\n", N, r);
    CHECK(r >= 0.95);
    CHECK_EQ_INT(problems(idx), 0);
    rb_index_close(idx);

    /* Reopen: the IVF file is loaded (not rebuilt) and answers identically. */
    idx = open_cfg(dir, "auto_ivf_threshold", "1000");
    REQUIRE(idx);
    r = recall_rows(idx, cid, truth, top_b);
    expect_index(idx, "ivf", "IVF128 nprobe=16", N);
    CHECK(memcmp(top_a, top_b, sizeof top_a) == 0);
    CHECK(r >= 0.95);

    /* Grows x2: 4*sqrt(12000) ~ 438 -> 512, 39 points per list -> 256 = twice
     * the lists: retrained at flush. */
    REQUIRE(put_rows(idx, cid, N, N_ALL - N, "row"));
    expect_index(idx, "ivf", "IVF128 nprobe=16", N_ALL); /* new vectors go into the lists */
    REQUIRE(rb_index_flush(idx) == RB_OK);
    expect_index(idx, "ivf", "IVF256 nprobe=16", N_ALL);
    r = recall_rows(idx, cid, truth_all, top_a);
    fprintf(stderr, "auto at %d vectors (IVF256): recall@10 %.4f\n", N_ALL, r);
    CHECK(r >= 0.95);
    CHECK_EQ_INT(problems(idx), 0);

    /* Deletes leave the IVF at once (no tombstones, no rebuild). */
    int64_t first = row_id[0];
    CHECK_EQ_INT(top1(idx, cid, data), first);
    struct rb_index_document *d;
    REQUIRE(rb_index_document_find(idx, cid, "row-0", &d) == RB_OK);
    REQUIRE(rb_index_document_delete(idx, d->id) == RB_OK);
    rb_index_document_free(d);
    expect_index(idx, "ivf", "IVF256 nprobe=16", N_ALL - PER_DOC);
    int64_t after = top1(idx, cid, data);
    CHECK(after > 0 && (after < first || after >= first + PER_DOC));
    rb_index_close(idx);

    /* Crash between the SQLite commit and the FAISS write: reopen rebuilds the
     * IVF. The child is a fresh process (libgomp's threads do not survive fork). */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char arg[64];
        snprintf(arg, sizeof arg, "%lld", (long long)cid);
        execl("/proc/self/exe", "test-index-recall", "--crash-child", dir, arg, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    idx = open_cfg(dir, "auto_ivf_threshold", "1000");
    REQUIRE(idx);
    expect_index(idx, "ivf", "IVF256 nprobe=16", N_ALL);
    REQUIRE(rb_index_document_find(idx, cid, "again-0", &d) == RB_OK);
    struct rb_index_chunk **chunks;
    size_t nc;
    REQUIRE(rb_index_document_chunks(idx, d->id, &chunks, &nc) == RB_OK && nc == PER_DOC);
    for (size_t i = 0; i < nc; i++)
        row_id[i] = chunks[i]->id; /* rows 0..PER_DOC-1 are back, under new ids */
    rb_index_chunk_list_free(chunks, nc);
    rb_index_document_free(d);
    CHECK_EQ_INT(top1(idx, cid, data + 7 * DIM), row_id[7]);
    r = recall_rows(idx, cid, truth_all, top_a);
    fprintf(stderr, "auto after crash recovery: recall@10 %.4f\n", r);
    CHECK(r >= 0.95);
    CHECK_EQ_INT(problems(idx), 0);
    rb_index_close(idx);

    /* The old key name still works; at a threshold over twice its size the
     * collection goes back to Flat at the next flush. */
    idx = open_cfg(dir, "auto_hnsw_threshold", "50000");
    REQUIRE(idx);
    CHECK_EQ_INT(top1(idx, cid, data + 3000 * DIM), row_id[3000]); /* loads the IVF file */
    expect_index(idx, "ivf", "IVF256 nprobe=16", N_ALL);
    REQUIRE(rb_index_document_find(idx, cid, "row-500", &d) == RB_OK);
    REQUIRE(rb_index_document_delete(idx, d->id) == RB_OK);
    rb_index_document_free(d);
    REQUIRE(rb_index_flush(idx) == RB_OK); /* a change, so the flush re-sizes */
    expect_index(idx, "flat", "Flat", N_ALL - PER_DOC);
    for (int row = 1000; row < N_ALL; row += 997)
        CHECK_EQ_INT(top1(idx, cid, data + (size_t)row * DIM), row_id[row]);
    CHECK_EQ_INT(problems(idx), 0);
    rb_index_close(idx);
    for (int i = 0; i < n_cfgs; i++)
        rb_config_free(cfgs[i]);
}

/* Commits rows 0..PER_DOC-1 as document "again" and dies without writing FAISS. */
static int crash_child(const char *dir, int64_t cid)
{
    make_data();
    struct rb_index *c = open_cfg(dir, "auto_ivf_threshold", "1000");
    if (!c || !put_rows(c, cid, 0, PER_DOC, "again"))
        _exit(2);
    _exit(0); /* no flush, no close */
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
        return crash_child(argv[2], strtoll(argv[3], NULL, 10));
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
    rb_index_close(idx);
    test_auto(dir);
    return check_finish();
}
