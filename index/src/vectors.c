/* FAISS vector indexes: one per collection, a cache of the SQLite embeddings.
 *
 * Inner product on L2-normalised vectors (cosine); ids are chunk ids. Flat and
 * HNSW indexes are IndexIDMap2 over the factory's index. IVF indexes
 * ("IVF<nlist>,...") are a bare IndexIVF: IVF stores the ids in its lists
 * itself and removes them in place (IDMap2 over IVF would renumber its id map
 * on removal while the lists keep the old internal ids). FAISS 1.7.3 HNSW
 * cannot remove ids, so deletes from HNSW (and from IDMap2-over-IVF files
 * written by older versions) are tombstoned in memory and filtered from
 * results; the next flush rebuilds the index from SQLite before writing it, so
 * a file on disk never holds deleted vectors. Flat and IVF remove directly.
 *
 * "auto" collections are Flat below [index] auto_ivf_threshold vectors and
 * IVF-Flat from there, with nlist = the power of two nearest 4*sqrt(n) (at most
 * RB__NLIST_MAX = 2048, at least 39 training points per list), trained by spherical
 * k-means on a random sample of at most max(ivf_train_max, 39*nlist) vectors.
 * When a collection has grown (or shrunk) so that its nlist should at least
 * double (halve twice), the next flush retrains and rebuilds it from SQLite;
 * below half the threshold it goes back to Flat. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index-impl.h"

/* FAISS's last error is only valid until the next FAISS call: copy it at once. */
static enum rb_status faiss_fail(struct rb_index *idx, const char *what)
{
    const char *e = faiss_get_last_error();
    char copy[400];
    rb_strlcpy(copy, e ? e : "unknown FAISS error", sizeof copy);
    return rb__err(idx, RB_ERR_VECTOR, "%s: %s", what, copy);
}

char *rb__faiss_path(struct rb_index *idx, int64_t id)
{
    return rb_asprintf("%s/%lld.faiss", idx->faiss_dir, (long long)id);
}

const char *rb__vkind_name(enum rb__vkind k)
{
    switch (k) {
    case RB__VKIND_FLAT: return "flat";
    case RB__VKIND_HNSW: return "hnsw";
    case RB__VKIND_IVF: return "ivf";
    default: return "none";
    }
}

int64_t rb__vcoll_ntotal(const struct rb__vcoll *vc)
{
    return vc && vc->faiss ? (int64_t)faiss_Index_ntotal((FaissIndex *)vc->faiss) : 0;
}

/* ============================================================ tombstones */

static size_t tomb_slot(int64_t id, size_t cap)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

bool rb__vcoll_tombstoned(const struct rb__vcoll *vc, int64_t id)
{
    if (!vc->tomb_n)
        return false;
    for (size_t i = tomb_slot(id, vc->tomb_cap);; i = (i + 1) & (vc->tomb_cap - 1)) {
        if (vc->tomb[i] == 0)
            return false;
        if (vc->tomb[i] == id)
            return true;
    }
}

static bool tomb_add(struct rb__vcoll *vc, int64_t id)
{
    if ((vc->tomb_n + 1) * 2 > vc->tomb_cap) {
        size_t cap = vc->tomb_cap ? vc->tomb_cap * 2 : 64;
        int64_t *t = calloc(cap, sizeof *t);
        if (!t)
            return false;
        for (size_t i = 0; i < vc->tomb_cap; i++) {
            if (!vc->tomb[i])
                continue;
            size_t j = tomb_slot(vc->tomb[i], cap);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = vc->tomb[i];
        }
        free(vc->tomb);
        vc->tomb = t;
        vc->tomb_cap = cap;
    }
    size_t i = tomb_slot(id, vc->tomb_cap);
    while (vc->tomb[i] && vc->tomb[i] != id)
        i = (i + 1) & (vc->tomb_cap - 1);
    if (!vc->tomb[i]) {
        vc->tomb[i] = id;
        vc->tomb_n++;
    }
    return true;
}

static void tomb_clear(struct rb__vcoll *vc)
{
    free(vc->tomb);
    vc->tomb = NULL;
    vc->tomb_cap = vc->tomb_n = 0;
}

/* ============================================================ collections */

struct rb__vcoll *rb__vcoll_find(struct rb_index *idx, int64_t id)
{
    for (size_t i = 0; i < idx->n_vcolls; i++)
        if (idx->vcolls[i]->id == id)
            return idx->vcolls[i];
    return NULL;
}

enum rb_status rb__vcoll_add(struct rb_index *idx, int64_t id, int dim, struct rb__vcoll **out)
{
    if (idx->n_vcolls == idx->cap_vcolls) {
        size_t cap = idx->cap_vcolls ? idx->cap_vcolls * 2 : 8;
        struct rb__vcoll **p = realloc(idx->vcolls, cap * sizeof *p);
        if (!p)
            return rb__err(idx, RB_ERR_NOMEM, "out of memory");
        idx->vcolls = p;
        idx->cap_vcolls = cap;
    }
    struct rb__vcoll *vc = calloc(1, sizeof *vc);
    if (!vc)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    vc->id = id;
    vc->dim = dim;
    idx->vcolls[idx->n_vcolls++] = vc;
    *out = vc;
    return RB_OK;
}

void rb__vcoll_free(struct rb__vcoll *vc)
{
    if (!vc)
        return;
    if (vc->faiss)
        faiss_Index_free((FaissIndex *)vc->faiss);
    free(vc->tomb);
    free(vc);
}

void rb__vcoll_forget(struct rb_index *idx, int64_t id)
{
    for (size_t i = 0; i < idx->n_vcolls; i++) {
        if (idx->vcolls[i]->id == id) {
            rb__vcoll_free(idx->vcolls[i]);
            idx->vcolls[i] = idx->vcolls[--idx->n_vcolls];
            return;
        }
    }
}

/* ============================================================== factory */

static enum rb__vkind kind_of(const char *inner)
{
    if (strncmp(inner, "IVF", 3) == 0 || strstr(inner, ",IVF")) /* also IVF<n>_HNSW32,... */
        return RB__VKIND_IVF;
    if (strstr(inner, "HNSW"))
        return RB__VKIND_HNSW;
    return RB__VKIND_FLAT;
}

/* Largest nlist "auto" picks: 4*sqrt(n) reaches it at ~260 k vectors. Beyond,
 * lists get longer: at 1 M, 2048 lists probed 32 at a time scan as many
 * vectors as 4096 probed 64 at a time, with half the k-means and assignment
 * work at (re)build (bench/index). */
#define RB__NLIST_MAX 2048
/* FAISS's own minimum of training points per centroid. */
#define RB__MIN_PER_LIST 39

int64_t rb__auto_nlist(int64_t n)
{
    double target = 4.0 * sqrt((double)(n > 0 ? n : 1));
    int64_t p = 1;
    while ((double)(p * 2) <= target)
        p *= 2;
    if (target > (double)p * M_SQRT2) /* nearest power of two on a log scale */
        p *= 2;
    while (p > 1 && p * RB__MIN_PER_LIST > n)
        p /= 2;
    return RB_MIN(p, RB__NLIST_MAX);
}

/* nprobe: [index] ivf_nprobe when set, else nlist/128 within [16, 128], i.e. 16
 * for every nlist auto picks (bench/index at 1 M x 384, IVF2048: nprobe 16 gave
 * recall@10 0.998-1.0 with p95 8.6 ms through the API on 2 cores; the scan cost
 * grows linearly with nprobe, so 32 would leave the 10 ms budget). Explicit
 * IVF factories with more lists get proportionally more probes. */
int rb__ivf_nprobe(const struct rb_index *idx, int64_t nlist)
{
    int64_t p = idx->ivf_nprobe > 0 ? idx->ivf_nprobe : RB_MAX(16, RB_MIN(128, nlist / 128));
    return (int)RB_MAX(1, RB_MIN(p, nlist > 0 ? nlist : p));
}

static bool is_auto(const char *factory)
{
    return !factory || strcmp(factory, "auto") == 0;
}

/* The inner factory string for a collection of n vectors. Caller frees. */
static char *inner_factory(struct rb_index *idx, const char *factory, int64_t n)
{
    if (is_auto(factory)) {
        if (n >= idx->auto_ivf_threshold)
            return rb_asprintf("IVF%lld,Flat", (long long)rb__auto_nlist(n));
        return rb_strdup("Flat");
    }
    if (strncmp(factory, "IDMap2,", 7) == 0)
        factory += 7;
    return rb_strdup(factory);
}

/* IVF indexes hold the ids themselves; everything else is wrapped in IDMap2. */
static enum rb_status make_index(struct rb_index *idx, int dim, const char *inner, FaissIndex **out,
                                 bool *native)
{
    *out = NULL;
    *native = strncmp(inner, "IVF", 3) == 0;
    char *desc = *native ? rb_strdup(inner) : rb_asprintf("IDMap2,%s", inner);
    if (!desc)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    FaissIndex *ix = NULL;
    int rc = faiss_index_factory(&ix, dim, desc, METRIC_INNER_PRODUCT);
    free(desc);
    if (rc != 0)
        return faiss_fail(idx, "FAISS index factory");
    if (*native && !faiss_IndexIVF_cast(ix)) {
        faiss_Index_free(ix);
        return rb__err(idx, RB_ERR_INVALID, "'%s' is not an IVF index", inner);
    }
    *out = ix;
    return RB_OK;
}

enum rb_status rb__factory_check(struct rb_index *idx, const char *factory);
enum rb_status rb__factory_check(struct rb_index *idx, const char *factory)
{
    if (strcmp(factory, "auto") == 0)
        return RB_OK;
    if (strlen(factory) > 200 || strstr(factory, "IDMap") != NULL) {
        if (strncmp(factory, "IDMap2,", 7) != 0 || strstr(factory + 7, "IDMap"))
            return rb__err(idx, RB_ERR_INVALID, "bad FAISS factory string '%s'", factory);
    }
    FaissIndex *ix = NULL;
    char *inner = inner_factory(idx, factory, 0);
    if (!inner)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    bool native;
    enum rb_status st = make_index(idx, 64, inner, &ix, &native);
    free(inner);
    if (st != RB_OK)
        return rb__err(idx, RB_ERR_INVALID, "bad FAISS factory string '%s': %s", factory,
                       rb_index_errmsg(idx));
    faiss_Index_free(ix);
    return RB_OK;
}

/* The IndexIVF inside ix (bare, or under IDMap2), NULL when there is none. */
static FaissIndexIVF *ivf_of(FaissIndex *ix)
{
    FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix);
    if (!ivf) {
        FaissIndexIDMap2 *map = faiss_IndexIDMap2_cast(ix);
        if (map)
            ivf = faiss_IndexIVF_cast(faiss_IndexIDMap2_sub_index(map));
    }
    return ivf;
}

/* Search-time parameters (efSearch, nprobe); ParameterSpace looks through IDMap2.
 * Also records nlist/nprobe in vc. */
static void set_params(struct rb_index *idx, struct rb__vcoll *vc, FaissIndex *ix,
                       enum rb__vkind kind)
{
    FaissIndexIVF *ivf = ivf_of(ix);
    vc->nlist = ivf ? (int64_t)faiss_IndexIVF_nlist(ivf) : 0;
    vc->nprobe = ivf ? rb__ivf_nprobe(idx, vc->nlist) : 0;
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) != 0)
        return;
    int rc = 0;
    if (kind == RB__VKIND_HNSW)
        rc = faiss_ParameterSpace_set_index_parameter(ps, ix, "efSearch", idx->hnsw_ef_search);
    else if (ivf)
        rc = faiss_ParameterSpace_set_index_parameter(ps, ix, "nprobe", vc->nprobe);
    if (rc != 0) {
        char copy[300];
        rb_strlcpy(copy, faiss_get_last_error() ? faiss_get_last_error() : "?", sizeof copy);
        RB_WARN(RB_INDEX_LOG, "cannot set search parameters: %s", copy);
    }
    faiss_ParameterSpace_free(ps);
}

/* =========================================================== SQLite side */

static enum rb_status coll_row(struct rb_index *idx, sqlite3 *db, int64_t cid, char **factory,
                               int *dim, int64_t *count)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT factory, dim, (SELECT count(*) FROM chunks WHERE "
                           "collection_id=?1 AND embedding IS NOT NULL) FROM collections WHERE id=?1",
                           -1, &s, NULL) != SQLITE_OK)
        return rb__dberr(idx, db, "read collection");
    sqlite3_bind_int64(s, 1, cid);
    enum rb_status st = RB_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (factory) {
            *factory = rb_strdup((const char *)sqlite3_column_text(s, 0));
            if (!*factory)
                st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        }
        *dim = sqlite3_column_int(s, 1);
        *count = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_DONE) {
        st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld", (long long)cid);
    } else {
        st = rb__dberr(idx, db, "read collection");
    }
    sqlite3_finalize(s);
    return st;
}

/* ============================================================== rebuild */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

#define ADD_BATCH 4096

static enum rb_status load_rows(struct rb_index *idx, sqlite3_stmt *s, int dim, float *x,
                                int64_t *ids, size_t max, size_t *n, bool *done)
{
    *n = 0;
    *done = false;
    while (*n < max) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            *done = true;
            break;
        }
        if (rc != SQLITE_ROW)
            return rb__dberr(idx, sqlite3_db_handle(s), "read embeddings");
        int bytes = sqlite3_column_bytes(s, 1);
        const void *blob = sqlite3_column_blob(s, 1);
        if (bytes != dim * (int)sizeof(float) || !blob) {
            RB_WARN(RB_INDEX_LOG, "chunk %lld: embedding of %d bytes, expected %d: skipped",
                    (long long)sqlite3_column_int64(s, 0), bytes, dim * (int)sizeof(float));
            continue;
        }
        ids[*n] = sqlite3_column_int64(s, 0);
        memcpy(x + *n * (size_t)dim, blob, (size_t)bytes);
        (*n)++;
    }
    return RB_OK;
}

/* k-means iterations for an IVF quantizer (FAISS's default is 25; 10 is
 * 2.5x cheaper, and the centroids only route queries: nprobe covers the rest). */
#define RB__KMEANS_NITER 10

/* The ids of collection cid's chunks that carry an embedding, ascending
 * (*out malloc'd, NULL when none). what names the caller in errors. */
static enum rb_status embedded_ids(struct rb_index *idx, sqlite3 *db, int64_t cid,
                                   const char *what, int64_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id FROM chunks WHERE collection_id=? AND embedding IS NOT NULL "
                           "ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        return rb__dberr(idx, db, what);
    sqlite3_bind_int64(s, 1, cid);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            int64_t *p = realloc(ids, cap * sizeof *p);
            if (!p) {
                sqlite3_finalize(s);
                free(ids);
                return rb__err(idx, RB_ERR_NOMEM, "out of memory");
            }
            ids = p;
        }
        ids[n++] = sqlite3_column_int64(s, 0);
    }
    enum rb_status st = rc == SQLITE_DONE ? RB_OK : rb__dberr(idx, db, what);
    sqlite3_finalize(s);
    if (st != RB_OK) {
        free(ids);
        return st;
    }
    *out = ids;
    *n_out = n;
    return RB_OK;
}

/* A uniform random sample of up to max embeddings of collection cid, without
 * replacement: the ids are read first (no blobs), n of them picked
 * (deterministically per collection and size), then fetched in id order.
 * *got may be below n when rows have bad sizes. */
static enum rb_status sample_rows(struct rb_index *idx, sqlite3 *db, int64_t cid, int dim,
                                  int64_t n, float *x, int64_t *got)
{
    *got = 0;
    int64_t *all = NULL;
    size_t n_all = 0;
    sqlite3_stmt *s = NULL;
    int rc;
    enum rb_status st = embedded_ids(idx, db, cid, "sample embeddings", &all, &n_all);
    if (st != RB_OK)
        return st;
    size_t want = (size_t)RB_MIN(n, (int64_t)n_all);
    uint64_t r = 0x9E3779B97F4A7C15ull ^ ((uint64_t)cid * 0xBF58476D1CE4E5B9ull) ^ n_all;
    for (size_t i = 0; i < want; i++) { /* partial Fisher-Yates */
        r ^= r >> 12;
        r ^= r << 25;
        r ^= r >> 27;
        size_t j = i + (size_t)((r * 2685821657736338717ull) % (uint64_t)(n_all - i));
        int64_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    qsort(all, want, sizeof *all, cmp_i64);
    if (sqlite3_prepare_v2(db, "SELECT embedding FROM chunks WHERE id=?", -1, &s, NULL) !=
        SQLITE_OK) {
        st = rb__dberr(idx, db, "sample embeddings");
        goto out;
    }
    for (size_t i = 0; i < want; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, all[i]);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            continue;
        if (rc != SQLITE_ROW) {
            st = rb__dberr(idx, db, "sample embeddings");
            goto out;
        }
        const void *blob = sqlite3_column_blob(s, 0);
        if (!blob || sqlite3_column_bytes(s, 0) != dim * (int)sizeof(float))
            continue; /* logged when the rows are added */
        memcpy(x + (size_t)*got * (size_t)dim, blob, (size_t)dim * sizeof(float));
        (*got)++;
    }
out:
    sqlite3_finalize(s);
    free(all);
    return st;
}

/* Trains ix (an IVF index, possibly wrapped) on a random sample of the
 * collection: at most min(256*nlist, max(ivf_train_max, 39*nlist)) vectors.
 * A flat quantizer is trained here by spherical k-means (cosine centroids);
 * anything else the index needs (e.g. PQ codebooks) by FAISS on the same sample. */
static enum rb_status train_ivf(struct rb_index *idx, sqlite3 *db, int64_t cid, FaissIndex *ix,
                                int dim, int64_t count, int64_t nlist)
{
    int64_t n_train = RB_MIN(count, RB_MIN(256 * nlist,
                                           RB_MAX(idx->ivf_train_max, RB__MIN_PER_LIST * nlist)));
    float *tx = rb_malloc_array((size_t)n_train * (size_t)dim, sizeof(float));
    if (!tx)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    int64_t t0 = rb_time_mono_ns(), got = 0;
    enum rb_status st = sample_rows(idx, db, cid, dim, n_train, tx, &got);
    if (st == RB_OK && got < nlist)
        st = rb__err(idx, RB_ERR_VECTOR, "%lld usable vectors are too few to train %lld lists",
                     (long long)got, (long long)nlist);
    FaissIndexIVF *ivf = st == RB_OK ? ivf_of(ix) : NULL;
    FaissIndex *q = ivf ? faiss_IndexIVF_quantizer(ivf) : NULL;
    if (q && faiss_IndexFlat_cast(q) && faiss_Index_ntotal(q) == 0 &&
        (int64_t)faiss_IndexIVF_nlist(ivf) == nlist) {
        FaissClusteringParameters cp;
        faiss_ClusteringParameters_init(&cp);
        cp.niter = RB__KMEANS_NITER;
        cp.spherical = 1;
        cp.seed = 1234;
        cp.min_points_per_centroid = (int)RB_MIN(RB__MIN_PER_LIST, got / nlist);
        cp.max_points_per_centroid = 256;
        FaissClustering *cl = NULL;
        if (faiss_Clustering_new_with_params(&cl, dim, (int)nlist, &cp) != 0 ||
            faiss_Clustering_train(cl, (idx_t)got, tx, q) != 0)
            st = faiss_fail(idx, "FAISS k-means");
        faiss_Clustering_free(cl);
    }
    /* With the quantizer holding nlist centroids this only marks the IVF trained. */
    if (st == RB_OK && faiss_Index_train(ix, (idx_t)got, tx) != 0)
        st = faiss_fail(idx, "FAISS train");
    if (st == RB_OK)
        RB_INFO(RB_INDEX_LOG, "collection %lld: IVF of %lld lists trained on %lld of %lld vectors "
                              "in %.1f s",
                (long long)cid, (long long)nlist, (long long)got, (long long)count,
                (double)(rb_time_mono_ns() - t0) / 1e9);
    free(tx);
    return st;
}

enum rb_status rb__vcoll_rebuild(struct rb_index *idx, sqlite3 *db, struct rb__vcoll *vc,
                                 int64_t gen)
{
    char *factory = NULL;
    int dim = 0;
    int64_t count = 0;
    enum rb_status st = coll_row(idx, db, vc->id, &factory, &dim, &count);
    if (st != RB_OK)
        return st;
    if (vc->faiss)
        faiss_Index_free((FaissIndex *)vc->faiss);
    vc->faiss = NULL;
    vc->kind = RB__VKIND_NONE;
    vc->native_ids = false;
    vc->nlist = 0;
    vc->nprobe = 0;
    vc->dim = dim;
    tomb_clear(vc);
    if (count == 0 || dim <= 0) {
        free(factory);
        vc->loaded = true;
        vc->generation = gen;
        vc->dirty = true;
        return RB_OK;
    }
    int64_t t0 = rb_time_mono_ns();
    omp_set_num_threads(omp_get_num_procs()); /* bulk add/train: use the cores (see search) */
    char *inner = inner_factory(idx, factory, count);
    free(factory);
    if (!inner)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    enum rb__vkind kind = kind_of(inner);
    if (kind == RB__VKIND_IVF) {
        long nlist = 0;
        const char *p = strstr(inner, "IVF");
        nlist = strtol(p + 3, NULL, 10);
        vc->train_at = 0;
        if (nlist <= 0 || count < (int64_t)nlist * 39) {
            vc->train_at = nlist > 0 ? (int64_t)nlist * 39 : 0;
            RB_WARN(RB_INDEX_LOG,
                    "collection %lld: %lld vectors are too few to train '%s': using Flat",
                    (long long)vc->id, (long long)count, inner);
            free(inner);
            inner = rb_strdup("Flat");
            kind = RB__VKIND_FLAT;
            if (!inner)
                return rb__err(idx, RB_ERR_NOMEM, "out of memory");
        }
    }
    FaissIndex *ix = NULL;
    bool native = false;
    st = make_index(idx, dim, inner, &ix, &native);
    if (st != RB_OK) {
        free(inner);
        return st;
    }
    float *x = rb_malloc_array((size_t)ADD_BATCH * (size_t)dim, sizeof(float));
    int64_t *ids = rb_malloc_array(ADD_BATCH, sizeof(int64_t));
    sqlite3_stmt *s = NULL;
    if (!x || !ids) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (kind == RB__VKIND_IVF) {
        long nlist = strtol(strstr(inner, "IVF") + 3, NULL, 10);
        st = train_ivf(idx, db, vc->id, ix, dim, count, nlist);
        if (st != RB_OK)
            goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT id, embedding FROM chunks WHERE collection_id=? AND embedding "
                           "IS NOT NULL ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, db, "read embeddings");
        goto out;
    }
    sqlite3_bind_int64(s, 1, vc->id);
    for (;;) {
        size_t got;
        bool done;
        st = load_rows(idx, s, dim, x, ids, ADD_BATCH, &got, &done);
        if (st != RB_OK)
            goto out;
        if (got && faiss_Index_add_with_ids(ix, (idx_t)got, x, ids) != 0) {
            st = faiss_fail(idx, "FAISS add");
            goto out;
        }
        if (done)
            break;
    }
    set_params(idx, vc, ix, kind);
    vc->faiss = ix;
    ix = NULL;
    vc->kind = kind;
    vc->native_ids = native;
    vc->loaded = true;
    vc->generation = gen;
    vc->dirty = true;
    RB_INFO(RB_INDEX_LOG, "collection %lld: %s index (%s) of %lld vectors built in %.1f s",
            (long long)vc->id, rb__vkind_name(kind), inner, (long long)rb__vcoll_ntotal(vc),
            (double)(rb_time_mono_ns() - t0) / 1e9);
out:
    sqlite3_finalize(s);
    if (ix)
        faiss_Index_free(ix);
    free(inner);
    free(x);
    free(ids);
    return st;
}

/* ================================================================= load */

static enum rb_status state_row(struct rb_index *idx, sqlite3 *db, int64_t cid, int64_t *gen,
                                char *sha, int64_t *ntotal, bool *found)
{
    sqlite3_stmt *s;
    *found = false;
    if (sqlite3_prepare_v2(db,
                           "SELECT generation, sha256, ntotal FROM faiss_state WHERE "
                           "collection_id=?",
                           -1, &s, NULL) != SQLITE_OK)
        return rb__dberr(idx, db, "read faiss_state");
    sqlite3_bind_int64(s, 1, cid);
    enum rb_status st = RB_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *found = true;
        *gen = sqlite3_column_int64(s, 0);
        rb_strlcpy(sha, (const char *)sqlite3_column_text(s, 1), RB_SHA256_HEX_LEN + 1);
        *ntotal = sqlite3_column_int64(s, 2);
    } else if (rc != SQLITE_DONE) {
        st = rb__dberr(idx, db, "read faiss_state");
    }
    sqlite3_finalize(s);
    return st;
}

/* Tries the file; *why says why it cannot be used (NULL when loaded). */
static enum rb_status try_load(struct rb_index *idx, sqlite3 *db, struct rb__vcoll *vc,
                               int64_t gen, int64_t count, int dim, const char **why)
{
    char sha[RB_SHA256_HEX_LEN + 1] = "", file_sha[RB_SHA256_HEX_LEN + 1];
    int64_t fgen = 0, ntotal = 0;
    bool found;
    enum rb_status st = state_row(idx, db, vc->id, &fgen, sha, &ntotal, &found);
    if (st != RB_OK)
        return st;
    char *path = rb__faiss_path(idx, vc->id);
    if (!path)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    *why = NULL;
    if (!found)
        *why = "never written";
    else if (!rb_fs_exists(path))
        *why = "file missing";
    else if (fgen != gen)
        *why = "stale (older than the database)";
    else if (ntotal != count)
        *why = "stale (vector count differs)";
    else if (rb_sha256_file(path, file_sha) != RB_OK || strcmp(file_sha, sha) != 0)
        *why = "corrupt (checksum mismatch)";
    FaissIndex *ix = NULL;
    if (!*why) {
        if (faiss_read_index_fname(path, 0, &ix) != 0) {
            char copy[300];
            rb_strlcpy(copy, faiss_get_last_error() ? faiss_get_last_error() : "?", sizeof copy);
            RB_WARN(RB_INDEX_LOG, "%s: %s", path, copy);
            *why = "unreadable";
        } else if (faiss_Index_d(ix) != dim || faiss_Index_ntotal(ix) != count ||
                   (!faiss_IndexIDMap2_cast(ix) && !faiss_IndexIVF_cast(ix))) {
            *why = "does not match the database";
            faiss_Index_free(ix);
            ix = NULL;
        }
    }
    free(path);
    if (*why)
        return RB_OK;
    /* The kind in use: look at the factory that built it (recorded in faiss_state). */
    sqlite3_stmt *s;
    enum rb__vkind kind = RB__VKIND_FLAT;
    if (sqlite3_prepare_v2(db, "SELECT index_type FROM faiss_state WHERE collection_id=?", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, vc->id);
        if (sqlite3_step(s) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            if (t && strcmp(t, "hnsw") == 0)
                kind = RB__VKIND_HNSW;
            else if (t && strcmp(t, "ivf") == 0)
                kind = RB__VKIND_IVF;
        }
        sqlite3_finalize(s);
    }
    bool native = faiss_IndexIVF_cast(ix) != NULL;
    if (native)
        kind = RB__VKIND_IVF;
    set_params(idx, vc, ix, kind);
    if (vc->faiss)
        faiss_Index_free((FaissIndex *)vc->faiss);
    vc->faiss = ix;
    vc->kind = kind;
    vc->native_ids = native;
    vc->dim = dim;
    vc->loaded = true;
    vc->generation = gen;
    vc->dirty = false;
    tomb_clear(vc);
    return RB_OK;
}

enum rb_status rb__vcoll_ensure(struct rb_index *idx, sqlite3 *db, struct rb__vcoll *vc,
                                int64_t gen)
{
    int dim = 0;
    int64_t count = 0;
    enum rb_status st = coll_row(idx, db, vc->id, NULL, &dim, &count);
    if (st != RB_OK)
        return st;
    if (count == 0) {
        if (vc->faiss)
            faiss_Index_free((FaissIndex *)vc->faiss);
        vc->faiss = NULL;
        vc->kind = RB__VKIND_NONE;
        vc->native_ids = false;
        vc->nlist = 0;
        vc->dim = dim;
        vc->loaded = true;
        vc->dirty = vc->generation != gen;
        vc->generation = gen;
        tomb_clear(vc);
        return RB_OK;
    }
    const char *why = NULL;
    st = try_load(idx, db, vc, gen, count, dim, &why);
    if (st != RB_OK || !why)
        return st;
    RB_WARN(RB_INDEX_LOG, "FAISS index of collection %lld is %s: rebuilding from SQLite",
            (long long)vc->id, why);
    return rb__vcoll_rebuild(idx, db, vc, gen);
}

/* ================================================================ apply */

enum rb_status rb__vcoll_apply(struct rb_index *idx, sqlite3 *db, struct rb__vcoll *vc,
                               const int64_t *add_ids, const float *add_vecs, size_t n_add,
                               const int64_t *del_ids, size_t n_del, int64_t gen)
{
    if (n_del && vc->faiss) {
        /* HNSW cannot remove; IDMap2 over IVF (older files) renumbers ids the IVF
         * lists do not: both are tombstoned and purged by a rebuild at flush.
         * Flat (under IDMap2) and bare IVF remove the ids themselves. */
        if (!vc->native_ids && (vc->kind == RB__VKIND_HNSW || vc->kind == RB__VKIND_IVF)) {
            for (size_t i = 0; i < n_del; i++)
                if (!tomb_add(vc, del_ids[i]))
                    return rb__err(idx, RB_ERR_NOMEM, "out of memory");
        } else {
            FaissIDSelectorBatch *sel = NULL;
            if (faiss_IDSelectorBatch_new(&sel, n_del, del_ids) != 0)
                return faiss_fail(idx, "FAISS selector");
            size_t removed = 0;
            int rc = faiss_Index_remove_ids((FaissIndex *)vc->faiss, (FaissIDSelector *)sel,
                                            &removed);
            faiss_IDSelector_free((FaissIDSelector *)sel);
            if (rc != 0)
                return faiss_fail(idx, "FAISS remove");
        }
    }
    if (n_add) {
        if (!vc->faiss || (vc->kind == RB__VKIND_IVF &&
                           !faiss_Index_is_trained((FaissIndex *)vc->faiss))) {
            /* First vectors (or an untrained IVF): build from SQLite, which has them. */
            return rb__vcoll_rebuild(idx, db, vc, gen);
        }
        if (faiss_Index_d((FaissIndex *)vc->faiss) != vc->dim)
            return rb__err(idx, RB_ERR_DIMENSION, "vector index dimension mismatch");
        /* Batches use the cores (HNSW inserts in parallel); single adds do not. */
        omp_set_num_threads(n_add >= 64 ? omp_get_num_procs() : 1);
        if (faiss_Index_add_with_ids((FaissIndex *)vc->faiss, (idx_t)n_add, add_vecs, add_ids) != 0)
            return faiss_fail(idx, "FAISS add");
    }
    if (vc->train_at && rb__vcoll_ntotal(vc) >= vc->train_at)
        return rb__vcoll_rebuild(idx, db, vc, gen); /* enough vectors to train the IVF now */
    if (vc->faiss && faiss_Index_ntotal((FaissIndex *)vc->faiss) == (idx_t)vc->tomb_n) {
        faiss_Index_free((FaissIndex *)vc->faiss); /* everything deleted */
        vc->faiss = NULL;
        vc->kind = RB__VKIND_NONE;
        vc->native_ids = false;
        vc->nlist = 0;
        tomb_clear(vc);
    }
    vc->generation = gen;
    vc->dirty = true;
    return RB_OK;
}

/* ================================================================ search */

enum rb_status rb__vcoll_search(struct rb_index *idx, struct rb__vcoll *vc, const float *q,
                                int64_t k, int64_t *ids, float *scores, int64_t *n_out)
{
    *n_out = 0;
    if (!vc->faiss)
        return RB_OK;
    FaissIndex *ix = (FaissIndex *)vc->faiss;
    int64_t ntotal = (int64_t)faiss_Index_ntotal(ix);
    int64_t want = RB_MIN(k + (int64_t)vc->tomb_n, ntotal);
    if (want <= 0)
        return RB_OK;
    float *d = rb_malloc_array((size_t)want, sizeof(float));
    idx_t *l = rb_malloc_array((size_t)want, sizeof(idx_t));
    if (!d || !l) {
        free(d);
        free(l);
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    }
    enum rb_status st = RB_OK;
    /* One query gains nothing from an OpenMP team, and concurrent searches each
     * spinning up a team oversubscribe the cores: search on this thread only
     * (the setting is per calling thread). */
    omp_set_num_threads(1);
    if (faiss_Index_search(ix, 1, q, want, d, l) != 0) {
        st = faiss_fail(idx, "FAISS search");
    } else {
        for (int64_t i = 0; i < want && *n_out < k; i++) {
            if (l[i] < 0 || rb__vcoll_tombstoned(vc, l[i]))
                continue;
            ids[*n_out] = l[i];
            scores[*n_out] = d[i];
            (*n_out)++;
        }
    }
    free(d);
    free(l);
    return st;
}

/* ================================================================ persist */

static enum rb_status coll_factory(struct rb_index *idx, sqlite3 *db, int64_t cid, char **out)
{
    sqlite3_stmt *s;
    *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT factory FROM collections WHERE id=?", -1, &s, NULL) !=
        SQLITE_OK)
        return rb__dberr(idx, db, "read collection");
    sqlite3_bind_int64(s, 1, cid);
    enum rb_status st = RB_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = rb_strdup((const char *)sqlite3_column_text(s, 0));
        if (!*out)
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        st = rb__err(idx, RB_ERR_NOT_FOUND, "no collection with id %lld", (long long)cid);
    } else {
        st = rb__dberr(idx, db, "read collection");
    }
    sqlite3_finalize(s);
    return st;
}

/* Why an "auto" collection of n vectors needs another index now, or NULL.
 * Hysteresis: IVF stays down to half the threshold, and nlist changes only
 * when the size calls for at least twice (or a quarter of) the lists. */
static const char *auto_rebuild_reason(struct rb_index *idx, const struct rb__vcoll *vc,
                                       int64_t n)
{
    int64_t thr = idx->auto_ivf_threshold;
    if (vc->kind == RB__VKIND_IVF && vc->native_ids && vc->nlist > 0) {
        if (n < thr / 2)
            return "below half of auto_ivf_threshold: back to Flat";
        int64_t want = rb__auto_nlist(n);
        if (want >= 2 * vc->nlist)
            return "grown: retraining the IVF with more lists";
        if (want * 4 <= vc->nlist)
            return "shrunk: retraining the IVF with fewer lists";
        return NULL;
    }
    if (n >= thr)
        return "reached auto_ivf_threshold: switching to IVF";
    if (vc->kind != RB__VKIND_FLAT)
        return "below auto_ivf_threshold: switching to Flat";
    return NULL;
}

char *rb__vcoll_describe(struct rb_index *idx, const struct rb__vcoll *vc)
{
    if (!vc || !vc->loaded || !vc->faiss)
        return rb_strdup("none");
    switch (vc->kind) {
    case RB__VKIND_IVF:
        return rb_asprintf("IVF%lld nprobe=%d%s", (long long)vc->nlist, vc->nprobe,
                           vc->native_ids ? "" : " (IDMap2)");
    case RB__VKIND_HNSW:
        return rb_asprintf("HNSW efSearch=%d", idx->hnsw_ef_search);
    default:
        return rb_strdup("Flat");
    }
}

enum rb_status rb__vcoll_persist(struct rb_index *idx, struct rb__vcoll *vc)
{
    sqlite3 *db = idx->db_write;
    char *path = rb__faiss_path(idx, vc->id);
    /* Unique per process and handle: two handles may persist the same collection. */
    char *tmp = rb_asprintf("%s/.%lld.faiss.tmp.%ld.%lx", idx->faiss_dir, (long long)vc->id,
                            (long)getpid(), (unsigned long)(uintptr_t)idx);
    enum rb_status st = RB_OK;
    char sha[RB_SHA256_HEX_LEN + 1] = "";
    if (!path || !tmp) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (vc->faiss) {
        /* Purge tombstones; resize an auto collection (Flat <-> IVF, nlist). */
        const char *why = vc->tomb_n ? "purging deleted vectors" : NULL;
        if (!why) {
            char *factory = NULL;
            st = coll_factory(idx, db, vc->id, &factory);
            if (st != RB_OK)
                goto out;
            if (is_auto(factory))
                why = auto_rebuild_reason(idx, vc, rb__vcoll_ntotal(vc));
            free(factory);
        }
        if (why) {
            RB_INFO(RB_INDEX_LOG, "collection %lld (%s, %lld vectors): %s", (long long)vc->id,
                    rb__vkind_name(vc->kind), (long long)rb__vcoll_ntotal(vc), why);
            st = rb__vcoll_rebuild(idx, db, vc, vc->generation);
            if (st != RB_OK)
                goto out;
        }
    }
    int64_t ntotal = rb__vcoll_ntotal(vc);
    if (vc->faiss) {
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            st = rb__err(idx, RB_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        int rc = faiss_write_index((FaissIndex *)vc->faiss, f);
        if (rc != 0) {
            st = faiss_fail(idx, "FAISS write");
            fclose(f);
            unlink(tmp);
            goto out;
        }
        if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
            st = rb__err(idx, RB_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            fclose(f);
            unlink(tmp);
            goto out;
        }
        if (fclose(f) != 0) {
            st = rb__err(idx, RB_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            unlink(tmp);
            goto out;
        }
        if (rb_sha256_file(tmp, sha) != RB_OK) {
            st = rb__err(idx, RB_ERR_IO, "cannot read back %s", tmp);
            unlink(tmp);
            goto out;
        }
        if (rename(tmp, path) != 0) {
            st = rb__err(idx, RB_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
            unlink(tmp);
            goto out;
        }
    } else if (unlink(path) != 0 && errno != ENOENT) {
        st = rb__err(idx, RB_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        goto out;
    }
    if (rb_fs_sync_parent(path) != RB_OK)
        RB_DEBUG(RB_INDEX_LOG, "cannot sync the directory of %s", path);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO faiss_state(collection_id, generation, sha256, ntotal, "
                           "index_type, written_us) VALUES(?,?,?,?,?,?) ON CONFLICT(collection_id) "
                           "DO UPDATE SET generation=excluded.generation, sha256=excluded.sha256, "
                           "ntotal=excluded.ntotal, index_type=excluded.index_type, "
                           "written_us=excluded.written_us",
                           -1, &s, NULL) != SQLITE_OK) {
        st = rb__dberr(idx, db, "record FAISS state");
        goto out;
    }
    sqlite3_bind_int64(s, 1, vc->id);
    sqlite3_bind_int64(s, 2, vc->generation);
    sqlite3_bind_text(s, 3, sha, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, ntotal);
    sqlite3_bind_text(s, 5, rb__vkind_name(vc->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, rb_time_now_us());
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        st = rb__dberr(idx, db, "record FAISS state");
        goto out;
    }
    vc->dirty = false;
    RB_DEBUG(RB_INDEX_LOG, "collection %lld: FAISS file written (%lld vectors, generation %lld)",
             (long long)vc->id, (long long)ntotal, (long long)vc->generation);
out:
    free(path);
    free(tmp);
    return st;
}

static enum rb_status read_gen(struct rb_index *idx, sqlite3 *db, int64_t cid, int64_t *gen,
                               bool *exists)
{
    sqlite3_stmt *s;
    *exists = false;
    if (sqlite3_prepare_v2(db, "SELECT vec_generation FROM collections WHERE id=?", -1, &s,
                           NULL) != SQLITE_OK)
        return rb__dberr(idx, db, "read generation");
    sqlite3_bind_int64(s, 1, cid);
    int rc = sqlite3_step(s);
    enum rb_status st = RB_OK;
    if (rc == SQLITE_ROW) {
        *gen = sqlite3_column_int64(s, 0);
        *exists = true;
    } else if (rc != SQLITE_DONE) {
        st = rb__dberr(idx, db, "read generation");
    }
    sqlite3_finalize(s);
    return st;
}

/* Caller holds write_mutex and vlock exclusive. */
enum rb_status rb__flush_locked(struct rb_index *idx);
enum rb_status rb__flush_locked(struct rb_index *idx)
{
    enum rb_status result = RB_OK;
    for (size_t i = 0; i < idx->n_vcolls; i++) {
        struct rb__vcoll *vc = idx->vcolls[i];
        if (!vc->dirty)
            continue;
        enum rb_status st = RB_OK;
        if (!vc->loaded) {
            int64_t gen;
            bool exists;
            st = read_gen(idx, idx->db_write, vc->id, &gen, &exists);
            if (st == RB_OK && !exists) {
                vc->dirty = false;
                continue;
            }
            if (st == RB_OK)
                st = rb__vcoll_rebuild(idx, idx->db_write, vc, gen);
        }
        if (st == RB_OK)
            st = rb__vcoll_persist(idx, vc);
        if (st != RB_OK) {
            RB_ERROR(RB_INDEX_LOG, "collection %lld: cannot write FAISS index: %s",
                     (long long)vc->id, rb_index_errmsg(idx));
            result = st;
        }
    }
    return result;
}

/* At open: register every collection; rebuild missing or stale files now
 * (checksums are checked when a collection is first used). */
enum rb_status rb__vectors_open(struct rb_index *idx, struct rb_errmsg *err);
enum rb_status rb__vectors_open(struct rb_index *idx, struct rb_errmsg *err)
{
    sqlite3 *db = idx->db_write;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id, c.dim, c.vec_generation, (SELECT count(*) FROM chunks k "
                           "WHERE k.collection_id=c.id AND k.embedding IS NOT NULL), "
                           "f.generation, f.ntotal FROM collections c LEFT JOIN faiss_state f ON "
                           "f.collection_id=c.id",
                           -1, &s, NULL) != SQLITE_OK)
        return rb_errmsg_set(err, RB_ERR_DB, "%s: %s", idx->db_path, sqlite3_errmsg(db));
    enum rb_status st = RB_OK;
    int rc;
    /* Collect the stale collections first: rebuilding writes faiss_state, which
     * must not happen inside this statement's read transaction (a concurrent
     * writer would make the upgrade fail with SQLITE_BUSY at once). */
    int64_t *stale_ids = NULL, *stale_gens = NULL;
    size_t n_stale = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && st == RB_OK) {
        struct rb__vcoll *vc;
        int64_t cid = sqlite3_column_int64(s, 0);
        st = rb__vcoll_add(idx, cid, sqlite3_column_int(s, 1), &vc);
        if (st != RB_OK)
            break;
        int64_t gen = sqlite3_column_int64(s, 2), count = sqlite3_column_int64(s, 3);
        bool has_state = sqlite3_column_type(s, 4) != SQLITE_NULL;
        int64_t fgen = sqlite3_column_int64(s, 4), fn = sqlite3_column_int64(s, 5);
        char *path = rb__faiss_path(idx, cid);
        bool stale = count > 0 && (!has_state || fgen != gen || fn != count || !path ||
                                   !rb_fs_exists(path));
        free(path);
        if (!stale)
            continue;
        RB_WARN(RB_INDEX_LOG,
                "FAISS index of collection %lld is missing or stale (file generation %lld, "
                "database %lld): rebuilding from SQLite",
                (long long)cid, (long long)(has_state ? fgen : -1), (long long)gen);
        int64_t *a = realloc(stale_ids, (n_stale + 1) * sizeof *a);
        if (a)
            stale_ids = a;
        int64_t *b = a ? realloc(stale_gens, (n_stale + 1) * sizeof *b) : NULL;
        if (b)
            stale_gens = b;
        if (!a || !b) {
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
            break;
        }
        stale_ids[n_stale] = cid;
        stale_gens[n_stale++] = gen;
    }
    if (st == RB_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = rb__dberr(idx, db, "list collections");
    sqlite3_finalize(s);
    for (size_t i = 0; i < n_stale && st == RB_OK; i++) {
        struct rb__vcoll *vc = rb__vcoll_find(idx, stale_ids[i]);
        st = rb__vcoll_rebuild(idx, db, vc, stale_gens[i]);
        if (st == RB_OK && !idx->read_only)
            st = rb__vcoll_persist(idx, vc);
    }
    free(stale_ids);
    free(stale_gens);
    if (st != RB_OK)
        return rb_errmsg_set(err, st, "%s", rb_index_errmsg(idx));
    return RB_OK;
}

/* ================================================================ verify */

enum rb_status rb__problem_add(char ***problems, size_t *n, size_t *cap, const char *fmt, ...)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        char **p = realloc(*problems, c * sizeof *p);
        if (!p)
            return RB_ERR_NOMEM;
        *problems = p;
        *cap = c;
    }
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (!m)
        return RB_ERR_NOMEM;
    (*problems)[(*n)++] = m;
    return RB_OK;
}


enum rb_status rb__vcoll_verify_file(struct rb_index *idx, sqlite3 *db, int64_t cid,
                                     const char *name, char ***problems, size_t *n, size_t *cap)
{
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        if (rb__problem_add(problems, n, cap, __VA_ARGS__) != RB_OK) {                             \
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");                                      \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    enum rb_status st = RB_OK;
    int64_t *ids = NULL;
    size_t n_ids = 0;
    FaissIndex *ix = NULL;
    char *path = rb__faiss_path(idx, cid);
    sqlite3_stmt *s = NULL;
    int64_t gen = 0;
    bool exists;
    if (!path)
        return rb__err(idx, RB_ERR_NOMEM, "out of memory");
    if ((st = read_gen(idx, db, cid, &gen, &exists)) != RB_OK)
        goto out;
    if ((st = embedded_ids(idx, db, cid, "verify", &ids, &n_ids)) != RB_OK)
        goto out;
    char sha[RB_SHA256_HEX_LEN + 1] = "", file_sha[RB_SHA256_HEX_LEN + 1] = "";
    int64_t fgen = 0, ntotal = 0;
    bool found;
    if ((st = state_row(idx, db, cid, &fgen, sha, &ntotal, &found)) != RB_OK)
        goto out;
    bool file = rb_fs_exists(path);
    if (n_ids == 0) {
        if (file && found && ntotal != 0)
            PROBLEM("collection %s: FAISS file %s holds %lld vectors, the database none", name,
                    path, (long long)ntotal);
        goto out;
    }
    if (!file) {
        PROBLEM("collection %s: FAISS file %s is missing (%zu vectors in SQLite)", name, path,
                n_ids);
        goto out;
    }
    if (!found) {
        PROBLEM("collection %s: no record of the FAISS file in faiss_state", name);
        goto out;
    }
    if (fgen != gen)
        PROBLEM("collection %s: FAISS file reflects generation %lld, the database is at %lld",
                name, (long long)fgen, (long long)gen);
    if (rb_sha256_file(path, file_sha) != RB_OK || strcmp(sha, file_sha) != 0) {
        PROBLEM("collection %s: FAISS file %s checksum does not match the recorded one", name,
                path);
        goto out;
    }
    if (faiss_read_index_fname(path, 0, &ix) != 0) {
        char copy[300];
        rb_strlcpy(copy, faiss_get_last_error() ? faiss_get_last_error() : "?", sizeof copy);
        PROBLEM("collection %s: FAISS file %s cannot be read: %s", name, path, copy);
        goto out;
    }
    if ((int64_t)faiss_Index_ntotal(ix) != (int64_t)n_ids)
        PROBLEM("collection %s: FAISS holds %lld vectors, SQLite %zu chunks with embeddings", name,
                (long long)faiss_Index_ntotal(ix), n_ids);
    FaissIndexIDMap2 *map = faiss_IndexIDMap2_cast(ix);
    FaissIndexIVF *ivf = map ? NULL : faiss_IndexIVF_cast(ix);
    if (!map && !ivf) {
        PROBLEM("collection %s: FAISS file is neither an IDMap2 nor an IVF index", name);
        goto out;
    }
    size_t fn = (size_t)faiss_Index_ntotal(ix);
    int64_t *sorted = rb_malloc_array(fn ? fn : 1, sizeof(int64_t));
    if (!sorted) {
        st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (map) {
        idx_t *fids;
        size_t mn;
        faiss_IndexIDMap2_id_map(map, &fids, &mn);
        fn = RB_MIN(fn, mn);
        for (size_t i = 0; i < fn; i++)
            sorted[i] = fids[i];
    } else {
        /* An IVF holds the ids in its lists: gather them (their total is ntotal). */
        size_t nlist = faiss_IndexIVF_nlist(ivf), at = 0;
        for (size_t l = 0; l < nlist; l++) {
            size_t ln = faiss_IndexIVF_get_list_size(ivf, l);
            if (at + ln > fn) {
                free(sorted);
                PROBLEM("collection %s: FAISS IVF lists hold more ids than its ntotal", name);
                goto out;
            }
            faiss_IndexIVF_invlists_get_ids(ivf, l, (idx_t *)sorted + at);
            at += ln;
        }
        fn = at;
    }
    qsort(sorted, fn, sizeof *sorted, cmp_i64);
    size_t i = 0, j = 0, missing = 0, extra = 0;
    while (i < n_ids || j < fn) {
        if (j >= fn || (i < n_ids && ids[i] < sorted[j])) {
            missing++;
            i++;
        } else if (i >= n_ids || sorted[j] < ids[i]) {
            extra++;
            j++;
        } else {
            i++;
            j++;
        }
    }
    free(sorted);
    if (missing || extra) {
        free(NULL);
        if (rb__problem_add(problems, n, cap,
                            "collection %s: FAISS ids differ from SQLite (%zu missing, %zu "
                            "not in the database)",
                            name, missing, extra) != RB_OK)
            st = rb__err(idx, RB_ERR_NOMEM, "out of memory");
    }
out:
    sqlite3_finalize(s);
    if (ix)
        faiss_Index_free(ix);
    free(ids);
    free(path);
    return st;
#undef PROBLEM
}
