/* ragbox collection / index / search commands (the index module). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ragbox/index.h"
#if __has_include("ragbox/ingest.h")
#include "ragbox/ingest.h"
#endif

static int open_index(struct rb_cli *cli, bool read_only, struct rb_index **out)
{
    struct rb_index_options o = {.data_dir = cli->data_dir, .config = cli->config,
                                 .read_only = read_only};
    struct rb_errmsg err;
    if (rb_index_open(&o, out, &err) != RB_OK)
        return rb_cli_fail("%s", err.text);
    return RB_EXIT_OK;
}

static int fail_idx(struct rb_index *idx, const char *what)
{
    int rc = rb_cli_fail("%s: %s", what, rb_index_errmsg(idx));
    rb_index_close(idx);
    return rc;
}

static int lookup_collection(struct rb_index *idx, const char *name, int64_t *id)
{
    struct rb_index_collection *c;
    if (rb_index_collection_get(idx, name, &c) != RB_OK)
        return rb_cli_fail("%s", rb_index_errmsg(idx));
    *id = c->id;
    rb_index_collection_free(c);
    return RB_EXIT_OK;
}

static void reset_getopt(void)
{
    optind = 1;
    opterr = 1;
}

/* =========================================================== collection */

static const char collection_create_help[] =
    "Usage: ragbox collection create [--dim N] [--factory S] [--policy JSON] NAME\n"
    "\n"
    "Creates an empty collection of documents. NAME is 1-64 characters of\n"
    "A-Z a-z 0-9 . _ - starting with a letter or digit.\n"
    "\n"
    "Options:\n"
    "  --dim N        vector dimension (default: fixed by the first vector added)\n"
    "  --factory S    FAISS index: auto (default: Flat, then IVF-Flat from\n"
    "                 [index] auto_ivf_threshold vectors, 20000, with about\n"
    "                 4*sqrt(n) lists, retrained at flush as it grows), Flat,\n"
    "                 HNSW32, HNSW32,Flat, IVF1024,Flat, ... (any FAISS\n"
    "                 factory string)\n"
    "  --policy JSON  per-collection policy object (default {})\n"
    "  -h, --help     this help\n";

int rb_cmd_collection_create(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_collection_create(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(collection_create_help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"dim", required_argument, NULL, 'd'},
                                         {"factory", required_argument, NULL, 'f'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    struct rb_index_collection_options co = {0};
    reset_getopt();
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case 'd':
            if (rb_parse_i64(optarg, &v) != RB_OK || v < 1 || v > RB_INDEX_DIM_MAX)
                return rb_cli_usage("collection create", "--dim: expected 1..%d",
                                    RB_INDEX_DIM_MAX);
            co.dim = (int)v;
            break;
        case 'f':
            co.factory = optarg;
            break;
        case 'p':
            co.policy_json = optarg;
            break;
        default:
            return rb_cli_usage("collection create", "bad option");
        }
    }
    if (optind != argc - 1)
        return rb_cli_usage("collection create", "expected one NAME");
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc)
        return rc;
    int64_t id = 0;
    if (rb_index_collection_create(idx, argv[optind], &co, &id) != RB_OK)
        return fail_idx(idx, "collection create");
    printf("created collection %s (id %lld)\n", argv[optind], (long long)id);
    rb_index_close(idx);
    return RB_EXIT_OK;
}

static void print_stats_json(struct rb_index_collection *list, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && arr; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "collection", list[i].name);
        cJSON_AddNumberToObject(o, "id", (double)list[i].id);
        cJSON_AddNumberToObject(o, "documents", (double)list[i].documents);
        cJSON_AddNumberToObject(o, "chunks", (double)list[i].chunks);
        cJSON_AddNumberToObject(o, "vectors", (double)list[i].vectors);
        cJSON_AddNumberToObject(o, "dim", list[i].dim);
        cJSON_AddStringToObject(o, "factory", list[i].factory);
        cJSON_AddStringToObject(o, "index_type", list[i].index_type);
        cJSON_AddStringToObject(o, "index_desc", list[i].index_desc);
        cJSON *pol = cJSON_Parse(list[i].policy_json);
        if (pol)
            cJSON_AddItemToObject(o, "policy", pol);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = arr ? cJSON_Print(arr) : NULL;
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(arr);
}

static const char collection_list_help[] =
    "Usage: ragbox collection list [--long | --json]\n"
    "\n"
    "Lists the collection names, one per line (for scripts).\n"
    "\n"
    "Options:\n"
    "  --long      also document, chunk and vector counts, dimension and index type\n"
    "  --json      a JSON array of {collection, id, documents, chunks, vectors, dim,\n"
    "              factory, index_type, index_desc, policy}\n"
    "  -h, --help  this help\n";

static int list_or_stats(struct rb_cli *cli, int argc, char **argv, const char *cmd,
                         const char *help, bool allow_collection)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"collection", required_argument, NULL, 'c'},
                                         {"long", no_argument, NULL, 'L'},
                                         {NULL, 0, NULL, 0}};
    bool json = false, names_only = !allow_collection;
    const char *only = NULL;
    reset_getopt();
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j')
            json = true;
        else if (c == 'L' && !allow_collection)
            names_only = false;
        else if (c == 'c' && allow_collection)
            only = optarg;
        else
            return rb_cli_usage(cmd, "bad option");
    }
    if (optind != argc)
        return rb_cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc)
        return rc;
    struct rb_index_collection *list;
    size_t n;
    if (rb_index_collection_list(idx, &list, &n) != RB_OK)
        return fail_idx(idx, cmd);
    if (only) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(list[i].name, only) == 0) {
                struct rb_index_collection t = list[k];
                list[k] = list[i];
                list[i] = t;
                k++;
            }
        }
        if (k == 0) {
            rb_index_collection_list_free(list, n);
            rb_index_close(idx);
            return rb_cli_fail("no collection '%s'", only);
        }
        /* Print only the first k. */
        if (json)
            print_stats_json(list, k);
        else
            for (size_t i = 0; i < k; i++)
                printf("%-24s documents %lld  chunks %lld  vectors %lld  dim %d  index %s (%s)\n",
                       list[i].name, (long long)list[i].documents, (long long)list[i].chunks,
                       (long long)list[i].vectors, list[i].dim, list[i].index_type,
                   list[i].index_desc);
    } else if (json) {
        print_stats_json(list, n);
    } else if (names_only) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", list[i].name);
    } else {
        if (n == 0)
            printf("no collections\n");
        for (size_t i = 0; i < n; i++)
            printf("%-24s documents %lld  chunks %lld  vectors %lld  dim %d  index %s (%s)\n",
                   list[i].name, (long long)list[i].documents, (long long)list[i].chunks,
                   (long long)list[i].vectors, list[i].dim, list[i].index_type,
                   list[i].index_desc);
    }
    rb_index_collection_list_free(list, n);
    rb_index_close(idx);
    return RB_EXIT_OK;
}

int rb_cmd_collection_list(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_collection_list(struct rb_cli *cli, int argc, char **argv)
{
    return list_or_stats(cli, argc, argv, "collection list", collection_list_help, false);
}

static const char collection_delete_help[] =
    "Usage: ragbox collection delete NAME\n"
    "\n"
    "Deletes the collection with all its documents, chunks, keyword index rows,\n"
    "embeddings and its FAISS file. There is no undo.\n"
    "\n"
    "Options:\n"
    "  -h, --help  this help\n";

int rb_cmd_collection_delete(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_collection_delete(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(collection_delete_help, stdout);
        return RB_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-')
        return rb_cli_usage("collection delete", "expected one NAME");
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc)
        return rc;
    int64_t id = 0;
    if ((rc = lookup_collection(idx, argv[1], &id)) != 0) {
        rb_index_close(idx);
        return rc;
    }
    if (rb_index_collection_delete(idx, id) != RB_OK)
        return fail_idx(idx, "collection delete");
    printf("deleted collection %s\n", argv[1]);
    rb_index_close(idx);
    return RB_EXIT_OK;
}

/* ============================================================ index add */

static const char index_add_help[] =
    "Usage: ragbox index add --collection C FILE.jsonl|-\n"
    "\n"
    "Adds documents with their chunks (and optional embeddings) from JSON Lines:\n"
    "one document per line. A document whose source is already in the collection\n"
    "is replaced (chunks, keyword rows and vectors), atomically.\n"
    "\n"
    "Line format (only \"source\" and \"chunks[].text\" are required):\n"
    "  {\"source\": \"reports/q3.pdf\",        file path or URI, unique per collection\n"
    "   \"title\": \"Q3 report\", \"mime\": \"application/pdf\", \"language\": \"en\",\n"
    "   \"sha256\": \"<hex>\", \"size\": 12345, \"mtime\": 1700000000 (seconds),\n"
    "   \"metadata\": {...},\n"
    "   \"chunks\": [{\"text\": \"...\", \"page\": 3 (or \"page_start\"/\"page_end\"),\n"
    "                \"section\": \"2 Risk > 2.1 Credit\", \"ordinal\": 0,\n"
    "                \"byte_start\": 0, \"byte_end\": 812, \"char_start\": 0, \"char_end\": 790,\n"
    "                \"token_count\": 190,\n"
    "                \"embedding\": [0.01, -0.2, ...]}]}   all of one dimension\n"
    "\n"
    "Options:\n"
    "  --collection C  the collection (must exist: ragbox collection create C)\n"
    "  -h, --help      this help\n"
    "\n"
    "Until the ingest module exists this is how text and vectors get in; the\n"
    "engine's embedding model will supply embeddings later.\n";

#define JSONL_LINE_MAX ((size_t)256 << 20)

static int add_line(struct rb_index *idx, int64_t cid, const char *line, size_t len, size_t lineno)
{
    cJSON *j = NULL;
    struct rb_errmsg err;
    if (rb_json_parse(line, len, 32, &j, &err) != RB_OK)
        return rb_cli_fail("line %zu: %s", lineno, err.text);
    int rc = RB_EXIT_FAIL;
    struct rb_index_chunk *chunks = NULL;
    float *vecs = NULL;
    char *meta = NULL;
    size_t n = 0;
    if (!cJSON_IsObject(j)) {
        rb_cli_fail("line %zu: not a JSON object", lineno);
        goto out;
    }
    struct rb_index_document d = {0};
    d.collection_id = cid;
    d.source = rb_json_str(j, "source");
    if (!d.source || !*d.source) {
        rb_cli_fail("line %zu: no \"source\"", lineno);
        goto out;
    }
    d.title = rb_json_str(j, "title");
    d.mime = rb_json_str(j, "mime");
    d.language = rb_json_str(j, "language");
    d.sha256 = rb_json_str(j, "sha256");
    d.size = (int64_t)rb_json_num(j, "size", 0);
    d.mtime_us = (int64_t)(rb_json_num(j, "mtime", 0) * 1e6);
    d.state = RB_INDEX_DOC_INDEXED;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    if (m) {
        if (!cJSON_IsObject(m)) {
            rb_cli_fail("line %zu: \"metadata\" must be an object", lineno);
            goto out;
        }
        meta = cJSON_PrintUnformatted(m);
        d.metadata_json = meta;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "chunks");
    if (arr && !cJSON_IsArray(arr)) {
        rb_cli_fail("line %zu: \"chunks\" must be an array", lineno);
        goto out;
    }
    n = arr ? (size_t)cJSON_GetArraySize(arr) : 0;
    chunks = calloc(n ? n : 1, sizeof *chunks);
    int dim = 0;
    size_t n_emb = 0;
    const cJSON *ch;
    size_t i = 0;
    cJSON_ArrayForEach(ch, arr)
    {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ch, "embedding");
        if (e) {
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 1 ||
                cJSON_GetArraySize(e) > RB_INDEX_DIM_MAX) {
                rb_cli_fail("line %zu: chunk %zu: \"embedding\" must be an array of numbers",
                            lineno, i);
                goto out;
            }
            if (dim && cJSON_GetArraySize(e) != dim) {
                rb_cli_fail("line %zu: chunk %zu: embedding dimension %d, earlier chunks %d",
                            lineno, i, cJSON_GetArraySize(e), dim);
                goto out;
            }
            dim = cJSON_GetArraySize(e);
            n_emb++;
        }
        i++;
    }
    if (n_emb) {
        vecs = rb_malloc_array(n * (size_t)dim, sizeof(float));
        if (!vecs) {
            rb_cli_fail("out of memory");
            goto out;
        }
    }
    i = 0;
    cJSON_ArrayForEach(ch, arr)
    {
        struct rb_index_chunk *c = &chunks[i];
        if (!cJSON_IsObject(ch) || !rb_json_str(ch, "text")) {
            rb_cli_fail("line %zu: chunk %zu has no \"text\"", lineno, i);
            goto out;
        }
        c->text = rb_json_str(ch, "text");
        c->ordinal = (int32_t)rb_json_num(ch, "ordinal", (double)i);
        int page = (int)rb_json_num(ch, "page", 0);
        c->page_start = (int32_t)rb_json_num(ch, "page_start", page);
        c->page_end = (int32_t)rb_json_num(ch, "page_end", c->page_start);
        c->section = rb_json_str(ch, "section");
        c->byte_start = (int64_t)rb_json_num(ch, "byte_start", 0);
        c->byte_end = (int64_t)rb_json_num(ch, "byte_end", 0);
        c->char_start = (int64_t)rb_json_num(ch, "char_start", 0);
        c->char_end = (int64_t)rb_json_num(ch, "char_end", 0);
        c->token_count = (int32_t)rb_json_num(ch, "token_count", 0);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ch, "embedding");
        if (e) {
            float *v = vecs + i * (size_t)dim;
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, e)
            {
                if (!cJSON_IsNumber(x)) {
                    rb_cli_fail("line %zu: chunk %zu: embedding holds a non-number", lineno, i);
                    goto out;
                }
                v[k++] = (float)x->valuedouble;
            }
            c->embedding = v;
            c->embedding_dim = dim;
        }
        i++;
    }
    int64_t doc_id;
    if (rb_index_document_put(idx, &d, chunks, n, &doc_id, NULL) != RB_OK) {
        rb_cli_fail("line %zu (%s): %s", lineno, d.source, rb_index_errmsg(idx));
        goto out;
    }
    rc = RB_EXIT_OK;
out:
    free(chunks);
    free(vecs);
    free(meta);
    cJSON_Delete(j);
    return rc;
}

int rb_cmd_index_add(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_index_add(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(index_add_help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *coll = NULL;
    reset_getopt();
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            coll = optarg;
        else
            return rb_cli_usage("index add", "bad option");
    }
    if (!coll)
        return rb_cli_usage("index add", "--collection is required");
    if (optind != argc - 1)
        return rb_cli_usage("index add", "expected one FILE.jsonl (or - for stdin)");
    const char *path = argv[optind];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return rb_cli_fail("cannot open %s", path);
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc) {
        if (f != stdin)
            fclose(f);
        return rc;
    }
    int64_t cid = 0;
    if ((rc = lookup_collection(idx, coll, &cid)) != 0)
        goto out;
#if __has_include("ragbox/ingest.h")
    {
        /* A collection that redacts at ingest takes text only through the
         * ingest pipeline, which redacts it: pre-chunked text (and vectors
         * computed from unredacted text) would bypass the policy. */
        struct rb_index_collection *col = NULL;
        bool redacts = false;
        struct rb_errmsg perr;
        if (rb_index_collection_get_by_id(idx, cid, &col) == RB_OK &&
            rb_ingest_policy_redacts(col->policy_json, &redacts, &perr) == RB_OK && redacts) {
            rc = rb_cli_fail("collection %s redacts personal data at ingest (its policy): "
                             "add documents with `ragbox ingest`, which applies it",
                             coll);
        }
        rb_index_collection_free(col);
        if (rc)
            goto out;
    }
#endif
    char *line = NULL;
    size_t cap = 0, lineno = 0, added = 0, failed = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t l = (size_t)len;
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            l--;
        size_t k = 0;
        while (k < l && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == l)
            continue;
        if (l > JSONL_LINE_MAX) {
            rb_cli_fail("line %zu: longer than %zu bytes", lineno, JSONL_LINE_MAX);
            failed++;
            continue;
        }
        if (add_line(idx, cid, line, l, lineno) == RB_EXIT_OK)
            added++;
        else
            failed++;
    }
    free(line);
    if (rb_index_flush(idx) != RB_OK) {
        rb_cli_fail("writing the vector index: %s", rb_index_errmsg(idx));
        failed++;
    }
    printf("added %zu documents to %s", added, coll);
    if (failed)
        printf(", %zu failed", failed);
    printf("\n");
    rc = failed ? RB_EXIT_FAIL : RB_EXIT_OK;
out:
    if (f != stdin)
        fclose(f);
    rb_index_close(idx);
    return rc;
}

/* =============================================================== search */

static const char search_help[] =
    "Usage: ragbox search --collection C [--collection C2 ...] [--mode M] [-k N]\n"
    "                     [--vector FILE|-] [--json] QUERY\n"
    "\n"
    "Searches collections: keyword (SQLite FTS5, BM25; Chinese and English),\n"
    "vector (FAISS kNN on a query embedding) or hybrid (both, fused by\n"
    "reciprocal rank fusion).\n"
    "\n"
    "Options:\n"
    "  --collection C  collection to search (repeatable)\n"
    "  --mode M        hybrid (default where vectors exist; keyword when the\n"
    "                  collection has none or no query vector is given),\n"
    "                  keyword, or vector\n"
    "  -k N            number of hits (default 10, at most 1000)\n"
    "  --vector F      the query embedding as a JSON array of numbers, read from\n"
    "                  file F or - for stdin. Needed for vector/hybrid search until\n"
    "                  the engine's embedding model supplies it.\n"
    "  --json          a JSON array of hits: {document, title, page, page_end,\n"
    "                  section, chunk_id, document_id, collection, score,\n"
    "                  keyword_rank, keyword_score, vector_rank, vector_score, text}\n"
    "  -h, --help      this help\n";

int rb_cmd_search(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_search(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(search_help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"vector", required_argument, NULL, 'v'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *colls[64];
    size_t n_colls = 0;
    const char *vector_path = NULL;
    bool json = false;
    struct rb_index_query q = {0};
    q.k = 10;
    q.mode = RB_INDEX_MODE_AUTO;
    reset_getopt();
    int c;
    while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        int64_t v;
        switch (c) {
        case 'c':
            if (n_colls == RB_ARRAY_LEN(colls))
                return rb_cli_usage("search", "too many collections");
            colls[n_colls++] = optarg;
            break;
        case 'm':
            if (rb_index_mode_parse(optarg, &q.mode) != RB_OK || q.mode == RB_INDEX_MODE_AUTO)
                return rb_cli_usage("search", "--mode: expected hybrid, keyword or vector");
            break;
        case 'k':
            if (rb_parse_i64(optarg, &v) != RB_OK || v < 1 || v > 1000)
                return rb_cli_usage("search", "-k: expected 1..1000");
            q.k = (int)v;
            break;
        case 'v':
            vector_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        default:
            return rb_cli_usage("search", "bad option");
        }
    }
    if (n_colls == 0)
        return rb_cli_usage("search", "--collection is required");
    struct rb_buf text;
    rb_buf_init(&text, 1 << 16);
    for (int i = optind; i < argc; i++)
        if ((i > optind && rb_buf_append_str(&text, " ") != RB_OK) ||
            rb_buf_append_str(&text, argv[i]) != RB_OK) {
            rb_buf_free(&text);
            return rb_cli_usage("search", "query too long");
        }
    if (q.mode == RB_INDEX_MODE_VECTOR && !vector_path) {
        rb_buf_free(&text);
        return rb_cli_usage("search", "--mode vector needs --vector FILE|-");
    }
    if (text.len == 0 && !vector_path) {
        rb_buf_free(&text);
        return rb_cli_usage("search", "expected a QUERY");
    }
    float *vec = NULL;
    if (vector_path) {
        char *data = NULL;
        size_t len = 0;
        struct rb_buf in;
        rb_buf_init(&in, 64 << 20);
        enum rb_status st;
        if (strcmp(vector_path, "-") == 0) {
            char tmp[65536];
            size_t r;
            st = RB_OK;
            while (st == RB_OK && (r = fread(tmp, 1, sizeof tmp, stdin)) > 0)
                st = rb_buf_append(&in, tmp, r);
            len = in.len;
            data = rb_buf_steal(&in);
        } else {
            st = rb_fs_read_file(vector_path, 64 << 20, &data, &len);
        }
        rb_buf_free(&in);
        cJSON *j = NULL;
        struct rb_errmsg err;
        if (st != RB_OK || !data || rb_json_parse(data, len, 4, &j, &err) != RB_OK ||
            !cJSON_IsArray(j) || cJSON_GetArraySize(j) < 1 ||
            cJSON_GetArraySize(j) > RB_INDEX_DIM_MAX) {
            free(data);
            cJSON_Delete(j);
            rb_buf_free(&text);
            return rb_cli_fail("--vector %s: expected a JSON array of numbers", vector_path);
        }
        free(data);
        q.vector_dim = cJSON_GetArraySize(j);
        vec = calloc((size_t)q.vector_dim, sizeof *vec);
        int k = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, j)
        {
            if (!cJSON_IsNumber(x)) {
                free(vec);
                cJSON_Delete(j);
                rb_buf_free(&text);
                return rb_cli_fail("--vector %s: expected numbers", vector_path);
            }
            vec[k++] = (float)x->valuedouble;
        }
        cJSON_Delete(j);
        q.vector = vec;
    }
    q.text = text.len ? text.data : NULL;
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc) {
        free(vec);
        rb_buf_free(&text);
        return rc;
    }
    int64_t ids[64];
    for (size_t i = 0; i < n_colls; i++)
        if ((rc = lookup_collection(idx, colls[i], &ids[i])) != 0)
            goto out;
    q.collection_ids = ids;
    q.n_collections = n_colls;
    struct rb_index_results res;
    if (rb_index_search(idx, &q, &res) != RB_OK) {
        rc = rb_cli_fail("search: %s", rb_index_errmsg(idx));
        goto out;
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < res.n && arr; i++) {
            struct rb_index_hit *h = &res.hits[i];
            cJSON *o = cJSON_CreateObject();
            if (!o)
                break;
            cJSON_AddStringToObject(o, "document", h->source);
            if (h->title)
                cJSON_AddStringToObject(o, "title", h->title);
            else
                cJSON_AddNullToObject(o, "title");
            if (h->page_start > 0) {
                cJSON_AddNumberToObject(o, "page", h->page_start);
                cJSON_AddNumberToObject(o, "page_end", h->page_end);
            } else {
                cJSON_AddNullToObject(o, "page");
                cJSON_AddNullToObject(o, "page_end");
            }
            if (h->section)
                cJSON_AddStringToObject(o, "section", h->section);
            else
                cJSON_AddNullToObject(o, "section");
            cJSON_AddNumberToObject(o, "chunk_id", (double)h->chunk_id);
            cJSON_AddNumberToObject(o, "document_id", (double)h->document_id);
            const char *cname = "?";
            for (size_t k = 0; k < n_colls; k++)
                if (ids[k] == h->collection_id)
                    cname = colls[k];
            cJSON_AddStringToObject(o, "collection", cname);
            cJSON_AddNumberToObject(o, "score", h->score);
            cJSON_AddNumberToObject(o, "keyword_rank", h->keyword_rank);
            if (h->keyword_rank)
                cJSON_AddNumberToObject(o, "keyword_score", h->keyword_score);
            else
                cJSON_AddNullToObject(o, "keyword_score");
            cJSON_AddNumberToObject(o, "vector_rank", h->vector_rank);
            if (h->vector_rank)
                cJSON_AddNumberToObject(o, "vector_score", h->vector_score);
            else
                cJSON_AddNullToObject(o, "vector_score");
            cJSON_AddStringToObject(o, "text", h->text);
            cJSON_AddItemToArray(arr, o);
        }
        char *s = arr ? cJSON_Print(arr) : NULL;
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(arr);
    } else {
        printf("%zu hits (%s)\n", res.n, rb_index_mode_name(res.mode));
        for (size_t i = 0; i < res.n; i++) {
            struct rb_index_hit *h = &res.hits[i];
            printf("\n%zu. %s", i + 1, h->source);
            if (h->page_start > 0)
                printf("  p. %d", h->page_start);
            if (h->section)
                printf("  [%s]", h->section);
            printf("  score %.4f (chunk %lld)\n", h->score, (long long)h->chunk_id);
            size_t cut = rb_utf8_truncate(h->text, strlen(h->text), 300);
            printf("   %.*s%s\n", (int)cut, h->text, cut < strlen(h->text) ? "..." : "");
        }
    }
    rb_index_results_free(&res);
out:
    rb_index_close(idx);
    free(vec);
    rb_buf_free(&text);
    return rc;
}

/* =============================================================== index stats */

static const char index_stats_help[] =
    "Usage: ragbox index stats [--collection C] [--json]\n"
    "\n"
    "Documents, chunks and vectors per collection.\n"
    "\n"
    "Options:\n"
    "  --collection C  only this collection\n"
    "  --json          a JSON array of {collection, id, documents, chunks, vectors,\n"
    "                  dim, factory, index_type, index_desc, policy}\n"
    "  -h, --help      this help\n";

int rb_cmd_index_stats(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_index_stats(struct rb_cli *cli, int argc, char **argv)
{
    return list_or_stats(cli, argc, argv, "index stats", index_stats_help, true);
}

static const char index_verify_help[] =
    "Usage: ragbox index verify\n"
    "\n"
    "Checks that SQLite (integrity_check, foreign keys), the FTS5 keyword index\n"
    "(integrity-check, one row per chunk) and every FAISS file (present, checksum,\n"
    "same vector ids as the chunks with embeddings) agree. Prints each problem.\n"
    "Exit status 0 only when everything agrees; 1 otherwise.\n"
    "Repair with 'ragbox index rebuild'.\n"
    "\n"
    "Options:\n"
    "  -h, --help  this help\n";

int rb_cmd_index_verify(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_index_verify(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(index_verify_help, stdout);
        return RB_EXIT_OK;
    }
    if (argc != 1)
        return rb_cli_usage("index verify", "unexpected argument '%s'", argv[1]);
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc)
        return rc;
    char **problems;
    size_t n;
    if (rb_index_verify(idx, &problems, &n) != RB_OK)
        return fail_idx(idx, "index verify");
    for (size_t i = 0; i < n; i++)
        printf("problem: %s\n", problems[i]);
    if (n == 0)
        printf("ok: SQLite, FTS5 and FAISS agree\n");
    else
        printf("%zu problem%s found\n", n, n == 1 ? "" : "s");
    rb_index_problems_free(problems, n);
    rb_index_close(idx);
    return n ? RB_EXIT_FAIL : RB_EXIT_OK;
}

static const char index_rebuild_help[] =
    "Usage: ragbox index rebuild [--collection C] [--vectors | --keyword]\n"
    "\n"
    "Rebuilds the FAISS vector indexes from the embeddings stored in SQLite and\n"
    "the FTS5 keyword index from the chunks (both by default).\n"
    "\n"
    "Options:\n"
    "  --collection C  only this collection's vectors (FTS5 is always rebuilt whole)\n"
    "  --vectors       only the FAISS indexes\n"
    "  --keyword       only the FTS5 index\n"
    "  -h, --help      this help\n";

int rb_cmd_index_rebuild(struct rb_cli *cli, int argc, char **argv);
int rb_cmd_index_rebuild(struct rb_cli *cli, int argc, char **argv)
{
    if (rb_cli_wants_help(argc, argv)) {
        fputs(index_rebuild_help, stdout);
        return RB_EXIT_OK;
    }
    static const struct option opts[] = {{"collection", required_argument, NULL, 'c'},
                                         {"vectors", no_argument, NULL, 'v'},
                                         {"keyword", no_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    const char *coll = NULL;
    unsigned what = 0;
    reset_getopt();
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c')
            coll = optarg;
        else if (c == 'v')
            what |= RB_INDEX_REBUILD_VECTORS;
        else if (c == 'k')
            what |= RB_INDEX_REBUILD_KEYWORD;
        else
            return rb_cli_usage("index rebuild", "bad option");
    }
    if (optind != argc)
        return rb_cli_usage("index rebuild", "unexpected argument '%s'", argv[optind]);
    if (!what)
        what = RB_INDEX_REBUILD_ALL;
    struct rb_index *idx;
    int rc = open_index(cli, false, &idx);
    if (rc)
        return rc;
    int64_t cid = 0;
    if (coll && (rc = lookup_collection(idx, coll, &cid)) != 0) {
        rb_index_close(idx);
        return rc;
    }
    if (rb_index_rebuild(idx, cid, what) != RB_OK)
        return fail_idx(idx, "index rebuild");
    printf("rebuilt%s%s\n", (what & RB_INDEX_REBUILD_VECTORS) ? " vectors" : "",
           (what & RB_INDEX_REBUILD_KEYWORD) ? " keyword index" : "");
    rb_index_close(idx);
    return RB_EXIT_OK;
}
