/* Chat templates: detection of the fixture models' templates and of hand-written
 * Llama-3 / Llama-2 / Phi-3 templates; exact rendering; refusal of unknown
 * templates unless a fallback is requested; the rendered ChatML tokenizes into
 * the model's control tokens. */
#include "check.h"
#include "ragbox/engine.h"

static const char *LLAMA3_TMPL =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
static const char *LLAMA2_TMPL =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 "
    "and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% "
    "endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' "
    "[/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
    "eos_token }}{% endif %}{% endfor %}";

int main(void)
{
    struct rb_engine_chat_message conv[] = {
        {"system", "You answer from the documents."},
        {"user", "What is the notice period?"},
        {"assistant", "Thirty days."},
        {"user", " And for managers? "},
    };
    char *out = NULL;
    struct rb_errmsg err = {{0}};

    CHECK(rb_engine_chat_detect(LLAMA3_TMPL) == RB_ENGINE_CHAT_LLAMA3);
    CHECK(rb_engine_chat_detect(LLAMA2_TMPL) == RB_ENGINE_CHAT_LLAMA2);
    CHECK(rb_engine_chat_detect("{{ x }}") == RB_ENGINE_CHAT_UNKNOWN);
    CHECK(rb_engine_chat_detect(NULL) == RB_ENGINE_CHAT_UNKNOWN);
    CHECK(rb_engine_chat_kind_from_name("chatml") == RB_ENGINE_CHAT_CHATML);
    CHECK_STR(rb_engine_chat_kind_name(RB_ENGINE_CHAT_LLAMA3), "llama3");

    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_LLAMA3, conv, 4, true, &out, &err) == RB_OK);
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer "
                   "from the documents.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat "
                   "is the notice period?<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
                   "\n\nThirty days.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd for "
                   "managers?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_LLAMA2, conv, 4, true, &out, &err) == RB_OK);
    CHECK_STR(out, "<s>[INST] <<SYS>>\nYou answer from the documents.\n<</SYS>>\n\nWhat is the "
                   "notice period? [/INST] Thirty days. </s><s>[INST] And for managers? [/INST]");
    free(out);
    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_CHATML, conv + 1, 1, true, &out, &err) == RB_OK);
    CHECK_STR(out, "<|im_start|>user\nWhat is the notice period?<|im_end|>\n<|im_start|>"
                   "assistant\n");
    free(out);
    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_PHI3, conv + 1, 1, false, &out, &err) == RB_OK);
    CHECK_STR(out, "<|user|>\nWhat is the notice period?<|end|>\n");
    free(out);
    struct rb_engine_chat_message bad = {"tool", "x"};
    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_CHATML, &bad, 1, true, &out, &err) ==
          RB_ERR_INVALID);
    CHECK(strstr(err.text, "tool") != NULL);
    CHECK(rb_engine_chat_render(RB_ENGINE_CHAT_CHATML, conv, 0, true, &out, &err) ==
          RB_ERR_INVALID);

    /* the fixture Qwen models carry a ChatML template with a default system prompt */
    /* (qwen3 shares qwen2's template: checked without building its tokenizer below) */
    static const char *const chatml_models[] = {"models/fixtures/qwen2-64.q4_0.gguf"};
    for (size_t i = 0; i < RB_ARRAY_LEN(chatml_models); i++) {
        struct rb_engine_tokenizer *tok = NULL;
        REQUIRE(rb_engine_tokenizer_load(check_shared(chatml_models[i]), &tok, &err) == RB_OK);
        CHECK(rb_engine_chat_detect(rb_engine_tokenizer_chat_template(tok)) ==
              RB_ENGINE_CHAT_CHATML);
        enum rb_engine_chat_kind used = RB_ENGINE_CHAT_UNKNOWN;
        CHECK(rb_engine_chat_apply(tok, conv + 1, 1, true, RB_ENGINE_CHAT_UNKNOWN, &used, &out,
                                   &err) == RB_OK);
        CHECK(used == RB_ENGINE_CHAT_CHATML);
        CHECK_STR(out, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>"
                       "user\nWhat is the notice period?<|im_end|>\n<|im_start|>assistant\n");
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(rb_engine_tokenize(tok, out, strlen(out), RB_ENGINE_TOKENIZE_PARSE_SPECIAL, &ids,
                                 &n) == RB_OK);
        int starts = 0;
        for (size_t k = 0; k < n; k++)
            starts += ids[k] == rb_engine_token_lookup(tok, "<|im_start|>", 12);
        CHECK_EQ_INT(starts, 3);
        free(ids);
        free(out);
        /* an explicit system message replaces the default */
        CHECK(rb_engine_chat_apply(tok, conv, 2, false, RB_ENGINE_CHAT_UNKNOWN, NULL, &out,
                                   &err) == RB_OK);
        CHECK(out && strncmp(out, "<|im_start|>system\nYou answer", 29) == 0);
        free(out);
        rb_engine_tokenizer_free(tok);
    }

    struct rb_engine_model_info *info = NULL;
    REQUIRE(rb_engine_model_info_read(check_shared("models/fixtures/qwen3-32.q8_0.gguf"), &info,
                                      &err) == RB_OK);
    CHECK(rb_engine_chat_detect(info->chat_template) == RB_ENGINE_CHAT_CHATML);
    rb_engine_model_info_free(info);

    /* a model without a template: refused unless a fallback is asked for */
    struct rb_engine_tokenizer *tok = NULL;
    REQUIRE(rb_engine_tokenizer_load(check_shared("models/real/stories260K.gguf"), &tok, &err) ==
            RB_OK);
    CHECK(rb_engine_chat_apply(tok, conv + 1, 1, true, RB_ENGINE_CHAT_UNKNOWN, NULL, &out, &err) ==
          RB_ERR_UNSUPPORTED);
    CHECK(strstr(err.text, "no chat template") != NULL);
    enum rb_engine_chat_kind used = RB_ENGINE_CHAT_UNKNOWN;
    CHECK(rb_engine_chat_apply(tok, conv + 1, 1, true, RB_ENGINE_CHAT_CHATML, &used, &out, &err) ==
          RB_OK);
    CHECK(used == RB_ENGINE_CHAT_CHATML && out && strstr(out, "<|im_start|>assistant\n"));
    free(out);
    rb_engine_tokenizer_free(tok);

    /* phi-3 vocab carries its own template */
    REQUIRE(rb_engine_tokenizer_load(check_shared("testvectors/tokenizer/ggml-vocab-phi-3.gguf"),
                                     &tok, &err) == RB_OK);
    CHECK(rb_engine_chat_detect(rb_engine_tokenizer_chat_template(tok)) == RB_ENGINE_CHAT_PHI3);
    rb_engine_tokenizer_free(tok);
    return check_finish();
}
