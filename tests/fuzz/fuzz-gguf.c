/* libFuzzer target for the GGUF loader and the tokenizer built from GGUF
 * metadata: any byte string must be refused cleanly or load into a consistent
 * file whose metadata and tensors can be read, and whose tokenizer (when the
 * metadata describes one) can tokenize and detokenize text.
 *
 * Built with -DRAGBOX_FUZZ=ON -DCMAKE_C_COMPILER=clang as fuzz-gguf; the same
 * entry point is linked into replay-gguf (normal builds), which ctest runs
 * over the regression files in tests/fuzz/corpus/gguf/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rb_gguf *g = NULL;
    struct rb_errmsg err;
    if (rb_gguf_open_memory(data, size, &g, &err) != RB_OK)
        return 0;
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < rb_gguf_kv_count(g); i++) {
        const struct rb_gguf_kv *kv = rb_gguf_kv_at(g, i);
        if (kv->type == RB_GGUF_TYPE_ARRAY) {
            for (uint64_t k = 0; k < kv->n && k < 64; k++) {
                if (kv->arr_type == RB_GGUF_TYPE_STRING)
                    sink += kv->strs[k].len ? (uint8_t)kv->strs[k].ptr[kv->strs[k].len - 1] : 0;
                else
                    sink += (uint64_t)rb_gguf_arr_i64(kv, k) + (rb_gguf_arr_f64(kv, k) > 0);
            }
        } else {
            uint64_t u;
            double d;
            struct rb_gguf_str s;
            if (rb_gguf_get_u64(g, kv->key, &u) == RB_OK)
                sink += u;
            if (rb_gguf_get_f64(g, kv->key, &d) == RB_OK)
                sink += (uint64_t)(d == d);
            if (rb_gguf_get_str(g, kv->key, &s) == RB_OK)
                sink += s.len;
        }
    }
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        if (t->size)
            sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
    }
    struct rb_engine_tokenizer *tok = NULL;
    if (rb__tokenizer_from_gguf(g, "fuzz", &tok, &err) == RB_OK) {
        static const char text[] = "Hello <s> world\n\xe4\xbd\xa0\xe5\xa5\xbd \xff<|im_start|>x";
        int32_t *ids = NULL;
        size_t n = 0;
        if (rb_engine_tokenize(tok, text, sizeof text - 1,
                               RB_ENGINE_TOKENIZE_ADD_SPECIAL | RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                               &ids, &n) == RB_OK) {
            char *back = NULL;
            size_t blen = 0;
            if (rb_engine_detokenize(tok, ids, n, RB_ENGINE_DETOKENIZE_UNPARSE_SPECIAL, &back,
                                     &blen) == RB_OK)
                sink += blen;
            free(back);
        }
        free(ids);
        struct rb_engine_chat_message msgs[2] = {{"system", "s"}, {"user", "u"}};
        char *prompt = NULL;
        if (rb_engine_chat_apply(tok, msgs, 2, true, RB_ENGINE_CHAT_CHATML, NULL, &prompt,
                                 &err) == RB_OK)
            sink += strlen(prompt);
        free(prompt);
        rb_engine_tokenizer_free(tok);
    }
    (void)sink;
    rb_gguf_close(g);
    return 0;
}
