/* Ingest with the engine's embedding model (a real BERT GGUF): every chunk
 * gets a vector, chunk budgets are measured in the model's own tokens, and a
 * vector search with an embedded query finds the right passage. */
#include "pipeline-util.h"
#include "ragbox/engine.h"

int main(void)
{
    const char *mpath = check_shared("models/fixtures/bert-bge-128.q8_0.gguf");
    if (!rb_fs_exists(mpath))
        CHECK_SKIP("%s missing", mpath);
    struct rb_errmsg e = {{0}};
    struct rb_engine_model *m = NULL;
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_threads = 2;
    REQUIRE(rb_engine_model_open(mpath, &mp, &m, &e) == RB_OK);
    struct rb_ingest_embedder emb;
    REQUIRE(rb_ingest_embedder_from_engine(m, &emb, &e) == RB_OK);
    CHECK(emb.dim > 0);

    const char *root = check_tmpdir("embed");
    char *data = rb_path_join(root, "data"), *dir = rb_path_join(root, "docs");
    REQUIRE(rb_fs_mkdirs(dir, 0755) == RB_OK);
    struct rb_config *cfg = NULL;
    REQUIRE(rb_config_parse("t", "[ingest]\nchunk_tokens = 48\nchunk_overlap = 8\n", &cfg, &e) == RB_OK);
    struct rb_index_options io = {.data_dir = data};
    struct rb_index *idx = NULL;
    REQUIRE(rb_index_open(&io, &idx, &e) == RB_OK);
    struct rb_ingest_options o = {.index = idx, .config = cfg, .embedder = &emb};
    struct rb_ingest *ing = NULL;
    REQUIRE(rb_ingest_open(&o, &ing, &e) == RB_OK);
    copy_shared("docs/md/README.md", dir, "readme.md");
    copy_shared("docs/html/fake-html.html", dir, "page.html");
    size_t q = 0;
    REQUIRE(rb_ingest_enqueue_path(ing, "vec", dir, false, &q) == RB_OK);
    for (;;) {
        struct rb_ingest_job_result r;
        enum rb_status st = rb_ingest_run_one(ing, &r, NULL);
        if (st == RB_ERR_NOT_FOUND)
            break;
        CHECK_MSG(st == RB_OK && r.error == NULL, "%s", r.error ? r.error : rb_ingest_errmsg(ing));
        rb_ingest_job_result_clear(&r);
    }
    struct rb_index_collection *c = NULL;
    REQUIRE(rb_index_collection_get(idx, "vec", &c) == RB_OK);
    CHECK(c->chunks >= 4);
    CHECK_EQ_INT(c->vectors, c->chunks);
    CHECK_EQ_INT(c->dim, emb.dim);
    /* token counts are the model's, within the budget */
    char *readme = rb_path_join(dir, "readme.md");
    struct rb_index_document *d = NULL;
    REQUIRE(rb_index_document_find(idx, c->id, readme, &d) == RB_OK);
    struct rb_index_chunk **ch = NULL;
    size_t n = 0;
    REQUIRE(rb_index_document_chunks(idx, d->id, &ch, &n) == RB_OK);
    for (size_t i = 0; i < n; i++) {
        size_t tokens = 0;
        REQUIRE(rb_engine_model_count_tokens(m, ch[i]->text, strlen(ch[i]->text), &tokens) == RB_OK);
        CHECK_EQ_INT(ch[i]->token_count, tokens);
        CHECK(ch[i]->token_count <= 48 + 4); /* special tokens of the model */
    }
    rb_index_chunk_list_free(ch, n);
    /* vector search for a passage's own text finds that passage first */
    const char *query = "You can get an example 10-K in inline XBRL format using the following curl.";
    float *qv = malloc((size_t)emb.dim * sizeof *qv);
    REQUIRE(qv && rb_engine_embed(m, &query, 1, qv) == RB_OK);
    struct rb_index_query iq = {.vector = qv, .vector_dim = emb.dim, .mode = RB_INDEX_MODE_VECTOR,
                                .k = 3, .collection_ids = &c->id, .n_collections = 1};
    struct rb_index_results res = {0};
    REQUIRE(rb_index_search(idx, &iq, &res) == RB_OK);
    CHECK(res.n >= 1);
    if (res.n)
        CHECK(strstr(res.hits[0].text, "inline XBRL") != NULL);
    rb_index_results_free(&res);
    free(qv);
    rb_index_document_free(d);
    rb_index_collection_free(c);
    free(readme);
    rb_ingest_close(ing);
    rb_index_close(idx);
    rb_config_free(cfg);
    rb_engine_model_close(m);
    free(data), free(dir);
    return check_finish();
}
