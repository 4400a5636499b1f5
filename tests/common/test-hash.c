#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    uint8_t d[RB_SHA256_LEN];
    char hex[RB_SHA256_HEX_LEN + 1];
    CHECK(rb_sha256("abc", 3, d) == RB_OK);
    rb_hex_encode(d, sizeof d, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(rb_sha256("", 0, d) == RB_OK);
    rb_hex_encode(d, sizeof d, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* streaming equals one-shot */
    struct rb_sha256 h;
    CHECK(rb_sha256_init(&h) == RB_OK);
    CHECK(rb_sha256_update(&h, "a", 1) == RB_OK);
    CHECK(rb_sha256_update(&h, "bc", 2) == RB_OK);
    uint8_t d2[RB_SHA256_LEN];
    CHECK(rb_sha256_final(&h, d2) == RB_OK);
    rb_hex_encode(d2, sizeof d2, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t back[RB_SHA256_LEN];
    CHECK(rb_hex_decode(hex, back, sizeof back) == RB_OK);
    CHECK(memcmp(back, d2, sizeof back) == 0);
    CHECK(rb_hex_decode("zz", back, 1) == RB_ERR_FORMAT);
    const char *dir = check_tmpdir("hash");
    char *path = rb_path_join(dir, "f.txt");
    CHECK(rb_fs_write_atomic(path, "abc", 3) == RB_OK);
    CHECK(rb_sha256_file(path, hex) == RB_OK);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(rb_sha256_file("/nonexistent", hex) == RB_ERR_IO);
    free(path);
    uint8_t r1[16], r2[16];
    CHECK(rb_random_bytes(r1, 16) == RB_OK && rb_random_bytes(r2, 16) == RB_OK);
    CHECK(memcmp(r1, r2, 16) != 0);
    return check_finish();
}
