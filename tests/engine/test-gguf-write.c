/* GGUF writer: a file with every value type and several tensor types (copied
 * and produced by callback) reads back exactly through the validating reader;
 * a real model copied through the writer keeps all metadata and tensor bytes;
 * misuse is refused. */
#include "check.h"
#include "gguf.h"

static enum rb_status fill_pattern(void *user, const char *name, void *buf, uint64_t size)
{
    unsigned seed = *(unsigned *)user;
    unsigned char *p = buf;
    for (uint64_t i = 0; i < size; i++)
        p[i] = (unsigned char)(i * 31 + seed + (unsigned char)name[0]);
    return RB_OK;
}

static enum rb_status fill_fail(void *user, const char *name, void *buf, uint64_t size)
{
    (void)user;
    (void)name;
    (void)buf;
    (void)size;
    return RB_ERR_IO;
}

static void test_roundtrip(const char *dir)
{
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    rb_gguf_writer_set_alignment(w, 64);
    CHECK(rb_gguf_writer_set_str(w, "general.architecture", "llama", 5) == RB_OK);
    CHECK(rb_gguf_writer_set_u32(w, "general.alignment", 64) == RB_OK);
    CHECK(rb_gguf_writer_set_u32(w, "llama.context_length", 1) == RB_OK);
    CHECK(rb_gguf_writer_set_u32(w, "llama.context_length", 2048) == RB_OK); /* replaces */
    CHECK(rb_gguf_writer_set_i32(w, "t.i32", -3) == RB_OK);
    CHECK(rb_gguf_writer_set_u64(w, "t.u64", 1ull << 40) == RB_OK);
    CHECK(rb_gguf_writer_set_f32(w, "t.f32", 0.5f) == RB_OK);
    CHECK(rb_gguf_writer_set_bool(w, "t.bool", true) == RB_OK);
    float scores[3] = {1.0f, -2.0f, 3.5f};
    CHECK(rb_gguf_writer_set_arr(w, "t.scores", RB_GGUF_TYPE_FLOAT32, scores, 3) == RB_OK);
    const char *toks[] = {"<s>", "\xe2\x96\x81hello", ""};
    CHECK(rb_gguf_writer_set_arr_str(w, "t.tokens", toks, NULL, 3) == RB_OK);
    CHECK(rb_gguf_writer_set_arr(w, "t.bad", RB_GGUF_TYPE_STRING, scores, 3) == RB_ERR_INVALID);
    CHECK(rb_gguf_writer_set_u32(w, "", 1) == RB_ERR_INVALID);

    float f32[16];
    for (int i = 0; i < 16; i++)
        f32[i] = (float)i * 0.25f;
    uint64_t ne_a[2] = {8, 2};
    CHECK(rb_gguf_writer_add_tensor(w, "a.weight", RB_GGML_TYPE_F32, 2, ne_a, f32, sizeof f32) ==
          RB_OK);
    CHECK(rb_gguf_writer_add_tensor(w, "a.weight", RB_GGML_TYPE_F32, 2, ne_a, f32, sizeof f32) ==
          RB_ERR_EXISTS);
    CHECK(rb_gguf_writer_add_tensor(w, "x", RB_GGML_TYPE_F32, 2, ne_a, f32, 12) == RB_ERR_INVALID);
    uint64_t ne_bad[1] = {100};
    CHECK(rb_gguf_writer_add_tensor_cb(w, "y", RB_GGML_TYPE_Q4_K, 1, ne_bad, fill_pattern, NULL) ==
          RB_ERR_INVALID);
    unsigned seed = 7;
    uint64_t ne_k[2] = {512, 3};
    CHECK(rb_gguf_writer_add_tensor_cb(w, "blk.0.ffn_down.weight", RB_GGML_TYPE_Q4_K, 2, ne_k,
                                       fill_pattern, &seed) == RB_OK);
    uint64_t ne_q[3] = {64, 2, 2};
    CHECK(rb_gguf_writer_add_tensor_cb(w, "q8", RB_GGML_TYPE_Q8_0, 3, ne_q, fill_pattern, &seed) ==
          RB_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", dir);
    CHECK_MSG(rb_gguf_writer_write(w, path) == RB_OK, "%s", rb_gguf_writer_errmsg(w));
    rb_gguf_writer_free(w);

    struct rb_gguf *g = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_gguf_open(path, &g, &err) == RB_OK);
    CHECK_EQ_INT(rb_gguf_version(g), 3);
    CHECK_EQ_INT(rb_gguf_alignment(g), 64);
    CHECK_EQ_INT(rb_gguf_kv_count(g), 9);
    uint32_t u32;
    CHECK(rb_gguf_get_arch_u32(g, "context_length", &u32) == RB_OK && u32 == 2048);
    int32_t i32;
    CHECK(rb_gguf_get_i32(g, "t.i32", &i32) == RB_OK && i32 == -3);
    uint64_t u64;
    CHECK(rb_gguf_get_u64(g, "t.u64", &u64) == RB_OK && u64 == 1ull << 40);
    float f;
    CHECK(rb_gguf_get_f32(g, "t.f32", &f) == RB_OK && f == 0.5f);
    bool b;
    CHECK(rb_gguf_get_bool(g, "t.bool", &b) == RB_OK && b);
    const struct rb_gguf_kv *kv;
    CHECK(rb_gguf_get_arr(g, "t.scores", &kv) == RB_OK && kv->n == 3 &&
          rb_gguf_arr_f32(kv, 2) == 3.5f);
    CHECK(rb_gguf_get_arr(g, "t.tokens", &kv) == RB_OK && kv->n == 3 && kv->strs[1].len == 8 &&
          kv->strs[2].len == 0);
    CHECK_EQ_INT(rb_gguf_tensor_count(g), 3);
    const struct rb_gguf_tensor *t = rb_gguf_find_tensor(g, "a.weight");
    CHECK(t && t->size == sizeof f32 && memcmp(t->data, f32, sizeof f32) == 0);
    t = rb_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK(t && t->type == RB_GGML_TYPE_Q4_K && t->size == 2 * 3 * 144 && t->ne[1] == 3);
    if (t) {
        unsigned char want[864];
        fill_pattern(&seed, "blk", want, sizeof want);
        CHECK(memcmp(t->data, want, sizeof want) == 0);
    }
    t = rb_gguf_find_tensor(g, "q8");
    CHECK(t && t->n_dims == 3 && t->size == 8 * 34);
    rb_gguf_close(g);

    /* a failing producer leaves no file behind */
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    CHECK(rb_gguf_writer_add_tensor_cb(w, "z", RB_GGML_TYPE_F32, 1, ne_bad, fill_fail, NULL) ==
          RB_OK);
    snprintf(path, sizeof path, "%s/fail.gguf", dir);
    CHECK(rb_gguf_writer_write(w, path) == RB_ERR_IO);
    CHECK(!rb_fs_exists(path));
    CHECK(strstr(rb_gguf_writer_errmsg(w), "'z'") != NULL);
    rb_gguf_writer_free(w);
    snprintf(path, sizeof path, "%s/no/such/dir/x.gguf", dir);
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    CHECK(rb_gguf_writer_write(w, path) == RB_ERR_IO);
    rb_gguf_writer_free(w);
}

/* Copies a real model (metadata + tensors) and compares. */
static void test_copy_model(const char *dir)
{
    struct rb_gguf *src = NULL, *dst = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_gguf_open(check_shared("models/fixtures/llama-spm-64.q4_0.gguf"), &src, &err) ==
            RB_OK);
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    for (size_t i = 0; i < rb_gguf_kv_count(src); i++)
        CHECK(rb_gguf_writer_copy_kv(w, rb_gguf_kv_at(src, i)) == RB_OK);
    for (size_t i = 0; i < rb_gguf_tensor_count(src); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(src, i);
        CHECK(rb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size) ==
              RB_OK);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/copy.gguf", dir);
    CHECK_MSG(rb_gguf_writer_write(w, path) == RB_OK, "%s", rb_gguf_writer_errmsg(w));
    rb_gguf_writer_free(w);
    REQUIRE(rb_gguf_open(path, &dst, &err) == RB_OK);
    CHECK_EQ_INT(rb_gguf_kv_count(dst), rb_gguf_kv_count(src));
    CHECK_EQ_INT(rb_gguf_tensor_count(dst), rb_gguf_tensor_count(src));
    for (size_t i = 0; i < rb_gguf_kv_count(src); i++) {
        const struct rb_gguf_kv *a = rb_gguf_kv_at(src, i), *b = rb_gguf_find(dst, a->key);
        CHECK(b && a->type == b->type && a->n == b->n && a->arr_type == b->arr_type);
        if (b && a->type == RB_GGUF_TYPE_ARRAY && a->arr_type == RB_GGUF_TYPE_STRING)
            for (uint64_t k = 0; k < a->n; k += 997)
                CHECK(a->strs[k].len == b->strs[k].len &&
                      memcmp(a->strs[k].ptr, b->strs[k].ptr, (size_t)a->strs[k].len) == 0);
    }
    for (size_t i = 0; i < rb_gguf_tensor_count(src); i++) {
        const struct rb_gguf_tensor *a = rb_gguf_tensor_at(src, i);
        const struct rb_gguf_tensor *b = rb_gguf_find_tensor(dst, a->name);
        CHECK(b && b->size == a->size && memcmp(a->data, b->data, (size_t)a->size) == 0);
    }
    rb_gguf_close(dst);
    rb_gguf_close(src);
}

int main(void)
{
    const char *dir = check_tmpdir("gguf-write");
    test_roundtrip(dir);
    test_copy_model(dir);
    return check_finish();
}
