#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    const char *zh = "年度报告：净利润增长。";
    CHECK(rb_utf8_valid(zh, strlen(zh)));
    CHECK_EQ_INT(rb_utf8_count(zh, strlen(zh)), 11);
    CHECK(!rb_utf8_valid("\xC0\xAF", 2));         /* overlong '/' */
    CHECK(!rb_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    CHECK(!rb_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!rb_utf8_valid("\xE5\xB9", 2));         /* truncated */
    uint32_t cp;
    CHECK_EQ_INT(rb_utf8_decode("\xE5\xB9\xB4", 3, &cp), 3);
    CHECK_EQ_INT(cp, 0x5E74);
    char enc[4];
    CHECK_EQ_INT(rb_utf8_encode(0x1F600, enc), 4);
    CHECK(memcmp(enc, "\xF0\x9F\x98\x80", 4) == 0);
    CHECK_EQ_INT(rb_utf8_encode(0xD800, enc), 0);
    /* truncation never splits a character */
    CHECK_EQ_INT(rb_utf8_truncate(zh, strlen(zh), 4), 3);
    CHECK_EQ_INT(rb_utf8_truncate("abc", 3, 10), 3);
    size_t n;
    char *s = rb_utf8_sanitize("a\xFF" "b", 3, &n);
    CHECK_STR(s, "a\xEF\xBF\xBD" "b");
    free(s);
    CHECK(rb_utf8_is_cjk(0x4E2D));
    CHECK(!rb_utf8_is_cjk('A'));
    CHECK(rb_utf8_cjk_ratio(zh, strlen(zh)) > 0.99);
    CHECK(rb_utf8_cjk_ratio("net income rose", 15) < 0.01);
    char *low = rb_utf8_lower("ÄRZTE Straße ΑΒΓ Москва", strlen("ÄRZTE Straße ΑΒΓ Москва"), &n);
    CHECK_STR(low, "ärzte straße αβγ москва");
    free(low);
    return check_finish();
}
