/* Open-addressing string hash map (see strmap.h). */
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

uint64_t rb__strmap_hash(const void *key, size_t len)
{
    /* FNV-1a 64 with a final avalanche (murmur finaliser) so low bits mix well. */
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

bool rb__strmap_init(struct rb_strmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) {
        if (cap > (SIZE_MAX / 4) / sizeof(struct rb_strmap_slot))
            return false;
        cap *= 2;
    }
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return false;
    m->mask = cap - 1;
    m->count = 0;
    return true;
}

void rb__strmap_free(struct rb_strmap *m)
{
    if (!m)
        return;
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

static uint32_t len_tag(size_t len, uint64_t h)
{
    return (uint32_t)len | ((uint32_t)(h >> 56) << 24);
}

int rb__strmap_put(struct rb_strmap *m, const char *key, size_t len, uint32_t value,
                   uint32_t *existing)
{
    if (!m->slots || len > RB_STRMAP_MAX_KEY)
        return -1;
    if (!key)
        key = "";
    uint64_t h = rb__strmap_hash(key, len);
    uint32_t lt = len_tag(len, h);
    for (size_t i = h & m->mask, probes = 0; probes <= m->mask; i = (i + 1) & m->mask, probes++) {
        struct rb_strmap_slot *s = &m->slots[i];
        if (!s->key) {
            if ((m->count + 1) * 2 > m->mask + 1)
                return -1;
            s->key = key;
            s->len_tag = lt;
            s->value = value;
            m->count++;
            return 1;
        }
        if (s->len_tag == lt && memcmp(s->key, key, len) == 0) {
            if (existing)
                *existing = s->value;
            return 0;
        }
    }
    return -1;
}

bool rb__strmap_get(const struct rb_strmap *m, const char *key, size_t len, uint32_t *value)
{
    if (!m->slots || len > RB_STRMAP_MAX_KEY)
        return false;
    if (!key)
        key = "";
    uint64_t h = rb__strmap_hash(key, len);
    uint32_t lt = len_tag(len, h);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const struct rb_strmap_slot *s = &m->slots[i];
        if (!s->key)
            return false;
        if (s->len_tag == lt && memcmp(s->key, key, len) == 0) {
            *value = s->value;
            return true;
        }
    }
}
