/* The CJK-aware keyword tokenizer: Latin folding, CJK bigrams, offsets. */
#include "helpers.h"

struct toks {
    char buf[4096];
    size_t len;
    int n;
    size_t last_start, last_end;
};

static void collect(void *ctx, const char *t, size_t n, size_t s, size_t e)
{
    struct toks *k = ctx;
    if (k->len + n + 2 < sizeof k->buf) {
        if (k->n)
            k->buf[k->len++] = '|';
        memcpy(k->buf + k->len, t, n);
        k->len += n;
        k->buf[k->len] = 0;
    }
    k->n++;
    k->last_start = s;
    k->last_end = e;
}

static const char *tok(const char *text)
{
    static struct toks k;
    memset(&k, 0, sizeof k);
    size_t n = rb_index_tokenize(text, strlen(text), collect, &k);
    CHECK_EQ_INT(n, k.n);
    return k.buf;
}

int main(void)
{
    CHECK_STR(tok("Hello, World! 42x"), "hello|world|42x");
    CHECK_STR(tok("Café NAÏVE résumé Ærø straße"), "cafe|naive|resume|æro|straße");
    CHECK_STR(tok("ＡＢＣ１２３"), "abc123"); /* full-width folded to ASCII */
    CHECK_STR(tok("中华人民"), "中华|华人|人民");
    CHECK_STR(tok("税"), "税");
    CHECK_STR(tok("我 爱"), "我|爱");
    CHECK_STR(tok("在北京市，GDP增长5%。"), "在北|北京|京市|gdp|增长|5");
    CHECK_STR(tok("カタカナ 한국어"), "カタ|タカ|カナ|한국|국어");
    CHECK_STR(tok("Ελληνικά Русский"), "ελληνικα|русский");
    CHECK_STR(tok(""), "");
    CHECK_STR(tok("!!! ... ---"), "");
    /* Byte offsets point into the original text. */
    struct toks k;
    memset(&k, 0, sizeof k);
    const char *t = "ab 中文";
    rb_index_tokenize(t, strlen(t), collect, &k);
    CHECK_EQ_INT(k.last_start, 3);
    CHECK_EQ_INT(k.last_end, strlen(t));
    /* Malformed UTF-8 and very long words never crash; long words are cut. */
    char bad[] = {'a', (char)0xff, (char)0xc3, 'b', (char)0xe4, (char)0xb8, 0};
    rb_index_tokenize(bad, strlen(bad), collect, &k);
    char longw[1000];
    memset(longw, 'x', sizeof longw - 1);
    longw[sizeof longw - 1] = 0;
    CHECK(strlen(tok(longw)) <= 64);
    return check_finish();
}
