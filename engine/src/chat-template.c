/* Chat templates: recognise the Jinja template a model carries
 * (tokenizer.chat_template) by its markers and render conversations in that
 * style. We do not interpret Jinja: the supported styles are rendered by code
 * that produces the same text the reference templates produce for plain
 * system/user/assistant conversations, and anything unrecognised is refused
 * (or, only when the caller asks, rendered in a named fallback style). */
#include <stdlib.h>
#include <string.h>

#include "ragbox/engine.h"

static const struct {
    enum rb_engine_chat_kind kind;
    const char *name;
} KINDS[] = {
    {RB_ENGINE_CHAT_CHATML, "chatml"},
    {RB_ENGINE_CHAT_LLAMA3, "llama3"},
    {RB_ENGINE_CHAT_LLAMA2, "llama2"},
    {RB_ENGINE_CHAT_PHI3, "phi3"},
};

const char *rb_engine_chat_kind_name(enum rb_engine_chat_kind kind)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(KINDS); i++)
        if (KINDS[i].kind == kind)
            return KINDS[i].name;
    return "unknown";
}

enum rb_engine_chat_kind rb_engine_chat_kind_from_name(const char *name)
{
    for (size_t i = 0; name && i < RB_ARRAY_LEN(KINDS); i++)
        if (strcmp(KINDS[i].name, name) == 0)
            return KINDS[i].kind;
    return RB_ENGINE_CHAT_UNKNOWN;
}

enum rb_engine_chat_kind rb_engine_chat_detect(const char *t)
{
    if (!t || !*t)
        return RB_ENGINE_CHAT_UNKNOWN;
    if (strstr(t, "<|im_start|>"))
        return RB_ENGINE_CHAT_CHATML;
    if (strstr(t, "<|start_header_id|>") && strstr(t, "<|eot_id|>"))
        return RB_ENGINE_CHAT_LLAMA3;
    if (strstr(t, "<|assistant|>") && strstr(t, "<|end|>"))
        return RB_ENGINE_CHAT_PHI3;
    if (strstr(t, "[INST]"))
        return RB_ENGINE_CHAT_LLAMA2;
    return RB_ENGINE_CHAT_UNKNOWN;
}

/* The default system prompt a ChatML template inserts when the conversation has
 * none (Qwen: "You are a helpful assistant"), when it is a plain literal. */
static char *chatml_default_system(const char *t)
{
    if (!t)
        return NULL;
    static const char *const heads[] = {"<|im_start|>system\\n", "<|im_start|>system\n"};
    for (size_t h = 0; h < RB_ARRAY_LEN(heads); h++) {
        const char *p = t;
        while ((p = strstr(p, heads[h]))) {
            p += strlen(heads[h]);
            const char *end = strstr(p, "<|im_end|>");
            if (!end)
                break;
            size_t n = (size_t)(end - p);
            /* a literal, not an expression (message content, variables) */
            if (n > 0 && !memchr(p, '{', n) && !memchr(p, '\'', n) && !memchr(p, '"', n) &&
                !memchr(p, '+', n))
                return rb_strndup(p, n);
        }
    }
    return NULL;
}

static bool trim_span(const char *s, const char **b, size_t *n)
{
    size_t len = strlen(s), i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    while (len > i &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    *b = s + i;
    *n = len - i;
    return true;
}

static enum rb_status render(enum rb_engine_chat_kind kind, const struct rb_engine_chat_message *m,
                             size_t n, bool gen, const char *default_system, char **out,
                             struct rb_errmsg *err)
{
    *out = NULL;
    if (n == 0 || !m)
        return rb_errmsg_set(err, RB_ERR_INVALID, "chat: no messages");
    for (size_t i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content)
            return rb_errmsg_set(err, RB_ERR_INVALID, "chat: message %zu has no role or content",
                                 i);
        if (strcmp(m[i].role, "system") != 0 && strcmp(m[i].role, "user") != 0 &&
            strcmp(m[i].role, "assistant") != 0)
            return rb_errmsg_set(err, RB_ERR_INVALID,
                                 "chat: message %zu has role '%.40s' (system, user or assistant "
                                 "expected)",
                                 i, m[i].role);
    }
    struct rb_buf b;
    rb_buf_init(&b, 0);
    enum rb_status st = RB_OK;
#define APP(s) (st = st != RB_OK ? st : rb_buf_append_str(&b, (s)))
#define APPN(s, l) (st = st != RB_OK ? st : rb_buf_append(&b, (s), (l)))
    switch (kind) {
    case RB_ENGINE_CHAT_CHATML:
        if (default_system && strcmp(m[0].role, "system") != 0) {
            APP("<|im_start|>system\n");
            APP(default_system);
            APP("<|im_end|>\n");
        }
        for (size_t i = 0; i < n; i++) {
            APP("<|im_start|>");
            APP(m[i].role);
            APP("\n");
            APP(m[i].content);
            APP("<|im_end|>\n");
        }
        if (gen)
            APP("<|im_start|>assistant\n");
        break;
    case RB_ENGINE_CHAT_LLAMA3:
        APP("<|begin_of_text|>");
        for (size_t i = 0; i < n; i++) {
            const char *c;
            size_t cl;
            trim_span(m[i].content, &c, &cl);
            APP("<|start_header_id|>");
            APP(m[i].role);
            APP("<|end_header_id|>\n\n");
            APPN(c, cl);
            APP("<|eot_id|>");
        }
        if (gen)
            APP("<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case RB_ENGINE_CHAT_LLAMA2: {
        /* <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s> */
        const char *sys = NULL;
        size_t sysl = 0;
        size_t i = 0;
        if (strcmp(m[0].role, "system") == 0) {
            trim_span(m[0].content, &sys, &sysl);
            i = 1;
        }
        bool first_user = true;
        for (; i < n; i++) {
            const char *c;
            size_t cl;
            trim_span(m[i].content, &c, &cl);
            if (strcmp(m[i].role, "user") == 0) {
                APP("<s>[INST] ");
                if (first_user && sys) {
                    APP("<<SYS>>\n");
                    APPN(sys, sysl);
                    APP("\n<</SYS>>\n\n");
                }
                first_user = false;
                APPN(c, cl);
                APP(" [/INST]");
            } else if (strcmp(m[i].role, "assistant") == 0) {
                APP(" ");
                APPN(c, cl);
                APP(" </s>");
            } else {
                st = rb_errmsg_set(err, RB_ERR_INVALID,
                                   "chat: llama2 style allows a system message only first");
            }
        }
        break;
    }
    case RB_ENGINE_CHAT_PHI3:
        for (size_t i = 0; i < n; i++) {
            APP("<|");
            APP(m[i].role);
            APP("|>\n");
            APP(m[i].content);
            APP("<|end|>\n");
        }
        if (gen)
            APP("<|assistant|>\n");
        break;
    default:
        rb_buf_free(&b);
        return rb_errmsg_set(err, RB_ERR_INVALID, "chat: unknown template style");
    }
#undef APP
#undef APPN
    if (st == RB_OK)
        st = rb_buf_append(&b, "", 0);
    if (st != RB_OK) {
        rb_buf_free(&b);
        if (err && !err->text[0])
            rb_errmsg_set(err, st, "chat: out of memory");
        return st;
    }
    *out = rb_buf_steal(&b);
    return RB_OK;
}

enum rb_status rb_engine_chat_render(enum rb_engine_chat_kind kind,
                                     const struct rb_engine_chat_message *msgs, size_t n,
                                     bool add_generation_prompt, char **out, struct rb_errmsg *err)
{
    rb_errmsg_clear(err);
    return render(kind, msgs, n, add_generation_prompt, NULL, out, err);
}

enum rb_status rb_engine_chat_apply(const struct rb_engine_tokenizer *tok,
                                    const struct rb_engine_chat_message *msgs, size_t n,
                                    bool add_generation_prompt, enum rb_engine_chat_kind fallback,
                                    enum rb_engine_chat_kind *used, char **out,
                                    struct rb_errmsg *err)
{
    *out = NULL;
    rb_errmsg_clear(err);
    const char *tmpl = rb_engine_tokenizer_chat_template(tok);
    enum rb_engine_chat_kind kind = rb_engine_chat_detect(tmpl);
    if (kind == RB_ENGINE_CHAT_UNKNOWN) {
        if (fallback == RB_ENGINE_CHAT_UNKNOWN) {
            if (!tmpl)
                return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                                     "the model has no chat template (tokenizer.chat_template); "
                                     "choose a style explicitly (e.g. chatml) or use raw mode");
            char head[81];
            rb_strlcpy(head, tmpl, sizeof head);
            for (char *p = head; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' ';
            return rb_errmsg_set(err, RB_ERR_UNSUPPORTED,
                                 "unrecognised chat template \"%s%s\" (supported: chatml, "
                                 "llama3, llama2, phi3); choose a style explicitly",
                                 head, strlen(tmpl) > 80 ? "..." : "");
        }
        kind = fallback;
    }
    char *def = kind == RB_ENGINE_CHAT_CHATML ? chatml_default_system(tmpl) : NULL;
    enum rb_status st = render(kind, msgs, n, add_generation_prompt, def, out, err);
    free(def);
    if (st == RB_OK && used)
        *used = kind;
    return st;
}
