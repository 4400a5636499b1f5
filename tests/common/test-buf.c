#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    struct rb_buf b;
    rb_buf_init(&b, 16);
    CHECK(rb_buf_append_str(&b, "hello") == RB_OK);
    CHECK(rb_buf_printf(&b, " %d", 42) == RB_OK);
    CHECK_STR(b.data, "hello 42");
    CHECK(rb_buf_append_str(&b, "0123456789") == RB_ERR_TOO_LARGE); /* max 16 */
    CHECK_STR(b.data, "hello 42");                                  /* unchanged */
    rb_buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    rb_buf_free(&b);
    size_t out;
    CHECK(!rb_size_mul(SIZE_MAX / 2, 3, &out));
    CHECK(!rb_size_add(SIZE_MAX, 1, &out));
    CHECK(rb_malloc_array(SIZE_MAX / 4, 8) == NULL);
    int64_t v;
    CHECK(rb_parse_i64("-12", &v) == RB_OK && v == -12);
    CHECK(rb_parse_i64("12x", &v) == RB_ERR_INVALID);
    CHECK(rb_parse_i64("", &v) == RB_ERR_INVALID);
    CHECK(rb_parse_i64("99999999999999999999", &v) == RB_ERR_INVALID);
    double d;
    CHECK(rb_parse_double("0.25", &d) == RB_OK && d == 0.25);
    CHECK(rb_parse_double("nan", &d) == RB_ERR_INVALID);
    char small[4];
    CHECK(!rb_strlcpy(small, "abcdef", sizeof small));
    CHECK_STR(small, "abc");
    char *p = rb_asprintf("%s-%d", "x", 7);
    CHECK_STR(p, "x-7");
    free(p);
    return check_finish();
}
