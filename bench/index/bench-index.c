/* bench-index: the index module's figures, measured in one run.
 *
 * Vectors: for each size (default 100k and 1M) of clustered synthetic
 * 384-dimensional unit vectors, fills four collections through the public
 * API (SQLite + FTS5 + FAISS, as ingest does) with factory Flat, HNSW32,
 * IVF<~2*sqrt(n)>,Flat and auto (the default: Flat, then IVF past
 * [index] auto_ivf_threshold, built at flush), prints what auto picked, then
 * measures add throughput, single-query latency (p50/p95, vector mode, one
 * thread) and recall@10 against the exact Flat results, and sweeps nprobe on
 * the auto collection (--sweep; reopening the index per value). While the Flat
 * collection fills, Flat latency is sampled at checkpoints: the size at which
 * its p95 passes the latency budget is the measured auto_ivf_threshold.
 *
 * Keyword: FTS5 BM25 query latency at --fts-chunks passages cut from the real
 * Chinese and English documents in ../shared/eval, queried with the datasets'
 * questions.
 *
 * Usage: bench-index [--sizes 100000,1000000] [--dim 384] [--queries 200]
 *                    [--clusters 1000] [--noise 0.6] [--ef 128] [--nprobe 0]
 *                    [--fts-chunks 100000] [--no-fts] [--no-vectors] [--dir DIR]
 *                    [--budget-ms 2] [--skip-hnsw] [--skip-ivf] [--skip-auto]
 *                    [--sweep 8,16,32,64,128] [--faiss-direct N]
 * --faiss-direct N measures only the FAISS layer of the auto IVF at N vectors
 * (no SQLite: for sizes where filling the database takes too long).
 * --nprobe 0 (default) uses the index's own choice (nlist/128 within 16..128).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "ragbox/index.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnext(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}
static float gauss(void)
{
    double u = ((double)(rnext() >> 11) + 1) / (double)(1ull << 53);
    double v = (double)(rnext() >> 11) / (double)(1ull << 53);
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void normalize(float *v, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    float inv = (float)(1 / sqrt(s));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

static double now_s(void)
{
    return (double)rb_time_mono_ns() / 1e9;
}

static struct {
    int dim, queries, clusters, ef, nprobe;
    double noise, budget_ms;
    long fts_chunks;
    int fts, vectors;
    const char *dir;
    long sizes[8];
    int n_sizes;
    int skip_hnsw, skip_ivf, skip_auto;
    int sweep[16];
    int n_sweep;
    long direct;
} opt = {384, 200, 1000, 128, 0, 0.6, 2.0, 100000, 1, 1, "/tmp/ragbox-bench-index",
         {100000, 1000000}, 2, 0, 0, 0, {0}, 0, 0};

static struct rb_index *open_index_np(const char *dir, int nprobe);
static struct rb_index *open_index(const char *dir)
{
    return open_index_np(dir, opt.nprobe);
}

static struct rb_index *open_index_np(const char *dir, int nprobe)
{
    struct rb_config *cfg;
    if (rb_config_create(&cfg) != RB_OK)
        return NULL;
    char ef[32], np[32];
    snprintf(ef, sizeof ef, "%d", opt.ef);
    snprintf(np, sizeof np, "%d", nprobe);
    if (rb_config_set(cfg, "index", "hnsw_ef_search", ef) != RB_OK ||
        rb_config_set(cfg, "index", "ivf_nprobe", np) != RB_OK)
        return NULL;
    struct rb_index_options o = {.data_dir = dir, .config = cfg};
    struct rb_index *idx;
    struct rb_errmsg err;
    if (rb_index_open(&o, &idx, &err) != RB_OK) {
        fprintf(stderr, "open: %s\n", err.text);
        return NULL;
    }
    return idx; /* cfg leaks deliberately: it must outlive the handle, for the whole run */
}

/* Single-thread vector queries: latency (ms) per query and ids of the top 10. */
static void run_queries(struct rb_index *idx, int64_t cid, const float *q, int nq, int64_t *ids,
                        double *lat_ms)
{
    for (int i = 0; i < nq; i++) {
        struct rb_index_query qq = {.vector = q + (size_t)i * opt.dim, .vector_dim = opt.dim,
                                    .mode = RB_INDEX_MODE_VECTOR, .k = 10,
                                    .collection_ids = &cid, .n_collections = 1};
        struct rb_index_results r;
        double t0 = now_s();
        if (rb_index_search(idx, &qq, &r) != RB_OK) {
            fprintf(stderr, "search: %s\n", rb_index_errmsg(idx));
            exit(1);
        }
        lat_ms[i] = (now_s() - t0) * 1e3;
        for (int k = 0; k < 10; k++)
            ids[(size_t)i * 10 + k] = k < (int)r.n ? r.hits[k].chunk_id : -1;
        rb_index_results_free(&r);
    }
}

#define PER_DOC 1000

/* Share of the exact top 10 found (ids mapped to rows by each collection's first id). */
static double recall_of(const int64_t *got, int64_t base, const int64_t *exact, int64_t ebase)
{
    long found = 0;
    for (int i = 0; i < opt.queries; i++)
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                found += got[i * 10 + a] >= 0 && got[i * 10 + a] - base == exact[i * 10 + b] - ebase;
    return (double)found / (opt.queries * 10.0);
}

static void bench_vectors(long n)
{
    int dim = opt.dim;
    printf("\n== vectors: %ld x %d (clustered: %d clusters, noise %.2f), %d queries, "
           "efSearch %d, nprobe %s ==\n",
           n, dim, opt.clusters, opt.noise, opt.queries, opt.ef,
           opt.nprobe ? "as given" : "the index's choice");
    float *centers = malloc(sizeof(float) * (size_t)opt.clusters * dim);
    float *data = malloc(sizeof(float) * (size_t)n * dim);
    float *q = malloc(sizeof(float) * (size_t)opt.queries * dim);
    if (!centers || !data || !q) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)opt.clusters * dim; i++)
        centers[i] = gauss() / sqrtf((float)dim);
    float sigma = (float)opt.noise / sqrtf((float)dim);
    for (long r = 0; r < n; r++) {
        int c = (int)(rnext() % (uint64_t)opt.clusters);
        for (int i = 0; i < dim; i++)
            data[(size_t)r * dim + i] = centers[(size_t)c * dim + i] + sigma * gauss();
        normalize(data + (size_t)r * dim, dim);
    }
    for (int r = 0; r < opt.queries; r++) {
        int c = (int)(rnext() % (uint64_t)opt.clusters);
        for (int i = 0; i < dim; i++)
            q[(size_t)r * dim + i] = centers[(size_t)c * dim + i] + sigma * gauss();
        normalize(q + (size_t)r * dim, dim);
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vectors-%ld", opt.dir, n);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    struct rb_index *idx = open_index(dir);
    if (!idx)
        exit(1);
    int nlist = 1;
    while ((long)nlist * nlist < n * 4) /* ~2*sqrt(n), a power of two */
        nlist *= 2;
    char ivf[64];
    snprintf(ivf, sizeof ivf, "IVF%d,Flat", nlist);
#define NF 4
    const char *names[NF] = {"flat", "hnsw", "ivf", "auto"};
    const char *factories[NF] = {"Flat", "HNSW32,Flat", ivf, "auto"};
    int64_t cids[NF];
    int64_t *ids[NF];
    double *lat[NF];
    double add_rate[NF];
    char *desc[NF] = {0};
    int64_t base[NF];
    struct rb_index_chunk *ch = calloc(PER_DOC, sizeof *ch);
    for (int f = 0; f < NF; f++)
        ids[f] = NULL, lat[f] = NULL, add_rate[f] = 0;
    /* HNSW last: at 1 M its adds take longest; each index is measured right after
     * its fill, so partial runs still report. */
    static const int order[NF] = {0, 2, 3, 1};
    for (int oi = 0; oi < NF; oi++) {
        int f = order[oi];
        if ((f == 1 && opt.skip_hnsw) || (f == 2 && opt.skip_ivf) || (f == 3 && opt.skip_auto)) {
            printf("  %-5s skipped\n", names[f]);
            continue;
        }
        struct rb_index_collection_options o = {.factory = factories[f]};
        if (rb_index_collection_create(idx, names[f], &o, &cids[f]) != RB_OK) {
            fprintf(stderr, "create: %s\n", rb_index_errmsg(idx));
            exit(1);
        }
        ids[f] = malloc(sizeof(int64_t) * (size_t)opt.queries * 10);
        lat[f] = malloc(sizeof(double) * (size_t)opt.queries);
        double t0 = now_s(), tq = 0;
        long next_check = 10000;
        for (long d = 0; d * PER_DOC < n; d++) {
            long rows = n - d * PER_DOC < PER_DOC ? n - d * PER_DOC : PER_DOC;
            for (long i = 0; i < rows; i++) {
                memset(&ch[i], 0, sizeof ch[i]);
                ch[i].text = "synthetic passage";
                ch[i].ordinal = (int32_t)i;
                ch[i].embedding = data + (size_t)(d * PER_DOC + i) * dim;
                ch[i].embedding_dim = dim;
            }
            char src[64];
            snprintf(src, sizeof src, "doc-%ld", d);
            struct rb_index_document doc = {.collection_id = cids[f], .source = src};
            if (rb_index_document_put(idx, &doc, ch, (size_t)rows, NULL, NULL) != RB_OK) {
                fprintf(stderr, "put: %s\n", rb_index_errmsg(idx));
                exit(1);
            }
            long have = d * PER_DOC + rows;
            if (f == 0 && (have >= next_check || have == n)) {
                /* Flat latency as it grows: where does it leave the budget? */
                double tq0 = now_s();
                int nq = opt.queries < 50 ? opt.queries : 50;
                int64_t *tmp = malloc(sizeof(int64_t) * (size_t)nq * 10);
                double *l = malloc(sizeof(double) * (size_t)nq);
                run_queries(idx, cids[0], q, nq, tmp, l);
                printf("  flat at %8ld vectors: p50 %7.2f ms  p95 %7.2f ms%s\n", have,
                       pct(l, (size_t)nq, 0.5), pct(l, (size_t)nq, 0.95),
                       pct(l, (size_t)nq, 0.95) > opt.budget_ms ? "  (over budget)" : "");
                free(tmp);
                free(l);
                next_check = next_check < 50000 ? next_check * 5 / 2 : next_check * 2;
                tq += now_s() - tq0;
            }
        }
        double t_put = now_s() - t0 - tq;
        double t1 = now_s();
        if (rb_index_flush(idx) != RB_OK) {
            fprintf(stderr, "flush: %s\n", rb_index_errmsg(idx));
            exit(1);
        }
        double t_flush = now_s() - t1;
        add_rate[f] = (double)n / (t_put + t_flush);
        struct rb_index_collection *c;
        if (rb_index_collection_get(idx, names[f], &c) != RB_OK)
            exit(1);
        desc[f] = strdup(c->index_desc);
        printf("  %-5s add: %8.0f vectors/s through the API (SQLite+FTS5+FAISS, %.1f s "
               "+ flush %.1f s); factory %s -> %s\n",
               names[f], add_rate[f], t_put, t_flush, factories[f], c->index_desc);
        rb_index_collection_free(c);
        /* Chunk ids differ per collection: ground truth is the flat rows, mapped by offset. */
        struct rb_index_document *d;
        struct rb_index_chunk **cs;
        size_t nc;
        if (rb_index_document_find(idx, cids[f], "doc-0", &d) != RB_OK ||
            rb_index_document_chunks(idx, d->id, &cs, &nc) != RB_OK)
            exit(1);
        base[f] = cs[0]->id;
        rb_index_chunk_list_free(cs, nc);
        rb_index_document_free(d);
        run_queries(idx, cids[f], q, opt.queries, ids[f], lat[f]);
        printf("  %-5s query: p50 %.3f ms  p95 %.3f ms  recall@10 %.4f\n", names[f],
               pct(lat[f], (size_t)opt.queries, 0.5), pct(lat[f], (size_t)opt.queries, 0.95),
               recall_of(ids[f], base[f], ids[0], base[0]));
        fflush(stdout);
    }
    free(ch);
    printf("  %-5s %12s %10s %10s %10s  %s\n", "index", "add/s", "p50 ms", "p95 ms", "recall@10",
           "in use");
    for (int f = 0; f < NF; f++) {
        if (!ids[f])
            continue;
        printf("  %-5s %12.0f %10.3f %10.3f %10.4f  %s\n", names[f], add_rate[f],
               pct(lat[f], (size_t)opt.queries, 0.5), pct(lat[f], (size_t)opt.queries, 0.95),
               recall_of(ids[f], base[f], ids[0], base[0]), desc[f]);
    }
    fflush(stdout);
    if (ids[3] && opt.n_sweep) {
        /* nprobe sweep on the auto collection: reopen with each value (loads the file). */
        int64_t *sid = malloc(sizeof(int64_t) * (size_t)opt.queries * 10);
        double *sl = malloc(sizeof(double) * (size_t)opt.queries);
        for (int v = 0; v < opt.n_sweep; v++) {
            rb_index_close(idx);
            idx = open_index_np(dir, opt.sweep[v]);
            if (!idx)
                exit(1);
            run_queries(idx, cids[3], q, 1, sid, sl); /* loads the index */
            run_queries(idx, cids[3], q, opt.queries, sid, sl);
            struct rb_index_collection *c;
            if (rb_index_collection_get(idx, "auto", &c) != RB_OK)
                exit(1);
            printf("  auto  nprobe %4d: p50 %7.3f ms  p95 %7.3f ms  recall@10 %.4f  (%s)\n",
                   opt.sweep[v], pct(sl, (size_t)opt.queries, 0.5),
                   pct(sl, (size_t)opt.queries, 0.95), recall_of(sid, base[3], ids[0], base[0]),
                   c->index_desc);
            rb_index_collection_free(c);
            fflush(stdout);
        }
        free(sid);
        free(sl);
    }
    for (int f = 0; f < NF; f++) {
        free(desc[f]);
        free(ids[f]);
        free(lat[f]);
    }
    rb_index_close(idx);
    free(centers);
    free(data);
    free(q);
}

/* ------------------------------------------------------- FAISS layer only */

/* The auto IVF of the index module built directly through the FAISS C API
 * (same nlist rule, sample, spherical k-means, nprobe values), on the same
 * synthetic data, without SQLite: what the vector leg costs at sizes where
 * filling the database would take too long. Latency is one query on one thread. */
static void bench_faiss_direct(long n)
{
    int dim = opt.dim;
    float *centers = malloc(sizeof(float) * (size_t)opt.clusters * dim);
    float *data = malloc(sizeof(float) * (size_t)n * dim);
    float *q = malloc(sizeof(float) * (size_t)opt.queries * dim);
    if (!centers || !data || !q)
        exit(1);
    for (size_t i = 0; i < (size_t)opt.clusters * dim; i++)
        centers[i] = gauss() / sqrtf((float)dim);
    float sigma = (float)opt.noise / sqrtf((float)dim);
    for (long r = 0; r < n; r++) {
        int c = (int)(rnext() % (uint64_t)opt.clusters);
        for (int i = 0; i < dim; i++)
            data[(size_t)r * dim + i] = centers[(size_t)c * dim + i] + sigma * gauss();
        normalize(data + (size_t)r * dim, dim);
    }
    for (int r = 0; r < opt.queries; r++) {
        int c = (int)(rnext() % (uint64_t)opt.clusters);
        for (int i = 0; i < dim; i++)
            q[(size_t)r * dim + i] = centers[(size_t)c * dim + i] + sigma * gauss();
        normalize(q + (size_t)r * dim, dim);
    }
    /* nlist as the index module picks it (vectors.c rb__auto_nlist). */
    double target = 4.0 * sqrt((double)n);
    long nlist = 1;
    while ((double)(nlist * 2) <= target)
        nlist *= 2;
    if (target > (double)nlist * M_SQRT2)
        nlist *= 2;
    while (nlist > 1 && nlist * 39 > n)
        nlist /= 2;
    if (nlist > 2048)
        nlist = 2048;
    long n_train = n < 100000 ? n : 100000;
    if (n_train > 256 * nlist)
        n_train = 256 * nlist;
    printf("\n== FAISS layer only (no SQLite): %ld x %d, IVF%ld,Flat trained on %ld, "
           "%d queries ==\n",
           n, dim, nlist, n_train, opt.queries);
    omp_set_num_threads(omp_get_num_procs());
    /* Exact top 10 (batched, all cores). */
    FaissIndex *flat = NULL;
    int64_t *exact = malloc(sizeof(int64_t) * (size_t)opt.queries * 10);
    float *dist = malloc(sizeof(float) * (size_t)opt.queries * 10);
    double t0 = now_s();
    if (faiss_index_factory(&flat, dim, "Flat", METRIC_INNER_PRODUCT) != 0 ||
        faiss_Index_add(flat, n, data) != 0 ||
        faiss_Index_search(flat, opt.queries, q, 10, dist, exact) != 0)
        exit(1);
    faiss_Index_free(flat);
    printf("  exact top 10 by brute force: %.1f s\n", now_s() - t0);
    char desc[64];
    snprintf(desc, sizeof desc, "IVF%ld,Flat", nlist);
    FaissIndex *ix = NULL;
    if (faiss_index_factory(&ix, dim, desc, METRIC_INNER_PRODUCT) != 0)
        exit(1);
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix);
    /* Sample: every (n / n_train)-th row is as random as the generator. */
    float *tx = malloc(sizeof(float) * (size_t)n_train * dim);
    for (long i = 0; i < n_train; i++)
        memcpy(tx + (size_t)i * dim, data + (size_t)(i * (n / n_train)) * dim,
               sizeof(float) * dim);
    t0 = now_s();
    FaissClusteringParameters cp;
    faiss_ClusteringParameters_init(&cp);
    cp.niter = 10;
    cp.spherical = 1;
    cp.seed = 1234;
    cp.max_points_per_centroid = 256;
    FaissClustering *cl = NULL;
    if (faiss_Clustering_new_with_params(&cl, dim, (int)nlist, &cp) != 0 ||
        faiss_Clustering_train(cl, n_train, tx, faiss_IndexIVF_quantizer(ivf)) != 0 ||
        faiss_Index_train(ix, n_train, tx) != 0)
        exit(1);
    faiss_Clustering_free(cl);
    double t_train = now_s() - t0;
    t0 = now_s();
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
    for (long i = 0; i < n; i++)
        ids[i] = i;
    for (long i = 0; i < n; i += 4096) {
        long m = n - i < 4096 ? n - i : 4096;
        if (faiss_Index_add_with_ids(ix, m, data + (size_t)i * dim, ids + i) != 0)
            exit(1);
    }
    double t_add = now_s() - t0;
    printf("  train %.1f s, add %.1f s (%.0f vectors/s), 2 threads\n", t_train, t_add,
           (double)n / t_add);
    omp_set_num_threads(1);
    int probes[] = {16, 32, 64, 128};
    double *lat = malloc(sizeof(double) * (size_t)opt.queries);
    int64_t got[10];
    float gd[10];
    for (size_t p = 0; p < sizeof probes / sizeof *probes; p++) {
        if (probes[p] > nlist)
            break;
        faiss_IndexIVF_set_nprobe(ivf, (size_t)probes[p]);
        long found = 0;
        for (int i = 0; i < opt.queries; i++) {
            double t1 = now_s();
            /* k = 40: the vector leg asks for k * overfetch candidates. */
            float d40[40];
            int64_t l40[40];
            if (faiss_Index_search(ix, 1, q + (size_t)i * dim, 40, d40, l40) != 0)
                exit(1);
            lat[i] = (now_s() - t1) * 1e3;
            memcpy(got, l40, sizeof got);
            memcpy(gd, d40, sizeof gd);
            for (int a = 0; a < 10; a++)
                for (int b = 0; b < 10; b++)
                    found += got[a] >= 0 && got[a] == exact[(size_t)i * 10 + b];
        }
        printf("  IVF%ld nprobe %3d%s: p50 %.3f ms  p95 %.3f ms  recall@10 %.4f\n", nlist,
               probes[p], probes[p] == (nlist / 128 < 16 ? 16 : nlist / 128) ? " (auto)" : "",
               pct(lat, (size_t)opt.queries, 0.5), pct(lat, (size_t)opt.queries, 0.95),
               (double)found / (opt.queries * 10.0));
        fflush(stdout);
    }
    faiss_Index_free(ix);
    free(lat);
    free(ids);
    free(tx);
    free(exact);
    free(dist);
    free(centers);
    free(data);
    free(q);
}

/* ------------------------------------------------------------------ FTS */

static char **passages;
static size_t n_passages, cap_passages;

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *data;
        size_t len;
        if (rb_fs_read_file(path, 4 << 20, &data, &len) != RB_OK)
            continue;
        size_t pos = 0;
        while (pos < len) {
            size_t end = pos, chars = 0;
            while (end < len && chars < 300) {
                uint32_t cp;
                end += (size_t)rb_utf8_decode(data + end, len - end, &cp);
                chars++;
            }
            if (n_passages == cap_passages) {
                cap_passages = cap_passages ? cap_passages * 2 : 4096;
                passages = realloc(passages, cap_passages * sizeof *passages);
            }
            passages[n_passages++] = rb_strndup(data + pos, end - pos);
            pos = end;
        }
        free(data);
    }
    if (d)
        closedir(d);
}

static char **questions;
static size_t n_questions;

static void load_questions(const char *path, size_t max)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (f && n < max && getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const char *q = rb_json_str(j, "question");
        if (q) {
            questions = realloc(questions, (n_questions + 1) * sizeof *questions);
            questions[n_questions++] = rb_strdup(q);
            n++;
        }
        cJSON_Delete(j);
    }
    free(line);
    if (f)
        fclose(f);
}

static void bench_fts(void)
{
    const char *shared = getenv("RAGBOX_SHARED") ? getenv("RAGBOX_SHARED") : "../shared";
    const char *sets[] = {"eval/crud-zh", "eval/pubmedqa", "eval/cail2019-zh"};
    for (size_t i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s/docs", shared, sets[i]);
        load_dir(p);
        snprintf(p, sizeof p, "%s/%s/questions.jsonl", shared, sets[i]);
        load_questions(p, 150);
    }
    if (!n_passages || !n_questions) {
        printf("\n== keyword: no shared eval documents under %s: skipped ==\n", shared);
        return;
    }
    printf("\n== keyword (FTS5 BM25, CJK bigram tokenizer): %ld chunks from %zu real passages, "
           "%zu real questions (zh+en) ==\n",
           opt.fts_chunks, n_passages, n_questions);
    char dir[512], cmd[600];
    snprintf(dir, sizeof dir, "%s/fts", opt.dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        exit(1);
    struct rb_index *idx = open_index(dir);
    int64_t cid;
    if (!idx || rb_index_collection_create(idx, "fts", NULL, &cid) != RB_OK)
        exit(1);
    struct rb_index_chunk ch[100];
    double t0 = now_s();
    for (long d = 0; d * 100 < opt.fts_chunks; d++) {
        for (int i = 0; i < 100; i++) {
            memset(&ch[i], 0, sizeof ch[i]);
            ch[i].text = passages[(size_t)(d * 100 + i) % n_passages];
            ch[i].ordinal = i;
        }
        char src[64];
        snprintf(src, sizeof src, "fts-%ld", d);
        struct rb_index_document doc = {.collection_id = cid, .source = src};
        if (rb_index_document_put(idx, &doc, ch, 100, NULL, NULL) != RB_OK) {
            fprintf(stderr, "put: %s\n", rb_index_errmsg(idx));
            exit(1);
        }
    }
    double t_add = now_s() - t0;
    size_t nq = n_questions;
    double *lat = malloc(sizeof(double) * nq);
    double total_hits = 0;
    for (size_t i = 0; i < nq; i++) {
        struct rb_index_query q = {.text = questions[i], .mode = RB_INDEX_MODE_KEYWORD, .k = 10,
                                   .collection_ids = &cid, .n_collections = 1};
        struct rb_index_results r;
        double t1 = now_s();
        if (rb_index_search(idx, &q, &r) != RB_OK) {
            fprintf(stderr, "search: %s\n", rb_index_errmsg(idx));
            exit(1);
        }
        lat[i] = (now_s() - t1) * 1e3;
        total_hits += (double)r.n;
        rb_index_results_free(&r);
    }
    printf("  add: %.0f chunks/s (%.1f s)\n", (double)opt.fts_chunks / t_add, t_add);
    printf("  query: p50 %.2f ms  p95 %.2f ms  (mean %.1f hits, k=10)\n", pct(lat, nq, 0.5),
           pct(lat, nq, 0.95), total_hits / (double)nq);
    free(lat);
    rb_index_close(idx);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--sizes") == 0 && v) {
            opt.n_sizes = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && opt.n_sizes < 8;
                 t = strtok_r(NULL, ",", &save))
                opt.sizes[opt.n_sizes++] = strtol(t, NULL, 10);
            free(copy);
            i++;
        } else if (strcmp(a, "--dim") == 0 && v) {
            opt.dim = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--queries") == 0 && v) {
            opt.queries = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--clusters") == 0 && v) {
            opt.clusters = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--noise") == 0 && v) {
            opt.noise = strtod(v, NULL);
            i++;
        } else if (strcmp(a, "--ef") == 0 && v) {
            opt.ef = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--nprobe") == 0 && v) {
            opt.nprobe = (int)strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--budget-ms") == 0 && v) {
            opt.budget_ms = strtod(v, NULL);
            i++;
        } else if (strcmp(a, "--fts-chunks") == 0 && v) {
            opt.fts_chunks = strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--dir") == 0 && v) {
            opt.dir = v;
            i++;
        } else if (strcmp(a, "--no-fts") == 0) {
            opt.fts = 0;
        } else if (strcmp(a, "--no-vectors") == 0) {
            opt.vectors = 0;
        } else if (strcmp(a, "--skip-hnsw") == 0) {
            opt.skip_hnsw = 1; /* HNSW adds ~500 vectors/s here: 1 M takes over half an hour */
        } else if (strcmp(a, "--skip-ivf") == 0) {
            opt.skip_ivf = 1;
        } else if (strcmp(a, "--faiss-direct") == 0 && v) {
            opt.direct = strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--skip-auto") == 0) {
            opt.skip_auto = 1;
        } else if (strcmp(a, "--sweep") == 0 && v) {
            opt.n_sweep = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && opt.n_sweep < 16;
                 t = strtok_r(NULL, ",", &save))
                opt.sweep[opt.n_sweep++] = (int)strtol(t, NULL, 10);
            free(copy);
            i++;
        } else {
            fprintf(stderr,
                    "usage: bench-index [--sizes 100000,1000000] [--dim 384] [--queries 200]\n"
                    "       [--clusters 1000] [--noise 0.6] [--ef 128] [--nprobe 0]\n"
                    "       [--budget-ms 2] [--fts-chunks 100000] [--no-fts] [--no-vectors]\n"
                    "       [--dir DIR] [--skip-hnsw] [--skip-ivf] [--skip-auto]\n"
                    "       [--sweep 8,16,32,64,128] [--faiss-direct N]\n"
                    "  --nprobe 0 = the index's choice; --sweep reopens the auto collection\n"
                    "  with each nprobe and measures it\n");
            return 2;
        }
    }
    if (opt.dim < 1 || opt.queries < 1 || opt.clusters < 1)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures appear as they come, also in a file */
    rb_log_init("bench-index", RB_LOG_WARN, false);
    printf("bench-index: data in %s\n", opt.dir);
    if (opt.direct > 0) {
        bench_faiss_direct(opt.direct);
        return 0;
    }
    if (opt.fts)
        bench_fts();
    if (opt.vectors)
        for (int s = 0; s < opt.n_sizes; s++)
            bench_vectors(opt.sizes[s]);
    return 0;
}
