/* GGUF reader: every shared model and vocab file loads with the right shape;
 * a hand-built file round-trips all value types; truncated, bit-flipped and
 * deliberately hostile variants are refused with a clear error (never a crash:
 * this test runs under ASan/UBSan in CI). */
#include <dirent.h>
#include <stdint.h>

#include "check.h"
#include "gguf.h"

/* ------------------------------------------------------------ a mini builder */
/* Independent of gguf-write.c on purpose: it produces exactly the bytes the
 * format describes, and records where interesting fields are so the hostile
 * cases can patch them. */
struct mb {
    uint8_t buf[8192];
    size_t len;
};
static void put(struct mb *b, const void *p, size_t n)
{
    REQUIRE(b->len + n <= sizeof b->buf);
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}
static void put_u32(struct mb *b, uint32_t v)
{
    put(b, &v, 4);
}
static void put_u64(struct mb *b, uint64_t v)
{
    put(b, &v, 8);
}
static void put_str(struct mb *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

struct layout {
    size_t n_tensors_at, n_kv_at, strarr_len_at, key0_len_at, alignment_val_at;
    size_t t_ndims_at[3], t_ne0_at[3], t_type_at[3], t_off_at[3], t_name_at[3];
    size_t data_at;
};

/* 3 tensors: f32 [8,2] (64 B), q4_0 [64,2] (72 B), q6_K [256] (210 B). */
static void build(struct mb *b, struct layout *L, uint32_t version)
{
    memset(b, 0, sizeof *b);
    put(b, "GGUF", 4);
    put_u32(b, version);
    L->n_tensors_at = b->len;
    put_u64(b, 3);
    L->n_kv_at = b->len;
    put_u64(b, 9);
    L->key0_len_at = b->len;
    put_str(b, "general.architecture");
    put_u32(b, RB_GGUF_TYPE_STRING);
    put_str(b, "llama");
    put_str(b, "llama.context_length");
    put_u32(b, RB_GGUF_TYPE_UINT32);
    put_u32(b, 4096);
    put_str(b, "general.alignment");
    put_u32(b, RB_GGUF_TYPE_UINT32);
    L->alignment_val_at = b->len;
    put_u32(b, 64);
    put_str(b, "test.i8");
    put_u32(b, RB_GGUF_TYPE_INT8);
    int8_t m5 = -5;
    put(b, &m5, 1);
    put_str(b, "test.f64");
    put_u32(b, RB_GGUF_TYPE_FLOAT64);
    double d = 2.5;
    put(b, &d, 8);
    put_str(b, "test.bool");
    put_u32(b, RB_GGUF_TYPE_BOOL);
    uint8_t t = 1;
    put(b, &t, 1);
    put_str(b, "test.strs");
    put_u32(b, RB_GGUF_TYPE_ARRAY);
    put_u32(b, RB_GGUF_TYPE_STRING);
    L->strarr_len_at = b->len;
    put_u64(b, 3);
    put_str(b, "alpha");
    put_str(b, "");
    put_str(b, "\xe2\x96\x81gamma");
    put_str(b, "test.f32s");
    put_u32(b, RB_GGUF_TYPE_ARRAY);
    put_u32(b, RB_GGUF_TYPE_FLOAT32);
    put_u64(b, 3);
    float fs[3] = {-1.5f, 0.0f, 3.25f};
    put(b, fs, sizeof fs);
    put_str(b, "test.i64");
    put_u32(b, RB_GGUF_TYPE_INT64);
    put_u64(b, (uint64_t)-7);

    const char *names[3] = {"a.weight", "b.weight", "c.weight"};
    uint32_t types[3] = {RB_GGML_TYPE_F32, RB_GGML_TYPE_Q4_0, RB_GGML_TYPE_Q6_K};
    uint64_t ne0[3] = {8, 64, 256}, ne1[3] = {2, 2, 0};
    uint64_t offs[3] = {0, 64, 192}; /* sizes 64, 72, 210; aligned to 64 */
    for (int i = 0; i < 3; i++) {
        L->t_name_at[i] = b->len;
        put_str(b, names[i]);
        L->t_ndims_at[i] = b->len;
        put_u32(b, ne1[i] ? 2 : 1);
        L->t_ne0_at[i] = b->len;
        put_u64(b, ne0[i]);
        if (ne1[i])
            put_u64(b, ne1[i]);
        L->t_type_at[i] = b->len;
        put_u32(b, types[i]);
        L->t_off_at[i] = b->len;
        put_u64(b, offs[i]);
    }
    while (b->len % 64)
        put(b, "", 1);
    L->data_at = b->len;
    for (size_t i = 0; i < 192 + 210; i++) {
        uint8_t v = (uint8_t)(i * 7 + 1);
        put(b, &v, 1);
    }
}

static void patch_u64(struct mb *b, size_t at, uint64_t v)
{
    memcpy(b->buf + at, &v, 8);
}
static void patch_u32(struct mb *b, size_t at, uint32_t v)
{
    memcpy(b->buf + at, &v, 4);
}

/* Opens b expecting refusal with one of the two error codes and a message. */
static void expect_refused(const struct mb *b, size_t len, const char *what)
{
    struct rb_gguf *g = (struct rb_gguf *)1;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_gguf_open_memory(b->buf, len, &g, &err);
    CHECK_MSG(st == RB_ERR_FORMAT || st == RB_ERR_CORRUPT || st == RB_ERR_UNSUPPORTED,
              "%s: status %d", what, st);
    CHECK_MSG(g == NULL, "%s: handle not NULL on failure", what);
    CHECK_MSG(err.text[0] != '\0', "%s: empty error message", what);
    rb_gguf_close(st == RB_OK ? g : NULL);
}

static void test_mini(void)
{
    struct mb b;
    struct layout L;
    for (uint32_t version = 2; version <= 3; version++) {
        build(&b, &L, version);
        struct rb_gguf *g = NULL;
        struct rb_errmsg err = {{0}};
        enum rb_status st = rb_gguf_open_memory(b.buf, b.len, &g, &err);
        CHECK_MSG(st == RB_OK, "mini v%u: %s", version, err.text);
        if (st != RB_OK)
            continue;
        CHECK_EQ_INT(rb_gguf_version(g), version);
        CHECK_EQ_INT(rb_gguf_alignment(g), 64);
        CHECK_EQ_INT(rb_gguf_data_offset(g), L.data_at);
        CHECK_EQ_INT(rb_gguf_kv_count(g), 9);
        CHECK_STR(rb_gguf_arch(g), "llama");
        uint32_t u32 = 0;
        CHECK(rb_gguf_get_arch_u32(g, "context_length", &u32) == RB_OK && u32 == 4096);
        int32_t i32 = 0;
        CHECK(rb_gguf_get_i32(g, "test.i8", &i32) == RB_OK && i32 == -5);
        CHECK(rb_gguf_get_u32(g, "test.i8", &u32) == RB_ERR_FORMAT); /* negative */
        int64_t i64 = 0;
        CHECK(rb_gguf_get_i64(g, "test.i64", &i64) == RB_OK && i64 == -7);
        double dv = 0;
        CHECK(rb_gguf_get_f64(g, "test.f64", &dv) == RB_OK && dv == 2.5);
        float fv = 0;
        CHECK(rb_gguf_get_f32(g, "llama.context_length", &fv) == RB_OK && fv == 4096.0f);
        bool bv = false;
        CHECK(rb_gguf_get_bool(g, "test.bool", &bv) == RB_OK && bv);
        CHECK(rb_gguf_get_u32(g, "general.architecture", &u32) == RB_ERR_FORMAT);
        CHECK(rb_gguf_get_u32(g, "no.such.key", &u32) == RB_ERR_NOT_FOUND);
        char *s = NULL;
        CHECK(rb_gguf_get_strdup(g, "general.architecture", &s) == RB_OK);
        CHECK_STR(s, "llama");
        free(s);
        const struct rb_gguf_kv *arr = NULL;
        CHECK(rb_gguf_get_arr(g, "test.strs", &arr) == RB_OK);
        if (arr) {
            CHECK_EQ_INT(arr->n, 3);
            CHECK(arr->arr_type == RB_GGUF_TYPE_STRING);
            CHECK(arr->strs[0].len == 5 && memcmp(arr->strs[0].ptr, "alpha", 5) == 0);
            CHECK(arr->strs[1].len == 0);
            CHECK(arr->strs[2].len == 8 && memcmp(arr->strs[2].ptr, "\xe2\x96\x81gamma", 8) == 0);
        }
        CHECK(rb_gguf_get_arr(g, "test.f32s", &arr) == RB_OK);
        if (arr) {
            CHECK(rb_gguf_arr_f32(arr, 0) == -1.5f && rb_gguf_arr_f32(arr, 2) == 3.25f);
            CHECK(rb_gguf_arr_i64(arr, 2) == 3);
        }
        CHECK(rb_gguf_get_arr(g, "test.bool", &arr) == RB_ERR_FORMAT);
        CHECK_EQ_INT(rb_gguf_tensor_count(g), 3);
        const struct rb_gguf_tensor *t = rb_gguf_find_tensor(g, "b.weight");
        CHECK(t != NULL);
        if (t) {
            CHECK_EQ_INT(t->type, RB_GGML_TYPE_Q4_0);
            CHECK_EQ_INT(t->n_dims, 2);
            CHECK(t->ne[0] == 64 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 1);
            CHECK_EQ_INT(t->size, 72);
            CHECK_EQ_INT(t->n_elements, 128);
            CHECK(t->data == b.buf + L.data_at + 64);
        }
        t = rb_gguf_find_tensor(g, "c.weight");
        CHECK(t && t->size == 210 && t->n_dims == 1);
        CHECK(rb_gguf_find_tensor(g, "nope") == NULL);
        rb_gguf_close(g);
    }

    /* every truncation is refused */
    build(&b, &L, 3);
    for (size_t n = 0; n < b.len; n++)
        expect_refused(&b, n, "truncation");

    /* every single-byte corruption of the header loads or is refused, without crashing */
    int refused = 0;
    for (size_t i = 0; i < L.data_at; i++) {
        static const uint8_t vals[] = {0x00, 0xff, 0x80};
        for (size_t k = 0; k < RB_ARRAY_LEN(vals); k++) {
            struct mb c = b;
            if (c.buf[i] == vals[k])
                continue;
            c.buf[i] = vals[k];
            struct rb_gguf *g = NULL;
            struct rb_errmsg err = {{0}};
            enum rb_status st = rb_gguf_open_memory(c.buf, c.len, &g, &err);
            if (st == RB_OK) {
                /* whatever loaded must still be self-consistent */
                for (size_t j = 0; j < rb_gguf_tensor_count(g); j++) {
                    const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, j);
                    CHECK((const uint8_t *)t->data + t->size <= c.buf + c.len);
                }
                rb_gguf_close(g);
            } else {
                refused++;
                CHECK(g == NULL && err.text[0]);
            }
        }
    }
    CHECK(refused > 100);

    struct mb c;
#define MUTATE(what, stmt)                                                                         \
    do {                                                                                           \
        c = b;                                                                                     \
        stmt;                                                                                      \
        expect_refused(&c, c.len, what);                                                           \
    } while (0)
    MUTATE("bad magic", c.buf[0] = 'X');
    MUTATE("version 1", patch_u32(&c, 4, 1));
    MUTATE("version 4", patch_u32(&c, 4, 4));
    MUTATE("big-endian", patch_u32(&c, 4, 0x03000000));
    MUTATE("huge tensor count", patch_u64(&c, L.n_tensors_at, UINT64_MAX));
    MUTATE("huge kv count", patch_u64(&c, L.n_kv_at, (uint64_t)1 << 40));
    MUTATE("more kvs than present", patch_u64(&c, L.n_kv_at, 10));
    MUTATE("huge key length", patch_u64(&c, L.key0_len_at, UINT64_MAX));
    MUTATE("key length past end", patch_u64(&c, L.key0_len_at, 60000));
    MUTATE("huge string array", patch_u64(&c, L.strarr_len_at, (uint64_t)1 << 62));
    MUTATE("alignment 0", patch_u32(&c, L.alignment_val_at, 0));
    MUTATE("alignment 48", patch_u32(&c, L.alignment_val_at, 48));
    MUTATE("misaligned offset", patch_u64(&c, L.t_off_at[1], 65));
    MUTATE("offset past end", patch_u64(&c, L.t_off_at[2], 4096));
    MUTATE("offset overflow", patch_u64(&c, L.t_off_at[2], UINT64_MAX - 63));
    MUTATE("overlap", patch_u64(&c, L.t_off_at[1], 0));
    MUTATE("n_dims 0", patch_u32(&c, L.t_ndims_at[2], 0));
    MUTATE("n_dims 5", patch_u32(&c, L.t_ndims_at[0], 5));
    MUTATE("ne 0", patch_u64(&c, L.t_ne0_at[0], 0));
    MUTATE("ne huge", patch_u64(&c, L.t_ne0_at[0], UINT64_MAX));
    MUTATE("ne product overflow", patch_u64(&c, L.t_ne0_at[0], (uint64_t)1 << 62));
    MUTATE("unknown type", patch_u32(&c, L.t_type_at[0], 4));
    MUTATE("type 1000", patch_u32(&c, L.t_type_at[0], 1000));
    MUTATE("block misfit", patch_u64(&c, L.t_ne0_at[1], 48));
    MUTATE("duplicate tensor", memcpy(c.buf + L.t_name_at[1] + 8, "a", 1));
    MUTATE("duplicate key", memcpy(c.buf + L.key0_len_at + 8, "llama.context_length", 20));
    MUTATE("tensor q6_K as q4_0 misfit size", patch_u32(&c, L.t_type_at[2], RB_GGML_TYPE_F32));
#undef MUTATE

    /* message names the offset */
    c = b;
    patch_u64(&c, L.t_off_at[1], 65);
    struct rb_gguf *g = NULL;
    struct rb_errmsg err = {{0}};
    CHECK(rb_gguf_open_memory(c.buf, c.len, &g, &err) == RB_ERR_CORRUPT);
    CHECK_MSG(strstr(err.text, "offset") && strstr(err.text, "b.weight"), "%s", err.text);
}

/* ------------------------------------------------------------ the shared files */

static int n_loaded;

static void check_file(const char *path)
{
    struct rb_gguf *g = NULL;
    struct rb_errmsg err = {{0}};
    enum rb_status st = rb_gguf_open(path, &g, &err);
    CHECK_MSG(st == RB_OK, "%s: %s", path, err.text);
    if (st != RB_OK)
        return;
    n_loaded++;
    CHECK_MSG(rb_gguf_arch(g) != NULL, "%s: no general.architecture", path);
    /* tensors sit inside the file, aligned */
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        CHECK(rb_ggml_type_get(t->type) != NULL);
        uintptr_t rel = (uintptr_t)((const uint8_t *)t->data - (const uint8_t *)rb_gguf_base(g));
        CHECK(rel % rb_gguf_alignment(g) == 0);
        CHECK(rel + t->size <= rb_gguf_file_size(g));
        CHECK(rb_gguf_find_tensor(g, t->name) == t);
    }
    const struct rb_gguf_kv *tokens = NULL;
    CHECK_MSG(rb_gguf_get_arr(g, "tokenizer.ggml.tokens", &tokens) == RB_OK, "%s", path);
    if (tokens)
        CHECK(tokens->arr_type == RB_GGUF_TYPE_STRING && tokens->n > 0);
    rb_gguf_close(g);
}

static void check_dir(const char *rel)
{
    const char *dir = check_shared(rel);
    DIR *d = opendir(dir);
    if (!d)
        CHECK_SKIP("no %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            check_file(path);
        }
    }
    closedir(d);
}

/* Specific facts about some files (from models/README.md). */
static void check_known(void)
{
    struct rb_gguf *g = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_gguf_open(check_shared("models/real/stories260K.gguf"), &g, &err) == RB_OK);
    uint64_t params = 0;
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        params += t->n_elements;
        CHECK_EQ_INT(t->type, RB_GGML_TYPE_F32);
    }
    CHECK_EQ_INT(params, 292800);
    CHECK_STR(rb_gguf_arch(g), "llama");
    uint32_t heads = 0, kv_heads = 0;
    CHECK(rb_gguf_get_arch_u32(g, "attention.head_count", &heads) == RB_OK && heads == 8);
    CHECK(rb_gguf_get_arch_u32(g, "attention.head_count_kv", &kv_heads) == RB_OK &&
          kv_heads == 4);
    const struct rb_gguf_kv *tokens = NULL;
    CHECK(rb_gguf_get_arr(g, "tokenizer.ggml.tokens", &tokens) == RB_OK && tokens->n == 512);
    rb_gguf_close(g);

    struct {
        const char *file;
        uint32_t types[3];
    } cases[] = {
        {"models/fixtures/llama-spm-256.q4_k_m.gguf",
         {RB_GGML_TYPE_Q4_K, RB_GGML_TYPE_Q6_K, RB_GGML_TYPE_F32}},
        {"models/fixtures/llama-spm-64.q5_0.gguf",
         {RB_GGML_TYPE_Q5_0, RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_F32}},
        {"models/fixtures/llama-spm-64.bf16.gguf",
         {RB_GGML_TYPE_BF16, RB_GGML_TYPE_F32, RB_GGML_TYPE_F32}},
        {"models/fixtures/bert-bge-128.q8_0.gguf",
         {RB_GGML_TYPE_Q8_0, RB_GGML_TYPE_F32, RB_GGML_TYPE_F32}},
    };
    for (size_t c = 0; c < RB_ARRAY_LEN(cases); c++) {
        REQUIRE(rb_gguf_open(check_shared(cases[c].file), &g, &err) == RB_OK);
        bool seen[RB_GGML_TYPE_COUNT] = {0};
        for (size_t i = 0; i < rb_gguf_tensor_count(g); i++)
            seen[rb_gguf_tensor_at(g, i)->type] = true;
        for (int k = 0; k < 3; k++)
            CHECK_MSG(seen[cases[c].types[k]], "%s lacks %s", cases[c].file,
                      rb_ggml_type_name(cases[c].types[k]));
        rb_gguf_close(g);
    }

    /* truncations of a real model are refused */
    const char *path = check_shared("models/fixtures/llama2-tiny-random.f16.gguf");
    char *data = NULL;
    size_t len = 0;
    REQUIRE(rb_fs_read_file(path, 64u << 20, &data, &len) == RB_OK);
    REQUIRE(rb_gguf_open_memory(data, len, &g, &err) == RB_OK);
    size_t data_at = (size_t)rb_gguf_data_offset(g);
    rb_gguf_close(g);
    struct rb_gguf *bad = NULL;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 3 + 97) {
        enum rb_status st = rb_gguf_open_memory(data, cut, &bad, &err);
        CHECK_MSG(st == RB_ERR_CORRUPT || st == RB_ERR_FORMAT, "cut %zu: %d", cut, st);
        CHECK(bad == NULL);
    }
    CHECK(rb_gguf_open_memory(data, len - 1, &bad, &err) == RB_ERR_CORRUPT);
    CHECK_MSG(strstr(err.text, "outside the data section"), "%s", err.text);
    CHECK(data_at > 100000); /* the 32000-token vocabulary precedes the data */
    free(data);

    /* non-GGUF files and missing files */
    CHECK(rb_gguf_open(check_shared("models/fixtures/prompts.txt"), &g, &err) == RB_ERR_FORMAT);
    CHECK(rb_gguf_open("/nonexistent/x.gguf", &g, &err) == RB_ERR_NOT_FOUND);
    CHECK(strstr(err.text, "/nonexistent/x.gguf") != NULL);
}

static void check_types(void)
{
    static const struct {
        uint32_t type, block, size;
    } expect[] = {
        {RB_GGML_TYPE_F32, 1, 4},     {RB_GGML_TYPE_F16, 1, 2},     {RB_GGML_TYPE_BF16, 1, 2},
        {RB_GGML_TYPE_Q4_0, 32, 18},  {RB_GGML_TYPE_Q4_1, 32, 20},  {RB_GGML_TYPE_Q5_0, 32, 22},
        {RB_GGML_TYPE_Q5_1, 32, 24},  {RB_GGML_TYPE_Q8_0, 32, 34},  {RB_GGML_TYPE_Q8_1, 32, 36},
        {RB_GGML_TYPE_Q2_K, 256, 84}, {RB_GGML_TYPE_Q3_K, 256, 110}, {RB_GGML_TYPE_Q4_K, 256, 144},
        {RB_GGML_TYPE_Q5_K, 256, 176}, {RB_GGML_TYPE_Q6_K, 256, 210}, {RB_GGML_TYPE_Q8_K, 256, 292},
        {RB_GGML_TYPE_IQ4_NL, 32, 18}, {RB_GGML_TYPE_IQ4_XS, 256, 136},
        {RB_GGML_TYPE_IQ2_XXS, 256, 66}, {RB_GGML_TYPE_IQ3_S, 256, 110},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(expect); i++) {
        const struct rb_ggml_type_traits *t = rb_ggml_type_get(expect[i].type);
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK_MSG(t->block_size == expect[i].block && t->type_size == expect[i].size, "%s",
                  t->name);
        CHECK_EQ_INT(rb_ggml_type_from_name(t->name), expect[i].type);
    }
    CHECK(rb_ggml_type_get(4) == NULL && rb_ggml_type_get(31) == NULL);
    CHECK(rb_ggml_type_get(RB_GGML_TYPE_COUNT) == NULL);
    CHECK_EQ_INT(rb_ggml_type_from_name("Q4_K"), RB_GGML_TYPE_Q4_K);
    CHECK_EQ_INT(rb_ggml_type_from_name("nope"), -1);
    uint64_t bytes = 0;
    uint64_t ne[2] = {4096, 4096};
    CHECK(rb_ggml_tensor_size(RB_GGML_TYPE_Q4_K, 2, ne, &bytes) && bytes == 4096ull * 16 * 144);
    ne[0] = 100;
    CHECK(!rb_ggml_tensor_size(RB_GGML_TYPE_Q4_K, 2, ne, &bytes));
    uint64_t big[4] = {1ull << 32, 1ull << 32, 1ull << 32, 1};
    CHECK(!rb_ggml_tensor_size(RB_GGML_TYPE_F32, 3, big, &bytes));
}

int main(void)
{
    check_types();
    test_mini();
    check_dir("models/fixtures");
    check_dir("models/real");
    check_dir("testvectors/tokenizer");
    CHECK(n_loaded >= 16 + 7);
    check_known();
    return check_finish();
}
