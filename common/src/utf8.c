/* UTF-8 validation, decoding, truncation and CJK classification. */
#include <stdlib.h>
#include <string.h>

#include "ragbox/common.h"

int rb_utf8_decode(const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if ((size_t)n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return n;
}

static bool decode_ok(const char *s, size_t len, int *n)
{
    uint32_t cp;
    *n = rb_utf8_decode(s, len, &cp);
    return !(cp == 0xFFFD && *n == 1 && (unsigned char)s[0] >= 0x80);
}

bool rb_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        int n;
        if (!decode_ok(s + i, len - i, &n))
            return false;
        i += (size_t)n;
    }
    return true;
}

int rb_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

size_t rb_utf8_count(const char *s, size_t len)
{
    size_t i = 0, count = 0;
    while (i < len) {
        uint32_t cp;
        i += (size_t)rb_utf8_decode(s + i, len - i, &cp);
        count++;
    }
    return count;
}

size_t rb_utf8_truncate(const char *s, size_t len, size_t max_bytes)
{
    if (len <= max_bytes)
        return len;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int n = rb_utf8_decode(s + i, len - i, &cp);
        if (i + (size_t)n > max_bytes)
            break;
        i += (size_t)n;
    }
    return i;
}

char *rb_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    size_t i = 0;
    while (i < len) {
        int n;
        enum rb_status st;
        if (decode_ok(s + i, len - i, &n)) {
            st = rb_buf_append(&b, s + i, (size_t)n);
        } else {
            st = rb_buf_append(&b, "\xEF\xBF\xBD", 3);
        }
        if (st != RB_OK) {
            rb_buf_free(&b);
            return NULL;
        }
        i += (size_t)n;
    }
    if (out_len)
        *out_len = b.len;
    return rb_buf_steal(&b);
}

bool rb_utf8_is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified ideographs */
           (cp >= 0x3400 && cp <= 0x4DBF) ||   /* extension A */
           (cp >= 0x20000 && cp <= 0x2FA1F) || /* extensions B.., compatibility supplement */
           (cp >= 0xF900 && cp <= 0xFAFF) ||   /* compatibility ideographs */
           (cp >= 0x3000 && cp <= 0x303F) ||   /* CJK symbols and punctuation */
           (cp >= 0x3040 && cp <= 0x30FF) ||   /* hiragana, katakana */
           (cp >= 0x31F0 && cp <= 0x31FF) ||   /* katakana extension */
           (cp >= 0xAC00 && cp <= 0xD7AF) ||   /* hangul syllables */
           (cp >= 0x1100 && cp <= 0x11FF) ||   /* hangul jamo */
           (cp >= 0xFF00 && cp <= 0xFFEF);     /* half/full-width forms */
}

double rb_utf8_cjk_ratio(const char *s, size_t len)
{
    size_t i = 0, letters = 0, cjk = 0;
    while (i < len) {
        uint32_t cp;
        i += (size_t)rb_utf8_decode(s + i, len - i, &cp);
        if (rb_utf8_is_cjk(cp) && !(cp >= 0x3000 && cp <= 0x303F) &&
            !(cp >= 0xFF00 && cp <= 0xFF20)) {
            cjk++;
            letters++;
        } else if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                   (cp >= 0xC0 && cp < 0x2000)) {
            letters++;
        }
    }
    return letters ? (double)cjk / (double)letters : 0.0;
}

static uint32_t lower_cp(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 32;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 &&
        c != 0x178 && c != 0x17F) {
        /* Latin Extended-A alternates upper/lower, with a phase shift in 0x139..0x148 and
         * 0x179..0x17E. */
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
        return c + 32; /* Greek */
    if (c >= 0x410 && c <= 0x42F)
        return c + 32; /* Cyrillic */
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32; /* full-width Latin */
    return c;
}

char *rb_utf8_lower(const char *s, size_t len, size_t *out_len)
{
    struct rb_buf b;
    rb_buf_init(&b, 0);
    if (rb_buf_reserve(&b, len) != RB_OK)
        return NULL;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int n = rb_utf8_decode(s + i, len - i, &cp);
        char enc[4];
        int m = rb_utf8_encode(lower_cp(cp), enc);
        if (rb_buf_append(&b, enc, (size_t)m) != RB_OK) {
            rb_buf_free(&b);
            return NULL;
        }
        i += (size_t)n;
    }
    if (out_len)
        *out_len = b.len;
    return rb_buf_steal(&b);
}
